"""Do comparable-sales features help the price model?  The same training table and time split, trained with and
without them (``features.comparables``), test RMSLE side by side, logged to MLflow.

    .venv/bin/python bench/comparables.py --set storage.root=/tmp/cmp200k [--set simulator.n_listings=200000 ...]

Runs what is missing of ``generate -> ingest -> match -> features`` under that storage root (each job is
idempotent: a rerun reuses what is built), then ``pricing train`` twice on the same ``features.training_set``
version: with the comparable-sales features, and with ``features.comparables=false`` (the model then ignores
those columns; the table and split are the same).  Reports test RMSLE, the noise floor and the ratio, overall and
for the test listings that had a same-product sale before they were listed.  Writes
bench/results/<date>-comparables-<listings>.json and .md, and an MLflow run ``comparables-ablation``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from jobs import features, generate, ingest, match, train
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import load_config
from pricing.platform.spark import get_spark
from pricing.platform.tables import table
from pricing.price_model.metrics import rmsle
from pricing.price_model.training import labelled, score_with_labels, time_split


def _test_predictions(spark, cfg, run_id: str):  # type: ignore[no-untyped-def]
    """The registered model of ``run_id`` scored on the test weeks: ``listing_id, label, p50_log`` and the
    listing's same-product sales before listing time."""
    split = time_split(labelled(delta_io.read(spark, table(cfg, catalog.TRAINING_SET))), cfg)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").unwrap_python_model()
    # Logged from code (pricing/price_model/pyfunc.py): its class is the logged file's own, not this package's.
    assert type(model).__name__ == "PriceModel", f"run {run_id}: the logged model is not a PriceModel"
    return score_with_labels(split.test, model.predictor, ("cmp_product_sold",))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    cfg = load_config("local", [*args.overrides, "features.comparables=true"])
    spark = get_spark(cfg, app_name="bench-comparables")
    timings = {}
    for name, job in (("generate", generate), ("ingest", ingest), ("match", match), ("features", features)):
        t0 = time.time()
        print(job.run(spark, cfg).render(), flush=True)
        timings[name] = round(time.time() - t0, 1)
    ts_version = delta_io.version(spark, table(cfg, catalog.TRAINING_SET))
    runs = {}
    for variant, overrides in (("with comparables", []), ("without comparables", ["features.comparables=false"])):
        vcfg = cfg.with_overrides(overrides)
        t0 = time.time()
        summary = train.run(spark, vcfg)
        print(summary.render(), flush=True)
        timings[f"train ({variant})"] = round(time.time() - t0, 1)
        runs[variant] = summary.info["mlflow_run_id"]
    assert delta_io.version(spark, table(cfg, catalog.TRAINING_SET)) == ts_version  # the same table for both
    tracking.setup(cfg)
    client = MlflowClient()
    results: dict[str, dict[str, float]] = {}
    frames = {}
    for variant, run_id in runs.items():
        m = client.get_run(run_id).data.metrics
        results[variant] = {"test_rmsle": m["test_rmsle"], "noise_floor_rmsle": m.get("noise_floor_rmsle", float("nan")),
                            "rmsle_over_noise_floor": m.get("rmsle_over_noise_floor", float("nan")),
                            "baseline_brand_category_shrunk_rmsle": m.get("baseline_brand_category_shrunk_rmsle",
                                                                          float("nan")),
                            "best_iteration": m.get("best_iteration", float("nan"))}
        frames[variant] = _test_predictions(spark, cfg, run_id)
    with_, without = frames["with comparables"], frames["without comparables"]
    both = with_.merge(without[["listing_id", "p50_log"]], on="listing_id", suffixes=("", "_without"))
    has = both["cmp_product_sold"].fillna(0).to_numpy() > 0
    subsets = {"test listings with a same-product sale before listing": has,
               "test listings without": ~has}
    by_subset = {name: {"rows": int(mask.sum()),
                        "rmsle_with": rmsle(both["label"].to_numpy()[mask], both["p50_log"].to_numpy()[mask]),
                        "rmsle_without": rmsle(both["label"].to_numpy()[mask],
                                               both["p50_log_without"].to_numpy()[mask])}
                 for name, mask in subsets.items() if mask.any()}
    delta = results["with comparables"]["test_rmsle"] - results["without comparables"]["test_rmsle"]
    rows = int(len(both))
    # Paired bootstrap over test rows: how sure the change is (both models scored the same rows).
    y, a, b = both["label"].to_numpy(), both["p50_log"].to_numpy(), both["p50_log_without"].to_numpy()
    rng = np.random.default_rng(0)
    draws = [rmsle(y[i], a[i]) - rmsle(y[i], b[i]) for i in (rng.integers(0, rows, rows) for _ in range(1000))]
    ci = (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))
    with mlflow.start_run(run_name="comparables-ablation"):
        mlflow.set_tags({"job": "bench", "bench": "comparables"})
        mlflow.log_params({"listings": cfg.simulator.n_listings, "training_table_version": ts_version,
                           "run_with": runs["with comparables"], "run_without": runs["without comparables"],
                           "test_rows": rows})
        mlflow.log_metrics({"rmsle_with": results["with comparables"]["test_rmsle"],
                            "rmsle_without": results["without comparables"]["test_rmsle"], "rmsle_change": delta,
                            "rmsle_change_ci_low": ci[0], "rmsle_change_ci_high": ci[1],
                            **{f"rmsle_with_{i}": v["rmsle_with"] for i, v in enumerate(by_subset.values())},
                            **{f"rmsle_without_{i}": v["rmsle_without"] for i, v in enumerate(by_subset.values())}})
    out = {"date": str(date.today()), "listings": cfg.simulator.n_listings, "training_table_version": ts_version,
           "test_rows": rows, "results": results, "rmsle_change": delta, "rmsle_change_ci95": ci,
           "relative_change": delta / results["without comparables"]["test_rmsle"], "by_subset": by_subset,
           "timings_s": timings, "mlflow_runs": runs}
    res_dir = Path(__file__).parent / "results"
    res_dir.mkdir(exist_ok=True)
    stem = res_dir / f"{date.today()}-comparables-{cfg.simulator.n_listings}"
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2, default=float))
    lines = [f"# Comparable-sales features: {cfg.simulator.n_listings:,} simulated listings", "",
             f"Same `features.training_set` (Delta v{ts_version}), same time split, {rows:,} test sales.", "",
             "| model | test RMSLE | noise floor | RMSLE / floor | best iteration |", "|---|---|---|---|---|"]
    for variant, r in results.items():
        lines.append(f"| {variant} | {r['test_rmsle']:.4f} | {r['noise_floor_rmsle']:.4f} | "
                     f"{r['rmsle_over_noise_floor']:.3f} | {r['best_iteration']:.0f} |")
    lines += ["", f"Change: **{delta:+.4f}** RMSLE ({100 * out['relative_change']:+.1f}%); paired bootstrap 95% "
                  f"interval [{ci[0]:+.4f}, {ci[1]:+.4f}] (1,000 resamples of the test rows).", "",
              "| test subset | rows | RMSLE with | RMSLE without |", "|---|---|---|---|",
              *[f"| {k} | {v['rows']:,} | {v['rmsle_with']:.4f} | {v['rmsle_without']:.4f} |"
                for k, v in by_subset.items()],
              "", "Seconds: " + ", ".join(f"{k} {v}" for k, v in timings.items()), ""]
    stem.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
