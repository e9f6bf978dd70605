"""train: distributed xgboost.spark median model on log price + conformal p10/p90, tracked in MLflow,
registered as a new model version, aliased `challenger` when it passes the sanity checks."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.training_set import MODEL_FEATURES
from pricing import delta_io, tracking
from pricing.config import Config
from pricing.errors import ConfigError, ModelGateError
from pricing.metrics import price_metrics, rmsle
from pricing.model import Intervals, PriceModel, quantiles_from_log, score_frame
from pricing.summary import JobSummary
from pricing.tables import table

SEGMENT_COLS = ("category", "condition")


@dataclass(frozen=True)
class Split:
    train: DataFrame
    valid: DataFrame
    test: DataFrame
    valid_start: object
    test_start: object


def labelled(training_set: DataFrame) -> DataFrame:
    return training_set.where(F.col("sold_price").isNotNull() & (F.col("sold_price") > 0)).withColumn(
        "label", F.log1p("sold_price"))


def time_split(df: DataFrame, cfg: Config) -> Split:
    """Train on older sales, validate (early stopping, intervals) on the next weeks, test on the latest."""
    t_max = df.agg(F.max("sold_at")).first()[0]
    if t_max is None:
        raise ModelGateError("the training set has no sold listings: nothing to train on")
    test_start = t_max - timedelta(days=cfg.train.test_days)
    valid_start = test_start - timedelta(days=cfg.train.validation_days)
    return Split(df.where(F.col("sold_at") < F.lit(valid_start)),
                 df.where((F.col("sold_at") >= F.lit(valid_start)) & (F.col("sold_at") < F.lit(test_start))),
                 df.where(F.col("sold_at") >= F.lit(test_start)), valid_start, test_start)


def check_workers(spark: SparkSession, num_workers: int) -> None:
    """xgboost.spark trains in barrier mode: all workers must run at once, or Spark retries for minutes."""
    slots = spark.sparkContext.defaultParallelism
    if num_workers > slots:
        raise ConfigError(f"train.num_workers={num_workers} but the cluster has only {slots} task slots; "
                          f"barrier-mode training would hang. Set train.num_workers <= {slots}.")


def fit_booster(spark: SparkSession, cfg: Config, train: DataFrame, valid: DataFrame):  # type: ignore[no-untyped-def]
    from xgboost.spark import SparkXGBRegressor

    check_workers(spark, cfg.train.num_workers)
    assembler = VectorAssembler(inputCols=list(MODEL_FEATURES), outputCol="features", handleInvalid="keep")
    data = assembler.transform(
        train.withColumn("is_valid", F.lit(False)).unionByName(valid.withColumn("is_valid", F.lit(True)))
        .select(*[F.col(c).cast("double") for c in MODEL_FEATURES], "label", "is_valid"))
    t = cfg.train
    reg = SparkXGBRegressor(
        features_col="features", label_col="label", validation_indicator_col="is_valid",
        num_workers=t.num_workers, device=t.device, objective="reg:squarederror", tree_method="hist",
        max_depth=t.max_depth, learning_rate=t.learning_rate, n_estimators=t.n_estimators,
        min_child_weight=t.min_child_weight, subsample=t.subsample, early_stopping_rounds=t.early_stopping_rounds,
        eval_metric="rmse", random_state=t.seed, force_repartition=True, verbose=False,
    )
    return reg.fit(data)


def _local_frame(df: DataFrame, booster_raw: bytes, iv: Intervals, extra: list[str]) -> pd.DataFrame:
    preds = score_frame(df, booster_raw, MODEL_FEATURES, iv)
    return preds.join(df.select("listing_id", "label", *extra), "listing_id").toPandas()


def evaluate(frame: pd.DataFrame, iv: Intervals) -> dict[str, float]:
    y = frame["label"].to_numpy()
    p50 = np.log1p(frame["p50"].to_numpy())
    return price_metrics(y, p50 + iv.lo, p50, p50 + iv.hi)


def baselines(split: Split, test: pd.DataFrame) -> dict[str, float]:
    """Global median and category x condition median (from the training weeks), scored on the test weeks."""
    y = test["label"].to_numpy()
    global_med = split.train.agg(F.percentile_approx("label", 0.5, 10000)).first()[0]
    seg = split.train.groupBy(*SEGMENT_COLS).agg(F.percentile_approx("label", 0.5, 10000).alias("m")).toPandas()
    joined = test.merge(seg, on=list(SEGMENT_COLS), how="left")["m"].fillna(global_med).to_numpy()
    return {"baseline_global_median_rmsle": rmsle(y, np.full_like(y, global_med)),
            "baseline_category_condition_rmsle": rmsle(y, joined)}


def noise_floor(spark: SparkSession, cfg: Config, split: Split, test: pd.DataFrame) -> float | None:
    """Best achievable RMSLE from observable fields, from the simulator's truth (evaluation only)."""
    ref = table(cfg, "truth.listings")
    if not delta_io.exists(spark, ref):
        return None
    truth = delta_io.read(spark, ref).select("listing_id", "log_fair_observable")
    offset = split.train.join(truth, "listing_id").agg(F.avg(F.col("label") - F.col("log_fair_observable"))).first()[0]
    t = test.merge(truth.toPandas(), on="listing_id", how="inner") if len(test) else test
    if not len(t) or offset is None:
        return None
    return rmsle(t["label"].to_numpy(), t["log_fair_observable"].to_numpy() + offset)


