"""train: distributed xgboost.spark price model (median + p10/p90 range) on a time split, judged against
baselines and the noise floor, tracked in MLflow, registered, aliased `challenger` when sane.

Split by listing time (``time_split``): train on the oldest listings, early-stop on the next weeks
(validation), calibrate the range on the weeks after (calibration), and split the newest weeks into the
gate's holdout (sanity, promotion) and the reported test rows, which never choose anything.  A label is a sale
within ``features.sold_within_days`` of listing, and the windows end that long before the latest listing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
from pyspark.sql import SparkSession

from features.listing_features import TEXT_COLUMNS
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.price_model.card import log_report, model_card
from pricing.price_model.registry import register
from pricing.price_model.training import (
    check_comparables,
    check_train_settings,
    evaluate,
    features_of,
    fit_predictor,
    log_history,
    log_run_inputs,
    prepare,
    split_rows,
    time_split,
    tune_params,
    worker_threads,
)


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("train")
    t = cfg.train
    feats = features_of(cfg)
    check_train_settings(spark, cfg, feats)
    ts_ref = table(cfg, catalog.TRAINING_SET)
    ts_version = delta_io.version(spark, ts_ref)
    data = delta_io.read(spark, ts_ref, version=ts_version).drop(*TEXT_COLUMNS).persist()
    check_comparables(cfg, data, ts_ref)
    split = time_split(data, cfg)
    rows = split_rows(split)
    summary.rows_in = dict(rows)
    tracking.setup(cfg)
    assembled, prepare_s = prepare(split, feats, cfg.train.num_workers)
    with mlflow.start_run(run_name=f"train-{cfg.env}") as active, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        run_id = active.info.run_id
        log_run_inputs(spark, cfg, ts_ref, ts_version, split, rows, feats)
        params = t.booster.tree_params()
        if t.tuning.enabled:
            params = tune_params(spark, cfg, split, assembled)
            mlflow.set_tag("tuned", "true")
        threads = worker_threads(spark, cfg)
        mlflow.log_params({**{f"model.{k}": v for k, v in params.items()}, "xgboost_threads_per_worker": threads})
        predictor, history, fit_s = fit_predictor(spark, cfg, split, assembled, params)
        assembled.unpersist()
        log_history(run_id, history)
        ev = evaluate(spark, cfg, split, predictor, params, prepare_s, fit_s)
        log_report(tmp, ev, predictor)
        card = model_card(cfg, ts_ref, ts_version, split, rows, ev, predictor, fit_s)
        mlflow.log_text(card, "model_card.md")
        # Logs the model, then ev.logged with its model_id: the run's metrics are also the logged model's.
        version = register(cfg, predictor, split, tmp, run_id, ev, ts_ref, ts_version, card)
        mlflow.set_tag("sanity", ev.verdict)
    data.unpersist()
    metrics = ev.metrics
    summary.info.update({
        "mlflow_run_id": run_id, "model": f"{cfg.mlflow.model_name} v{version}",
        "xgboost": f"{t.num_workers} worker(s) x {threads} thread(s)",
        "prepare_seconds": round(prepare_s, 1), "fit_seconds": round(fit_s, 1),
        "test_rmsle": round(metrics["rmsle"], 4), "coverage_80": round(metrics["coverage_80"], 3),
        "baselines_rmsle": {k: round(v["rmsle"], 4) for k, v in ev.baselines.items()},
        "sanity": ev.problems if ev.problems else "passed -> alias challenger"})
    if "test_coverage_80_min_segment" in ev.logged:
        summary.info["coverage_80_min_segment"] = round(ev.logged["test_coverage_80_min_segment"], 3)
    summary.info["holdout"] = {"rmsle": round(ev.logged["holdout_rmsle"], 4),
                               "coverage_80": round(ev.logged["holdout_coverage_80"], 3)}
    if ev.noise_floor:
        summary.info["vs_noise_floor"] = round(metrics["rmsle"] / ev.noise_floor, 3)
    if ev.oracle:
        summary.info["vs_structured_oracle"] = round(metrics["rmsle"] / ev.oracle, 3)
    summary.info.update({k: round(v, 4) for k, v in ev.logged.items() if k.startswith("test_rmsle_without_")})
    summary.rows_out["model_version"] = version
    summary.task_values["model_version"] = version
    return summary.finish()
