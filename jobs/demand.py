"""demand: train the demand model (P(sold within H days | features, price)), identified by the price-exploration
experiment, tracked in MLflow, registered, aliased `challenger` when sane and `champion` when it beats the last.

Steps (``pricing.demand_model.estimator`` explains the model):
1. Two value boosters, the price model's recipe, cross-fitted on the two halves of the sold listings.
2. A distributed ``SparkXGBClassifier`` on the control arm (listings the experiment left alone) that were listed
   at least H days before the latest listing (so their label is known): features, log value, log(own price /
   value) with a monotone decreasing constraint.  Time split by listing time: train, validation (early
   stopping), test (metrics only).
3. The price response: per leaf category, the elasticity ``theta`` that best explains the treatment arm's sales
   under its randomised price nudges, given the classifier's probability at the seller's own price (penalised
   maximum likelihood by Fisher scoring, each iteration one Spark aggregation).
   Then the survival layer: a gamma frailty and the shape of the cumulative hazard over time since listing, by
   maximum likelihood on the treatment arm's sale times (out of sample for the classifier).
4. Test metrics of the served model and of the naive one (the classifier's own price slope); elasticities
   against the simulator's truth when it exists (evaluation only); a monotonicity check.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

from pricing.demand_model.estimator import (
    ALL,
    DemandPredictor,
    cloglog_slope,
)
from pricing.demand_model.training import (
    ELASTICITY_BAND,
    MONOTONE_GRID,
    SAMPLE_ROWS,
    check_monotone,
    clipped_log_loss,
    curves_frame,
    estimate_elasticities,
    estimate_frailty,
    exploration_design,
    fit_classifier,
    fit_value_models,
    gate,
    register,
    sanity,
    test_frame,
    vectors,
    with_demand_inputs,
    with_log_value,
    with_offset,
)
from pricing.optimisation import plots as optimisation_plots
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError, ModelGateError
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.price_model.training import booster_params, check_workers, features_of, git_commit


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("demand")
    d = cfg.demand
    horizon = cfg.features.sold_within_days
    design = exploration_design(cfg)
    if d.identification == "exploration" and design is None:
        raise ConfigError("demand.identification=exploration needs the price-exploration experiment, but the "
                          "landing export has none (simulator.price_nudge_share = 0, an export made before it, or "
                          "a source without one). Regenerate with simulator.price_nudge_share > 0, or set "
                          "demand.identification=naive (a confounded price response)")
    check_workers(spark, cfg.train.num_workers)
    ts_ref = table(cfg, catalog.TRAINING_SET)
    ts_version = delta_io.version(spark, ts_ref)
    ts = delta_io.read(spark, ts_ref, version=ts_version).transform(with_demand_inputs(design, d.elasticity_segment))
    last = ts.agg(F.max("as_of")).first()[0]
    if last is None:
        raise ModelGateError(f"{ts_ref} is empty: run `pricing features` first")
    # A label is known once H days have passed since listing: the latest listing time stands for "now".
    cutoff = last - timedelta(days=horizon)
    test_start = cutoff - timedelta(days=d.test_days)
    valid_start = test_start - timedelta(days=d.validation_days)
    feats = features_of(cfg)
    missing = [c for c in feats if c not in ts.columns]
    if missing:
        raise ConfigError(f"{ts_ref} lacks model feature columns {missing}: rebuild it with `pricing features` "
                          f"(comparable-sales columns need `pricing match` first, or features.comparables=false)")
    cols = ["listing_id", "as_of", *feats, "asking_price", "sold_price", "sold_at", "value_fold",
            "price_nudge", "own_price", "segment", F.col("sold_within_days").cast("double").alias("label")]
    labelled = ts.where(F.col("as_of") <= F.lit(cutoff)).where(F.col("asking_price") > 0).select(*cols)
    rows = {"train": labelled.where(F.col("as_of") < F.lit(valid_start)).count(),
            "valid": labelled.where((F.col("as_of") >= F.lit(valid_start)) & (F.col("as_of") < F.lit(test_start))).count(),
            "test": labelled.where(F.col("as_of") >= F.lit(test_start)).count()}
    summary.rows_in = dict(rows)
    if min(rows.values()) == 0:
        raise ModelGateError(f"empty demand split {rows} (labels need {horizon} days after listing): widen the data "
                             f"window or shrink demand.test_days / validation_days")
    tracking.setup(cfg)
    t0 = time.time()
    value_models = fit_value_models(spark, cfg, ts, feats)
    value_s = time.time() - t0
    bare = DemandPredictor(feats, value_models[0], value_models, {ALL: 0.0}, horizon, 1.0,
                           d.identification, d.elasticity_segment)
    valued = with_log_value(labelled, bare).persist()
    control = valued.where(F.col("price_nudge") == 0).where(F.col("as_of") < F.lit(test_start)).withColumn(
        "is_valid", F.col("as_of") >= F.lit(valid_start))
    clf_cols = [*feats, "log_value", "log_price_to_value"]
    data = vectors(control, clf_cols, "label")
    t1 = time.time()
    classifier = fit_classifier(spark, cfg, data, len(clf_cols))
    clf_s = time.time() - t1
    data.unpersist()
    classifier.feature_names = clf_cols
    realisation = float(labelled.where((F.col("label") == 1) & (F.col("sold_price") > 0)).agg(
        F.avg(F.col("sold_price") / F.col("asking_price"))).first()[0] or 1.0)
    bare = DemandPredictor(feats, classifier, value_models, {ALL: 0.0}, horizon, realisation,
                           d.identification, d.elasticity_segment)
    elasticity_table = pd.DataFrame(columns=["segment", "exploration", "exploration_se", "nudged_rows"])
    elasticity: dict[str, float] = {ALL: 0.0}
    frailty: dict[str, Any] = {}
    if design is not None:
        nudged = with_offset(valued.where(F.col("price_nudge") != 0).where(F.col("as_of") < F.lit(test_start)),
                              bare).persist()
        elasticity, elasticity_table = estimate_elasticities(nudged, d.elasticity_prior_sd)
        frailty = estimate_frailty(nudged, elasticity, last, horizon, d.seed)
        nudged.unpersist()
    predictor = DemandPredictor(feats, classifier, value_models, elasticity, horizon, realisation,
                                d.identification, d.elasticity_segment, **frailty)
    test = valued.where(F.col("as_of") >= F.lit(test_start))
    scored = test_frame(test, predictor)
    y, p, p_naive = scored["y"].to_numpy(), scored["p"].to_numpy(), scored["p_naive"].to_numpy()
    base = float(y.mean())
    metrics: dict[str, float] = {
        "test_logloss": clipped_log_loss(y, p), "test_auc": float(roc_auc_score(y, p)) if 0 < base < 1 else float("nan"),
        "test_brier": float(np.mean((p - y) ** 2)), "test_base_rate": base, "test_mean_p": float(p.mean()),
        "base_rate_logloss": clipped_log_loss(y, np.full_like(y, base)), "naive_test_logloss": clipped_log_loss(y, p_naive),
        "realisation": realisation, "value_fit_seconds": value_s, "classifier_fit_seconds": clf_s,
        "best_iteration": float(getattr(classifier, "best_iteration", -1)),
    }
    nudged_test = scored["nudged"].to_numpy()
    if nudged_test.any():
        metrics["test_logloss_nudged"] = clipped_log_loss(y[nudged_test], p[nudged_test])
        metrics["naive_test_logloss_nudged"] = clipped_log_loss(y[nudged_test], p_naive[nudged_test])
    sample = test.sample(fraction=min(1.0, SAMPLE_ROWS / max(rows["test"], 1)), seed=d.seed)
    band = np.linspace(-ELASTICITY_BAND, ELASTICITY_BAND, 5)
    curves = curves_frame(sample, predictor, np.concatenate([MONOTONE_GRID, band]))
    k = len(MONOTONE_GRID)
    metrics.update(check_monotone(curves, k))
    naive_p = curves[[f"n{k + i}" for i in range(len(band))]].to_numpy()
    curves["naive"] = cloglog_slope(np.tile(band, (len(curves), 1)), naive_p)
    per_seg = curves.groupby("segment").agg(rows=("naive", "size"), naive=("naive", "mean")).reset_index()
    if design is not None:
        per_seg = per_seg.merge(elasticity_table, on="segment", how="outer")
        per_seg["exploration"] = per_seg["exploration"].fillna(elasticity[ALL])
        per_seg["rows"] = per_seg["rows"].fillna(0)
        metrics.update({"elasticity_overall": elasticity[ALL],
                        "elasticity_overall_se": float(elasticity_table.attrs["overall_se"]),
                        "nudged_rows": float(elasticity_table.attrs["nudged_rows"])})
    metrics["naive_elasticity_mean"] = float(curves["naive"].mean())
    if frailty:
        metrics["frailty_k"] = float(frailty["frailty_k"])
        metrics.update({f"exposure_g_{int(t)}d": float(v) for t, v in
                        zip(frailty["exposure_knots"], frailty["exposure_values"], strict=True) if t in (14, 28, 60, 120)})
    from pricing.optimisation.evaluation import elasticity_against_truth

    estimators = per_seg[["segment", "rows", *[c for c in ("exploration", "naive") if c in per_seg]]]
    truth = elasticity_against_truth(spark, cfg, estimators[estimators["rows"] > 0], d.elasticity_segment)
    if truth is not None:
        metrics.update({f"elasticity_truth_{k}": v for k, v in truth[1].items()})
    problems = sanity(metrics, predictor)
    with mlflow.start_run(run_name=f"demand-{cfg.env}") as active, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        run_id = active.info.run_id
        mlflow.set_tags({"job": "demand", "env": cfg.env, "git_commit": git_commit(cfg),
                         "identification": d.identification, "model_name": cfg.mlflow.demand_model_name})
        mlflow.log_params({**{f"demand.{k}": v for k, v in d.model_dump(mode="json").items()},
                           "horizon_days": horizon, "training_table": str(ts_ref), "training_table_version": ts_version,
                           "exploration": json.dumps(None if design is None else design.__dict__),
                           "valid_start": str(valid_start), "test_start": str(test_start), "cutoff": str(cutoff),
                           "rows_train": rows["train"], "rows_valid": rows["valid"], "rows_test": rows["test"],
                           "value_model_params": json.dumps(booster_params(cfg.train))})
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        report = truth[0] if truth is not None else per_seg
        report.to_csv(tmp / "elasticity.csv", index=False)
        mlflow.log_artifact(str(tmp / "elasticity.csv"))
        served_mean = curves[[f"s{i}" for i in range(k)]].mean().to_numpy()
        naive_mean = curves[[f"n{i}" for i in range(k)]].mean().to_numpy()
        named = {"served (" + d.identification + ")": served_mean, "naive (observational slope)": naive_mean}
        for png in (optimisation_plots.elasticities(report, tmp / "elasticity.png"),
                    optimisation_plots.demand_curves(MONOTONE_GRID, named, tmp / "demand_curves.png"),
                    optimisation_plots.reliability(y, p, tmp / "calibration.png")):
            mlflow.log_artifact(str(png), "plots")
        version = register(cfg, predictor, sample, tmp, run_id, metrics, problems, str(ts_ref), ts_version)
        champion, reason = gate(cfg, version, problems, metrics["test_logloss"], test)
        mlflow.set_tags({"sanity": "passed" if not problems else "; ".join(problems), "promotion": reason})
    valued.unpersist()
    summary.rows_out["model_version"] = version
    summary.task_values["demand_version"] = champion if champion is not None else ""
    summary.info.update({
        "mlflow_run_id": run_id, "model": f"{cfg.mlflow.demand_model_name} v{version}",
        "identification": d.identification, "exploration": None if design is None else design.__dict__,
        "test_logloss": round(metrics["test_logloss"], 4), "test_auc": round(metrics["test_auc"], 4),
        "naive_test_logloss": round(metrics["naive_test_logloss"], 4),
        "elasticity": {"exploration": round(elasticity[ALL], 3), "naive": round(metrics["naive_elasticity_mean"], 3)},
        "sanity": problems if problems else "passed", "promotion": reason,
        "frailty_k": round(float(frailty["frailty_k"]), 3) if frailty else None})
    if truth is not None:
        summary.info["elasticity_vs_truth"] = {k: round(v, 3) for k, v in truth[1].items()}
    return summary.finish()
