"""demand: train the demand model (P(sold within H days | features, price)), identified by the price-exploration
experiment, tracked in MLflow, registered, aliased `challenger` when sane and `champion` when it beats the last.
The steps are in ``pricing.demand_model.training``; test metrics, elasticities against the truth (evaluation only)
and the monotonicity check in ``pricing.demand_model.evaluation``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
from pyspark.sql import SparkSession

from features.listing_features import TEXT_COLUMNS
from pricing.demand_model.estimator import ALL
from pricing.demand_model.evaluation import evaluate, log_report
from pricing.demand_model.training import (
    check_demand_settings,
    demand_split,
    exploration_design,
    fit_demand,
    gate,
    register,
    with_demand_inputs,
)
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.price_model.training import features_of, git_commit


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("demand")
    d = cfg.demand
    horizon = cfg.features.sold_within_days
    design = exploration_design(cfg)
    check_demand_settings(spark, cfg, design)
    ts_ref = table(cfg, catalog.TRAINING_SET)
    ts_version = delta_io.version(spark, ts_ref)
    ts = (delta_io.read(spark, ts_ref, version=ts_version).drop(*TEXT_COLUMNS)
          .transform(with_demand_inputs(design, d.elasticity_segment)))
    feats = features_of(cfg)
    split = demand_split(ts, cfg, feats, ts_ref)
    rows = split.rows
    summary.rows_in = dict(rows)
    tracking.setup(cfg)
    fitted = fit_demand(spark, cfg, ts, split, feats, design)
    ev = evaluate(spark, cfg, fitted, split, design)
    metrics, predictor = ev.metrics, fitted.predictor
    with mlflow.start_run(run_name=f"demand-{cfg.env}") as active, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        run_id = active.info.run_id
        mlflow.set_tags({"job": "demand", "env": cfg.env, "git_commit": git_commit(cfg),
                         "identification": d.identification, "model_name": cfg.mlflow.demand_model_name})
        mlflow.log_params({**{f"demand.{k}": v for k, v in d.model_dump(mode="json").items()},
                           "horizon_days": horizon, "training_table": str(ts_ref), "training_table_version": ts_version,
                           "exploration": json.dumps(None if design is None else design.__dict__),
                           "valid_start": str(split.valid_start), "test_start": str(split.test_start),
                           "cutoff": str(split.cutoff),
                           "rows_train": rows["train"], "rows_valid": rows["valid"], "rows_test": rows["test"],
                           "value_model_params": json.dumps(cfg.train.booster.tree_params())})
        log_report(tmp, ev, d.identification)
        # Logs the model, then the metrics with its model_id: the run's metrics are also the logged model's.
        version = register(cfg, predictor, ev.sample, tmp, run_id, metrics, ev.problems, str(ts_ref), ts_version)
        champion, reason = gate(cfg, version, ev.problems, metrics["test_logloss"], ev.test)
        mlflow.set_tags({"sanity": ev.verdict, "promotion": reason})
    fitted.valued.unpersist()
    summary.rows_out["model_version"] = version
    summary.task_values["demand_version"] = champion if champion is not None else ""
    summary.info.update({
        "mlflow_run_id": run_id, "model": f"{cfg.mlflow.demand_model_name} v{version}",
        "identification": d.identification, "exploration": None if design is None else design.__dict__,
        "test_logloss": round(metrics["test_logloss"], 4), "test_auc": round(metrics["test_auc"], 4),
        "naive_test_logloss": round(metrics["naive_test_logloss"], 4),
        "elasticity": {"exploration": round(fitted.elasticity[ALL], 3),
                       "naive": round(metrics["naive_elasticity_mean"], 3),
                       **{k.removeprefix("elasticity_").removesuffix("_overall"): round(v, 3)
                          for k, v in metrics.items() if k.endswith("_overall") and k != "elasticity_overall"},
                       **{k.removeprefix("elasticity_"): round(metrics[k], 3)
                          for k in ("take_up", "selection_cut", "selection_raise", "elasticity_expected_corr")
                          if k in metrics}},
        "sanity": ev.problems if ev.problems else "passed", "promotion": reason,
        "frailty_k": round(float(fitted.frailty["frailty_k"]), 3) if fitted.frailty else None})
    if ev.truth is not None:
        summary.info["elasticity_vs_truth"] = {k: round(v, 3) for k, v in ev.truth.items()}
    return summary.finish()