def sanity(metrics: dict[str, float], base: dict[str, float], cfg: Config, frame: pd.DataFrame) -> list[str]:
    """Reasons the model is not fit to serve; empty when it passes."""
    problems = []
    if frame[["p10", "p50", "p90"]].isna().any().any():
        problems.append("NaN predictions")
    if not ((frame["p10"] <= frame["p50"]) & (frame["p50"] <= frame["p90"])).all():
        problems.append("quantiles cross")
    if abs(metrics["coverage_80"] - 0.8) > cfg.promote.max_coverage_error:
        problems.append(f"80% interval coverage {metrics['coverage_80']:.3f} is off by more than "
                        f"{cfg.promote.max_coverage_error}")
    best = min(base.values())
    if metrics["rmsle"] >= best:
        problems.append(f"RMSLE {metrics['rmsle']:.4f} does not beat the best baseline {best:.4f}")
    return problems


def _git_commit(cfg: Config) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=cfg.project_dir, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("train")
    ts_ref = table(cfg, "features.training_set")
    ts_version = delta_io.version(spark, ts_ref)
    data = labelled(delta_io.read(spark, ts_ref, version=ts_version)).persist()
    split = time_split(data, cfg)
    summary.rows_in = {"train": split.train.count(), "valid": split.valid.count(), "test": split.test.count()}
    if min(summary.rows_in.values()) == 0:
        raise ModelGateError(f"empty split {summary.rows_in}: widen the data window or shrink test/validation days")
    tracking.setup(cfg)
    with mlflow.start_run(run_name=f"train-{cfg.env}") as active:
        run_id = active.info.run_id
        mlflow.log_params({f"train.{k}": v for k, v in cfg.train.model_dump().items()})
        mlflow.log_params({"features": ",".join(MODEL_FEATURES), "training_table": str(ts_ref),
                           "training_table_version": ts_version, "valid_start": str(split.valid_start),
                           "test_start": str(split.test_start)})
        mlflow.set_tags({"git_commit": _git_commit(cfg), "env": cfg.env, "job": "train"})
        model = fit_booster(spark, cfg, split.train, split.valid)
        booster = model.get_booster()
        raw = bytes(booster.save_raw("json"))
        history = getattr(getattr(model, "training_summary", None), "validation_objective_history", {}) or {}
        for metric_name, values in history.items():
            for step, v in enumerate(values):
                mlflow.log_metric(f"valid_{metric_name}", float(v), step=step)
        zero = Intervals(0.0, 0.0)
        valid = _local_frame(split.valid, raw, zero, [])
        resid = valid["label"].to_numpy() - np.log1p(valid["p50"].to_numpy())
        a_lo, _, a_hi = cfg.train.quantiles
        iv = Intervals(min(0.0, float(np.quantile(resid, a_lo))), max(0.0, float(np.quantile(resid, a_hi))))
        test = _local_frame(split.test, raw, iv, list(SEGMENT_COLS))
        metrics = {f"test_{k}": v for k, v in evaluate(test, iv).items()}
        base = baselines(split, test)
        floor = noise_floor(spark, cfg, split, test)
        if floor:
            metrics["noise_floor_rmsle"] = floor
            metrics["rmsle_over_noise_floor"] = metrics["test_rmsle"] / floor
        mlflow.log_metrics({**metrics, **base, "interval_lo": iv.lo, "interval_hi": iv.hi})
        problems = sanity({"rmsle": metrics["test_rmsle"], "coverage_80": metrics["test_coverage_80"]}, base, cfg, test)
        version = _log_and_register(cfg, booster, raw, iv, split, test, metrics, ts_version, problems)
        mlflow.set_tag("sanity", "passed" if not problems else "; ".join(problems))
    data.unpersist()
    summary.info.update({"mlflow_run_id": run_id, "model": f"{cfg.mlflow.model_name} v{version}",
                         "test_rmsle": round(metrics["test_rmsle"], 4),
                         "baselines": {k: round(v, 4) for k, v in base.items()},
                         "sanity": problems if problems else "passed -> alias challenger"})
    if floor:
        summary.info["vs_noise_floor"] = round(metrics["rmsle_over_noise_floor"], 3)
    summary.rows_out["model_version"] = version
    return summary.finish()


def _log_and_register(cfg: Config, booster, raw: bytes, iv: Intervals, split: Split,  # type: ignore[no-untyped-def]
                      test: pd.DataFrame, metrics: dict[str, float], ts_version: int, problems: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        booster_path = Path(tmp) / "booster.json"
        booster_path.write_bytes(raw)
        meta_path = Path(tmp) / "meta.json"
        meta_path.write_text(json.dumps({"features": list(MODEL_FEATURES), "interval_lo": iv.lo, "interval_hi": iv.hi}))
        example = split.test.select(*MODEL_FEATURES).limit(5).toPandas().astype("float64")
        p10, p50, p90 = quantiles_from_log(np.log1p(test["p50"].to_numpy()[:5]), iv)
        signature = infer_signature(example, pd.DataFrame({"p10": p10, "p50": p50, "p90": p90}))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=PriceModel(), artifacts={"booster": str(booster_path), "meta": str(meta_path)},
            signature=signature, input_example=example, registered_model_name=cfg.mlflow.model_name,
        )
    client = MlflowClient()
    version = int(info.registered_model_version)
    tags = {"training_table_version": str(ts_version), "test_rmsle": f"{metrics['test_rmsle']:.5f}",
            "sanity": "passed" if not problems else "; ".join(problems)}
    for k, v in tags.items():
        client.set_model_version_tag(cfg.mlflow.model_name, str(version), k, v)
    if not problems:
        client.set_registered_model_alias(cfg.mlflow.model_name, tracking.CHALLENGER, str(version))
    return version


def main(argv: list[str] | None = None) -> int:
    from pricing.cli import main as cli_main

    return cli_main(["train", *(argv or [])])
