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

Then the **policy value** of each: the test listings priced by the recommend job's optimiser, with each model's
sale probability at the listing's own price as ``P0`` and everything else the served demand model's (the
champion's per-segment theta, frailty and survival layer), so the models differ only in ``P0``.  The candidates
and guardrails are recommend's (``with_band``, ``with_candidates``); each judged objective
(``recommend.evaluate_objectives``) picks its own price, and the simulator's true value of that price
(``evaluate_batch``) is reported as a share of the guardrailed oracle's, beside the best flat rule.  The served
model's own classifier (value features, fitted by the demand job) is judged the same way, for reference.

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
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.metrics import log_loss, roc_auc_score

from pricing.demand_model.estimator import DemandPredictor, choose_under, objective_value, price_response
from pricing.demand_model.hazard import interval_bounds, p_sold_within, person_period
from pricing.demand_model.training import exploration_design, load_demand_version, with_demand_inputs
from pricing.optimisation.evaluation import BASELINES, TRUTH_COLS, evaluate_batch
from pricing.optimisation.recommend import demand_champion, with_band, with_candidates
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config, load_config
from pricing.platform.objective import Objective
from pricing.platform.spark import get_spark
from pricing.platform.tables import table
from pricing.price_model.training import features_of

RESULTS = Path(__file__).resolve().parent / "results"
DAY = 86400.0


def fit(X: np.ndarray, y: np.ndarray, valid: np.ndarray, params: dict, rounds: int, stop: int) -> xgb.Booster:
    train = xgb.DMatrix(X[~valid], y[~valid])
    hold = xgb.DMatrix(X[valid], y[valid])
    return xgb.train(params, train, rounds, evals=[(hold, "valid")], early_stopping_rounds=stop, verbose_eval=False)


def policy_frame(cfg: Config, ts: DataFrame, ids: np.ndarray, predictor: DemandPredictor) -> pd.DataFrame:
    """The test listings (``ids``, in that order) with recommend's guardrail band and candidate prices, the served
    model's inputs and the simulator's true demand."""
    spark = ts.sparkSession
    truth = delta_io.read(spark, table(cfg, catalog.TRUTH_LISTINGS)).select("listing_id", *TRUTH_COLS)
    wanted = spark.createDataFrame(pd.DataFrame({"listing_id": ids.astype(np.int64)}))
    cols = sorted({*predictor.features, "value_fold", "own_price", "segment", "floor", "ceiling", "band_lo",
                   "band_hi", "candidates", *TRUTH_COLS})
    rows = (ts.join(F.broadcast(wanted), "listing_id").join(truth, "listing_id")
            .withColumn("current_price", F.col("own_price"))
            .transform(with_band(cfg.score, cfg.recommend.max_change))
            .transform(with_candidates(cfg.recommend.grid_size, cfg.score.price_points))
            .select("listing_id", *cols).toPandas())
    return rows.set_index("listing_id").loc[ids].reset_index()


def policy_value(frame: pd.DataFrame, p0: np.ndarray, predictor: DemandPredictor, objective: Objective
                 ) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray]]:
    """The share of the guardrailed oracle's true value that the optimiser reaches under ``objective`` with the
    sale probability ``p0`` at the own price (the served model's price response around it), and the best flat
    rule's; and per listing, the optimised price's true value and the oracle's (for :func:`paired_se`)."""
    prices = np.stack(list(frame["candidates"])).astype(np.float64)
    own = frame["own_price"].to_numpy(dtype=np.float64)
    theta = predictor.theta(frame["segment"])
    p_sale = price_response(np.clip(p0, 1e-6, 1 - 1e-6)[:, None], theta[:, None],
                            np.log(prices) - np.log(own)[:, None], predictor.response_k)
    value = objective_value(predictor, prices, p_sale, objective)
    chosen = prices[np.arange(len(prices)), choose_under(predictor, prices, p_sale, objective, value)]
    assert objective.horizon_days is not None
    judged = evaluate_batch(frame.assign(current_price=own, suggested_price=np.nan, recommended_price=chosen,
                                         naive_price=np.nan), objective.horizon_days, objective)
    oracle = float(judged["gmv_oracle"].sum())
    flats = {b: float(judged[f"gmv_{b}"].sum()) / oracle for b in BASELINES}
    best = max(flats, key=flats.__getitem__)
    return {"optimised": float(judged["gmv_optimised"].sum()) / oracle, "best_flat": best,
            "best_flat_ratio": flats[best], "own": float(judged["gmv_own"].sum()) / oracle,
            "mean_change": float(np.mean(chosen / own - 1.0))}, (judged["gmv_optimised"].to_numpy(),
                                                                 judged["gmv_oracle"].to_numpy())


