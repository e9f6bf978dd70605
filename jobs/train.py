"""train: distributed xgboost.spark price model (median + p10/p90 range) on a time split, judged against
baselines and the noise floor, tracked in MLflow, registered, aliased `challenger` when sane.

Split by sale time: train on older sales, early-stop and calibrate the range on the next weeks
(validation), report on the most recent weeks (test), which never choose anything.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import mlflow
import yaml
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError, ModelGateError
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.price_model import plots
from pricing.price_model.evaluation import (
    SEGMENTS,
    baseline_metrics,
    baseline_predictions,
    brand_tiers,
    overall_metrics,
    segment_metrics,
    with_segments,
)
from pricing.price_model.predictor import (
    ALL,
)
from pricing.price_model.training import (
    EVAL_COLS,
    assemble,
    booster_params,
    check_workers,
    features_of,
    fit_predictor,
    flat_params,
    git_commit,
    labelled,
    log_lineage,
    model_card,
    register,
    rmsle_without_comparables,
    sanity,
    score_with_labels,
    simulator_noise_floor,
    time_split,
    tune_params,
)


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("train")
    t = cfg.train
    feats = features_of(cfg)
    if t.interval_segment != "none" and t.interval_segment not in feats:
        raise ConfigError(f"train.interval_segment {t.interval_segment!r} is not a model feature; choose 'none' "
                          f"or one of {', '.join(feats)}")
    check_workers(spark, t.num_workers)
    ts_ref = table(cfg, catalog.TRAINING_SET)
    ts_version = delta_io.version(spark, ts_ref)
    data = labelled(delta_io.read(spark, ts_ref, version=ts_version)).persist()
    if cfg.features.comparables and data.where(F.col("cmp_near_sold").isNotNull()).isEmpty():
        raise ConfigError(f"features.comparables is on but {ts_ref} was built without comparable-sales features: "
                          "run `pricing match` and `pricing features` (or set features.comparables=false)")
    split = time_split(data, cfg)
    rows = {"train": split.train.count(), "valid": split.valid.count(), "test": split.test.count()}
    summary.rows_in = dict(rows)
    if min(rows.values()) == 0:
        raise ModelGateError(f"empty split {rows}: widen the data window or shrink test/validation days")
    tracking.setup(cfg)
    assembled = assemble(split, feats)
    t_prep = time.time()
    assembled.count()  # materialise the cache here: fit_seconds then times xgboost.spark alone
    prepare_s = time.time() - t_prep
    with mlflow.start_run(run_name=f"train-{cfg.env}") as active, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        run_id = active.info.run_id
        resolved = cfg.model_dump(mode="json", by_alias=True)
        flat = flat_params(resolved, "cfg.")
        for chunk in range(0, len(flat), 90):
            mlflow.log_params(dict(list(flat.items())[chunk:chunk + 90]))
        mlflow.log_text(yaml.safe_dump(resolved, sort_keys=False), "config.yml")
        mlflow.log_params({"features": ",".join(feats), "n_features": len(feats),
                           "training_table": str(ts_ref), "training_table_version": ts_version,
                           "valid_start": str(split.valid_start), "test_start": str(split.test_start),
                           "rows_train": rows["train"], "rows_valid": rows["valid"], "rows_test": rows["test"]})
        mlflow.set_tags({"git_commit": git_commit(cfg), "env": cfg.env, "job": "train",
                         "intervals": t.intervals, "model_name": cfg.mlflow.model_name})
        log_lineage(spark, ts_ref, ts_version)
        params = booster_params(t)
        if t.tuning.enabled:
            params = tune_params(spark, cfg, split, assembled)
            mlflow.set_tag("tuned", "true")
        mlflow.log_params({f"model.{k}": v for k, v in params.items()})
        predictor, history, fit_s = fit_predictor(spark, cfg, split, assembled, params)
        assembled.unpersist()
        client = MlflowClient()
        stamp = int(time.time() * 1000)
        for name, values in history.items():
            batch = [Metric(f"valid_{name}", float(v), stamp, i) for i, v in enumerate(values)]
            for i in range(0, len(batch), 900):
                client.log_batch(run_id, metrics=batch[i:i + 900])
        test = with_segments(score_with_labels(split.test, predictor, EVAL_COLS),
                             brand_tiers(split.train, t.brand_tier_min_sales))
        metrics = overall_metrics(test, t.quantiles)
        base = baseline_metrics(test, baseline_predictions(split.train, test, cfg.features.shrinkage_k))
        seg = segment_metrics(test, SEGMENTS, t.quantiles)
        floor = simulator_noise_floor(spark, cfg, split, test)
        logged = {f"test_{k}": v for k, v in metrics.items()}
        logged.update({f"baseline_{k}_{m}": v for k, d in base.items() for m, v in d.items()})
        logged.update({"prepare_seconds": prepare_s, "fit_seconds": fit_s, "best_iteration": float(getattr(predictor.median, "best_iteration", -1))})
        if floor:
            logged.update({"noise_floor_rmsle": floor, "rmsle_over_noise_floor": metrics["rmsle"] / floor})
        g_lo, g_hi = predictor.intervals.offsets[ALL]
        if predictor.intervals.method == "conformal":
            logged.update({"interval_lo": g_lo, "interval_hi": g_hi,
                           "interval_segments": float(len(predictor.intervals.offsets) - 1)})
        if cfg.features.comparables:  # the comparable features' worth, on the same split and params
            logged["test_rmsle_without_comparables"] = rmsle_without_comparables(spark, cfg, split, params)
            logged["test_rmsle_delta_comparables"] = metrics["rmsle"] - logged["test_rmsle_without_comparables"]
        mlflow.log_metrics(logged)
        best_base = min(v["rmsle"] for v in base.values())
        problems = sanity(metrics, best_base, cfg, test)
        seg.to_csv(tmp / "segment_metrics.csv", index=False)
        mlflow.log_artifact(str(tmp / "segment_metrics.csv"))
        mlflow.log_table(seg, "segment_metrics.json")
        gain = predictor.median.get_score(importance_type="total_gain")
        mlflow.log_dict(dict(sorted(gain.items(), key=lambda kv: -kv[1])), "feature_importance.json")
        for png in (plots.feature_importance(gain, tmp / "feature_importance.png"),
                    plots.residuals(test["label"].to_numpy(), test["p50_log"].to_numpy(), tmp / "residuals.png"),
                    plots.calibration(test["label"].to_numpy(), test["p10_log"].to_numpy(), test["p50_log"].to_numpy(),
                                      test["p90_log"].to_numpy(), tmp / "calibration.png"),
                    plots.segment_rmsle(seg, tmp / "segment_rmsle.png")):
            mlflow.log_artifact(str(png), "plots")
        card = model_card(cfg, ts_ref, ts_version, split, rows, metrics, base, floor, predictor, problems, seg, fit_s)
        mlflow.log_text(card, "model_card.md")
        version = register(cfg, predictor, split, tmp, run_id, metrics, best_base, floor, ts_ref, ts_version, problems)
        mlflow.set_tag("sanity", "passed" if not problems else "; ".join(problems))
    data.unpersist()
    summary.info.update({
        "mlflow_run_id": run_id, "model": f"{cfg.mlflow.model_name} v{version}",
        "prepare_seconds": round(prepare_s, 1), "fit_seconds": round(fit_s, 1),
        "test_rmsle": round(metrics["rmsle"], 4), "coverage_80": round(metrics["coverage_80"], 3),
        "baselines_rmsle": {k: round(v["rmsle"], 4) for k, v in base.items()},
        "sanity": problems if problems else "passed -> alias challenger"})
    if floor:
        summary.info["vs_noise_floor"] = round(metrics["rmsle"] / floor, 3)
    if "test_rmsle_without_comparables" in logged:
        summary.info["test_rmsle_without_comparables"] = round(logged["test_rmsle_without_comparables"], 4)
    summary.rows_out["model_version"] = version
    summary.task_values["model_version"] = version
    return summary.finish()
