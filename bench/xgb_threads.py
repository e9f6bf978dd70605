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

import numpy as np
import xgboost as xgb
from pyspark.sql import functions as F

from pricing.platform import catalog, delta_io
from pricing.platform.config import load_config
from pricing.platform.spark import get_spark
from pricing.platform.tables import table
from pricing.price_model.training import features_of, fit, labelled, prepare, time_split, worker_threads


def main(overrides: list[str]) -> None:
    cfg = load_config("local", overrides)
    spark = get_spark(cfg, app_name="bench-xgb-threads")
    data = delta_io.read(spark, table(cfg, catalog.TRAINING_SET)).persist()
    split = time_split(data, cfg)
    feats = features_of(cfg)
    assembled, prepare_s = prepare(split, feats)
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
    # native: the same split, rows, features and parameters, on arrays (as bench/run.py's alternative)
    split = time_split(labelled(data), cfg)
    cols = [F.col(c).cast("double") for c in feats]
    tr = split.train.select(*cols, "label").toPandas()
    va = split.valid.select(*cols, "label").toPandas()
    Xtr, ytr = tr[list(feats)].to_numpy(np.float32, na_value=np.nan), tr["label"].to_numpy()
    Xva, yva = va[list(feats)].to_numpy(np.float32, na_value=np.nan), va["label"].to_numpy()
    base = {"tree_method": "hist", "nthread": 2, "seed": t.booster.seed,
            **{("eta" if k == "learning_rate" else k): v for k, v in params.items()}}
    native = 0.0
    for name, objective in (("median", {"objective": "reg:squarederror", "eval_metric": "rmse"}),
                            (f"{t.quantiles[0]:g}", {"objective": "reg:quantileerror", "quantile_alpha": t.quantiles[0]}),
                            (f"{t.quantiles[2]:g}", {"objective": "reg:quantileerror", "quantile_alpha": t.quantiles[2]})):
        t0 = time.perf_counter()
        dtrain = xgb.QuantileDMatrix(Xtr, ytr, nthread=2)
        dvalid = xgb.DMatrix(Xva, yva, nthread=2)
        b = xgb.train({**base, **objective}, dtrain, num_boost_round=t.booster.n_estimators,
                      evals=[(dvalid, "valid")], early_stopping_rounds=t.booster.early_stopping_rounds,
                      verbose_eval=False)
        native += time.perf_counter() - t0
        print(f"native {name}: {time.perf_counter() - t0:.1f} s, {b.num_boosted_rounds()} rounds, "
              f"best {b.best_iteration}", flush=True)
    print(f"xgboost.spark {total:.1f} s, native {native:.1f} s: {total / native:.2f}x")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