def paired_se(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], draws: int = 500,
              seed: int = 0) -> float:
    """Bootstrap standard error (listings resampled) of the difference between two policies' shares of the same
    oracle (``(value, oracle)`` per listing each)."""
    rng = np.random.default_rng(seed)
    n = len(a[1])
    diffs = []
    for _ in range(draws):
        i = rng.integers(0, n, n)
        diffs.append((a[0][i].sum() - b[0][i].sum()) / a[1][i].sum())
    return float(np.std(diffs, ddof=1))


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

    tracking.setup(cfg)
    demand_v = demand_champion(cfg)
    predictor = load_demand_version(cfg.mlflow.demand_model_name, demand_v)
    objectives = tuple(o.at(predictor.horizon_days) for o in cfg.recommend.judged_specs())
    frame = policy_frame(cfg, ts, pdf["listing_id"].to_numpy()[test], predictor)
    report["demand_model"] = f"{cfg.mlflow.demand_model_name} v{demand_v} ({predictor.response} response)"
    report["objectives"] = [o.name for o in objectives]

    per_listing: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def judge(name: str, p: np.ndarray, rows: int, seconds: float, **extra: Any) -> None:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        extra["policy"] = {}
        for o in objectives:
            extra["policy"][o.name], per_listing[(name, o.name)] = policy_value(frame, p, predictor, o)
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
    seen = np.flatnonzero((pdf["t"] < T).to_numpy())
    observed = (T - pdf["t"].to_numpy()[seen]) / DAY
    sold_day = (pdf["s"].to_numpy()[seen] - pdf["t"].to_numpy()[seen]) / DAY
    who, interval, y = person_period(sold_day, observed, H, args.step)
    Xh = np.column_stack([X[seen][who], interval.astype(np.float32)])
    t0 = time.time()
    b = fit(Xh, y, valid[seen][who], {**params, "monotone_constraints": mono[:-1] + ",0)"}, rounds, stop)
    n_int = len(interval_bounds(H, args.step)) - 1
    Xt = X[test]
    hazards = np.column_stack([
        b.predict(xgb.DMatrix(np.column_stack([Xt, np.full(len(Xt), j, dtype=np.float32)])),
                  iteration_range=(0, b.best_iteration + 1)) for j in range(n_int)])
    judge("hazard", p_sold_within(hazards), int(len(y)), time.time() - t0, listings=int(len(seen)),
          censored_listings=int(((observed < H) & ~(sold_day < observed)).sum()))
    X_served = predictor.matrix(frame)
    own = np.log(frame["own_price"].to_numpy(dtype=np.float64))
    served = predictor.classify(X_served, predictor.log_value(X_served, frame["value_fold"].to_numpy()), own)
    judge("served classifier (value features)", served, 0, 0.0, listings=0)
    ref = report["models"]["classifier"]["policy"]
    for name, m in report["models"].items():
        for o in report["objectives"]:
            if name != "classifier":
                m["policy"][o]["minus_classifier_se"] = paired_se(per_listing[(name, o)],
                                                                  per_listing[("classifier", o)])
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
        fitted = (f"{m['listings']:,} | {m['train_rows']:,}" if m["train_rows"] else "(the demand job's) | –")
        lines.append(f"| {name} | {fitted} | {m['test_logloss']:.4f} | {m['test_auc']:.4f} | "
                     f"{m['fit_seconds'] if m['train_rows'] else '–'} |")
    lines += ["", f"Policy value on the same test listings, as a share of the guardrailed oracle's true value: "
                  f"each model's P0 at the own price, with {report['demand_model']}'s price response and "
                  f"survival layer.", "",
              "In brackets: the difference from the classifier's, ± its bootstrap standard error (listings "
              "resampled, paired). The test listings are priced at listing time (no time on the market yet), so "
              "the figures differ from the recommend job's, which prices the active catalogue.", "",
              "| model | " + " | ".join(report["objectives"]) + " |", "|---|" + "---|" * len(report["objectives"])]
    for name, m in report["models"].items():
        lines.append(f"| {name} | " + " | ".join(
            f"{m['policy'][o]['optimised']:.4f}" + (f" ({m['policy'][o]['optimised'] - ref[o]['optimised']:+.4f}"
                                                    f" ± {m['policy'][o]['minus_classifier_se']:.4f})"
                                                    if "minus_classifier_se" in m["policy"][o] else "")
            for o in report["objectives"]) + " |")
    first = next(iter(report["models"].values()))["policy"]
    lines.append("| best flat rule (hindsight) | " + " | ".join(
        f"{first[o]['best_flat_ratio']:.4f} ({first[o]['best_flat']})" for o in report["objectives"]) + " |")
    lines.append("| sellers' own prices | " + " | ".join(f"{first[o]['own']:.4f}" for o in report["objectives"])
                 + " |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
