"""Does learning from unsold (censored) listings help?  The sale classifier against a discrete-time hazard model
(``pricing.demand_model.hazard``), both fitted with what was known at the start of the demand job's test window.

    .venv/bin/python bench/hazard.py --set storage.root=/tmp/s200 [--step 7]

Reads ``features.training_set`` of an existing state (run ``pricing run`` first) and keeps the exploration
experiment's control arm (prices as sellers set them).  ``T`` is the demand split's test start; the test rows are
the listings of ``[T, T + demand.test_days)``, whose H-day labels are known.  Fitted on information known at
``T`` only:

* ``classifier``: P(sold within H) on listings listed before ``T - H`` (their labels are known at ``T``);
* ``hazard``: the interval hazard on every listing listed before ``T``, each watched until ``T`` (the newest
  ones are censored: they still say they did not sell in their first days);
* ``classifier, labels from the future``: listings listed before ``T`` with labels seen after ``T``, as the
  demand job fits it (for reference: its newest training labels resolve inside the test window).

The same inputs for all (the listing features and log asking price, monotone decreasing in price), the same
booster settings (``demand.booster``), early stopping on a hashed 10% of the listings.  Writes
bench/results/<date>-hazard-<listings>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import xgboost as xgb
from pyspark.sql import functions as F
from sklearn.metrics import log_loss, roc_auc_score

from pricing.demand_model.hazard import interval_bounds, p_sold_within, person_period
from pricing.demand_model.training import exploration_design, with_demand_inputs
from pricing.platform import catalog, delta_io
from pricing.platform.config import load_config
from pricing.platform.spark import get_spark
from pricing.platform.tables import table
from pricing.price_model.training import features_of

RESULTS = Path(__file__).resolve().parent / "results"
DAY = 86400.0


def fit(X: np.ndarray, y: np.ndarray, valid: np.ndarray, params: dict, rounds: int, stop: int) -> xgb.Booster:
    train = xgb.DMatrix(X[~valid], y[~valid])
    hold = xgb.DMatrix(X[valid], y[valid])
    return xgb.train(params, train, rounds, evals=[(hold, "valid")], early_stopping_rounds=stop, verbose_eval=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", default=[], help="config override, as for pricing --set")
    ap.add_argument("--step", type=int, default=7, help="hazard interval, days")
    args = ap.parse_args()
    cfg = load_config("local", args.set)
    spark = get_spark(cfg)
    H, d = cfg.features.sold_within_days, cfg.demand
    feats = list(features_of(cfg))
    ts = delta_io.read(spark, table(cfg, catalog.TRAINING_SET)).transform(
        with_demand_inputs(exploration_design(cfg), d.elasticity_segment))
    pdf = (ts.where((F.col("suggestion") == 0) & (F.col("asking_price") > 0))
           .select("listing_id", F.col("as_of").cast("double").alias("t"), F.col("sold_at").cast("double").alias("s"),
                   F.col("sold_within_days").cast("double").alias("label"), F.log("asking_price").alias("log_price"),
                   *[F.col(c).cast("double") for c in feats]).toPandas())
    last = float(pdf["t"].max())
    cutoff = last - H * DAY
    T = cutoff - d.test_days * DAY
    cols = [*feats, "log_price"]
    X = pdf[cols].to_numpy(dtype=np.float32)
    valid = (pdf["listing_id"].to_numpy() % 10) == 0
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 2, "tree_method": "hist",
              "seed": d.booster.seed, **d.booster.tree_params()}
    rounds, stop = d.booster.n_estimators, d.booster.early_stopping_rounds
    test = ((pdf["t"] >= T) & (pdf["t"] < cutoff)).to_numpy()
    y_test = pdf["label"].to_numpy()[test]
    report: dict = {"listings_control_arm": int(len(pdf)), "test_rows": int(test.sum()), "horizon_days": H,
                    "step_days": args.step, "T": str(date.fromtimestamp(T)), "models": {}}

    def judge(name: str, p: np.ndarray, rows: int, seconds: float, **extra: float) -> None:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        report["models"][name] = {"test_logloss": float(log_loss(y_test, p, labels=[0, 1])),
                                  "test_auc": float(roc_auc_score(y_test, p)), "train_rows": rows,
                                  "fit_seconds": round(seconds, 1), **extra}

    mono = "(" + ",".join(["0"] * len(feats) + ["-1"]) + ")"
    for name, before in (("classifier", T - H * DAY), ("classifier, labels from the future", T)):
        rows = (pdf["t"] < before).to_numpy()
        t0 = time.time()
        b = fit(X[rows], pdf["label"].to_numpy()[rows], valid[rows], {**params, "monotone_constraints": mono},
                rounds, stop)
        judge(name, b.predict(xgb.DMatrix(X[test]), iteration_range=(0, b.best_iteration + 1)), int(rows.sum()),
              time.time() - t0, listings=int(rows.sum()))
    rows = np.flatnonzero((pdf["t"] < T).to_numpy())
    observed = (T - pdf["t"].to_numpy()[rows]) / DAY
    sold_day = (pdf["s"].to_numpy()[rows] - pdf["t"].to_numpy()[rows]) / DAY
    who, interval, y = person_period(sold_day, observed, H, args.step)
    Xh = np.column_stack([X[rows][who], interval.astype(np.float32)])
    t0 = time.time()
    b = fit(Xh, y, valid[rows][who], {**params, "monotone_constraints": mono[:-1] + ",0)"}, rounds, stop)
    n_int = len(interval_bounds(H, args.step)) - 1
    Xt = X[test]
    hazards = np.column_stack([
        b.predict(xgb.DMatrix(np.column_stack([Xt, np.full(len(Xt), j, dtype=np.float32)])),
                  iteration_range=(0, b.best_iteration + 1)) for j in range(n_int)])
    judge("hazard", p_sold_within(hazards), int(len(y)), time.time() - t0, listings=int(len(rows)),
          censored_listings=int(((observed < H) & ~(sold_day < observed)).sum()))
    base = float(np.mean(pdf["label"].to_numpy()[(pdf["t"] < T - H * DAY).to_numpy()]))
    report["base_rate_logloss"] = float(log_loss(y_test, np.full(len(y_test), base), labels=[0, 1]))
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{date.today()}-hazard-{len(pdf) // 1000}k"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    lines = [f"# Sale classifier against a discrete-time hazard model ({date.today()})", "",
             f"Control-arm listings: {len(pdf):,}; test: {test.sum():,} listings of "
             f"[{date.fromtimestamp(T)}, {date.fromtimestamp(T) + timedelta(days=d.test_days)}); "
             f"H = {H} days, intervals of {args.step} days; base-rate log loss {report['base_rate_logloss']:.4f}.", "",
             "| model (known at T) | training listings | training rows | test log loss | test AUC | fit s |",
             "|---|---|---|---|---|---|"]
    for name, m in report["models"].items():
        lines.append(f"| {name} | {m['listings']:,} | {m['train_rows']:,} | {m['test_logloss']:.4f} | "
                     f"{m['test_auc']:.4f} | {m['fit_seconds']} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
