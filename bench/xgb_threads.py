"""xgboost.spark workers and threads against native ``xgboost.train``: the train job's three boosters (median, p10,
p90) fitted with ``pricing.price_model.training.fit`` on ``features.training_set`` of an existing state, then the
same three natively on arrays (2 threads), in one process.  Prints seconds, rounds and best iteration per booster.

    W="simulator.n_listings=1000000 simulator.n_sellers=100000 simulator.partitions=8 spark.shuffle_partitions=8 \
       spark.ui=false spark.driver_memory=8g storage.root=/tmp/v1m"
    .venv/bin/python bench/xgb_threads.py $W train.num_workers=2    # or train.num_workers=1

Arguments are config overrides (``section.key=value``), as ``--set`` takes them; build the state first
(``pricing generate``, ``ingest``, ``match``, ``features`` with the same overrides).  The figures of
docs/benchmarks.md ("One xgboost worker with both cores, or two with one each") came from this script.
"""

from __future__ import annotations

import sys
import time

from run import native_fits  # bench/run.py: python puts the script's folder first on sys.path

from pricing.platform import catalog, delta_io
from pricing.platform.config import load_config
from pricing.platform.spark import get_spark
from pricing.platform.tables import table
from pricing.price_model.training import features_of, fit, prepare, time_split, worker_threads


def main(overrides: list[str]) -> None:
    cfg = load_config("local", overrides)
    spark = get_spark(cfg, app_name="bench-xgb-threads")
    data = delta_io.read(spark, table(cfg, catalog.TRAINING_SET)).persist()
    split = time_split(data, cfg)
    feats = features_of(cfg)
    assembled, prepare_s = prepare(split, feats, cfg.train.num_workers)
    t = cfg.train
    params = t.booster.tree_params()
    print(f"rows {assembled.count():,} (prepared in {prepare_s:.1f} s); {t.num_workers} worker(s) x "
          f"{worker_threads(spark, cfg)} thread(s)", flush=True)
    total = 0.0
    for q in (None, t.quantiles[0], t.quantiles[2]):
        t0 = time.time()
        booster = fit(spark, cfg, assembled, params, quantile=q, features=feats)[1]
        total += time.time() - t0
        print(f"xgboost.spark {q or 'median'}: {time.time() - t0:.1f} s, {booster.num_boosted_rounds()} rounds, "
              f"best {booster.attr('best_iteration')}", flush=True)
    # native: the same split, rows, features, parameters and boosters, on arrays (bench/run.py's alternative)
    native = native_fits(cfg, data, 2)
    for name, f in native["boosters"].items():
        print(f"native {name}: {f['seconds']:.1f} s, {f['rounds']} rounds, best {f['best_iteration']}", flush=True)
    print(f"xgboost.spark {total:.1f} s, native {native['seconds']:.1f} s: {total / native['seconds']:.2f}x")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
