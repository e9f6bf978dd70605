"""Library half of the ``train`` job (moved out of ``jobs/train.py``).

train: distributed xgboost.spark price model (median + p10/p90 range) on a time split, judged against
baselines and the noise floor, tracked in MLflow, registered, aliased `challenger` when sane.

Split by sale time: train on older sales, early-stop and calibrate the range on the next weeks
(validation), report on the most recent weeks (test), which never choose anything.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.training_set import MODEL_FEATURES, model_features
from pricing.platform import catalog, delta_io, faults, tracking
from pricing.platform.config import Config, TrainConfig
from pricing.platform.errors import ConfigError, ModelGateError
from pricing.platform.tables import TableRef, table
from pricing.price_model.evaluation import (
    noise_floor,
)
from pricing.price_model.predictor import (
    ALL,
    Intervals,
    PriceModel,
    PricePredictor,
    conformal_offsets,
    score_frame,
)

EVAL_COLS = ("brand", "category", "condition", "seller_prior_listings")


"""Columns the per-segment evaluation needs besides the label."""


WORKER_WAIT_S = 120


"""How long to wait for executors to register before refusing to start barrier-mode training."""


@dataclass(frozen=True)
class Split:
    train: DataFrame
    valid: DataFrame
    test: DataFrame
    valid_start: object
    test_start: object
    end: object


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
                 df.where(F.col("sold_at") >= F.lit(test_start)), valid_start, test_start, t_max)


def task_slots(spark: SparkSession) -> int:
    """Tasks the cluster can run at once: what barrier mode checks (``spark.default.parallelism`` is not)."""
    sc = spark.sparkContext._jsc.sc()  # type: ignore[union-attr]
    try:
        return int(sc.maxNumConcurrentTasks(sc.resourceProfileManager().defaultResourceProfile()))
    except Exception:  # an unexpected JVM API change must not block training; the barrier check still runs
        return int(spark.sparkContext.defaultParallelism)


def check_workers(spark: SparkSession, num_workers: int, wait_s: float = WORKER_WAIT_S) -> int:
    """xgboost.spark trains in barrier mode: all workers must run at once, or Spark retries for minutes
    and fails.  Waits for executors to register (a cluster starting up), then fails fast and clearly."""
    deadline = time.time() + wait_s
    slots = task_slots(spark)
    while slots < num_workers and time.time() < deadline and not spark.sparkContext.master.startswith("local"):
        time.sleep(2)
        slots = task_slots(spark)
    if num_workers > slots:
        raise ConfigError(f"train.num_workers={num_workers} but the cluster runs only {slots} tasks at once; "
                          f"barrier-mode training would hang. Set train.num_workers <= {slots}.")
    return slots


def booster_params(t: TrainConfig) -> dict[str, Any]:
    """The model hyperparameters (what tuning searches over)."""
    return {"max_depth": t.max_depth, "learning_rate": t.learning_rate, "min_child_weight": t.min_child_weight,
            "subsample": t.subsample, "colsample_bytree": t.colsample_bytree, "reg_lambda": t.reg_lambda}


def features_of(cfg: Config) -> tuple[str, ...]:
    """The model's inputs under ``cfg``: ``features.comparables`` switches the comparable-sales ones."""
    return model_features(cfg.features.comparables)


def assemble(split: Split, features: tuple[str, ...] = MODEL_FEATURES) -> DataFrame:
    """Training and validation rows as one frame with a Vector ``features`` column (measured faster than
    a list of columns) and a boolean ``is_valid`` for early stopping.  Cached: every fit reads it."""
    assembler = VectorAssembler(inputCols=list(features), outputCol="features", handleInvalid="keep")
    rows = (split.train.withColumn("is_valid", F.lit(False))
            .unionByName(split.valid.withColumn("is_valid", F.lit(True)))
            .select(*[F.col(c).cast("double") for c in features], "label", "is_valid"))
    return assembler.transform(rows).select("features", "label", "is_valid").persist()


def fit(spark: SparkSession, cfg: Config, data: DataFrame, params: dict[str, Any],
        quantile: float | None = None, features: tuple[str, ...] = MODEL_FEATURES):  # type: ignore[no-untyped-def]
    """One xgboost.spark fit on ``assemble``'s frame (assembled from ``features``); squared error, or pinball
    loss at ``quantile``."""
    from xgboost.spark import SparkXGBRegressor

    t = cfg.train
    check_workers(spark, t.num_workers)
    objective = {"objective": "reg:squarederror", "eval_metric": "rmse"} if quantile is None else {
        "objective": "reg:quantileerror", "quantile_alpha": quantile}
    reg = SparkXGBRegressor(
        features_col="features", label_col="label", validation_indicator_col="is_valid",
        num_workers=t.num_workers, device=t.device, tree_method="hist", n_estimators=t.n_estimators,
        early_stopping_rounds=t.early_stopping_rounds, random_state=t.seed, force_repartition=True,
        verbose=False, **objective, **params,
    )
    model = reg.fit(data)
    booster = model.get_booster()
    booster.feature_names = list(features)
    return model, booster


def score_with_labels(df: DataFrame, predictor: PricePredictor, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Distributed predictions joined to the label (and ``extra`` columns), on the driver, log scale."""
    preds = score_frame(df, predictor)
    out = preds.join(df.select("listing_id", "label", *extra), "listing_id").toPandas()
    for q in ("p10", "p50", "p90"):
        out[f"{q}_log"] = np.log1p(out[q].to_numpy())
    return out


def fit_predictor(spark: SparkSession, cfg: Config, split: Split, data: DataFrame,
                  params: dict[str, Any]) -> tuple[PricePredictor, dict[str, list[float]], float]:
    """Median model (+ p10/p90 boosters, or conformal offsets from the validation weeks), its validation
    history and the seconds spent fitting."""
    t = cfg.train
    feats = features_of(cfg)
    seg_feature = None if t.interval_segment == "none" else t.interval_segment
    t0 = time.time()
    model, median = fit(spark, cfg, data, params, features=feats)
    history = dict(getattr(getattr(model, "training_summary", None), "validation_objective_history", {}) or {})
    if t.intervals == "quantile":
        lower = fit(spark, cfg, data, params, quantile=t.quantiles[0], features=feats)[1]
        upper = fit(spark, cfg, data, params, quantile=t.quantiles[2], features=feats)[1]
        return (PricePredictor(feats, median, Intervals("quantile"), lower, upper), history,
                time.time() - t0)
    fit_s = time.time() - t0
    bare = PricePredictor(feats, median, Intervals("conformal", seg_feature))
    valid = score_with_labels(split.valid, bare, (seg_feature,) if seg_feature else ())
    resid = valid["label"].to_numpy() - valid["p50_log"].to_numpy()
    seg = valid[seg_feature].to_numpy(dtype=float) if seg_feature else None
    offsets = conformal_offsets(resid, seg, (t.quantiles[0], t.quantiles[2]), t.interval_min_rows)
    return PricePredictor(feats, median, Intervals("conformal", seg_feature, offsets)), history, fit_s


def rmsle_without_comparables(spark: SparkSession, cfg: Config, split: Split, params: dict[str, Any]) -> float:
    """Ablation for the comparable-sales features: a second median booster on the same split and with the same
    params, without the ``cmp_*`` columns; its test RMSLE (log scale, as ``test_rmsle``).  Evaluation only:
    nothing of it is registered."""
    from pricing.price_model.metrics import rmsle

    feats = model_features(False)
    data = assemble(split, feats)
    try:
        booster = fit(spark, cfg, data, params, features=feats)[1]
    finally:
        data.unpersist()
    test = score_with_labels(split.test, PricePredictor(feats, booster, Intervals("conformal")))
    return rmsle(test["label"].to_numpy(), test["p50_log"].to_numpy())


def sanity(metrics: dict[str, float], best_baseline: float, cfg: Config, frame: pd.DataFrame) -> list[str]:
    """Reasons the model is not fit to serve; empty when it passes."""
    problems = []
    if frame[["p10", "p50", "p90"]].isna().any().any() or not np.isfinite(frame[["p10", "p50", "p90"]]).all().all():
        problems.append("NaN or infinite predictions")
    if not ((frame["p10"] <= frame["p50"]) & (frame["p50"] <= frame["p90"])).all():
        problems.append("quantiles cross")
    target = cfg.train.quantiles[2] - cfg.train.quantiles[0]
    if abs(metrics["coverage_80"] - target) > cfg.promote.max_coverage_error:
        problems.append(f"interval coverage {metrics['coverage_80']:.3f} is off the target {target:.2f} by more "
                        f"than {cfg.promote.max_coverage_error}")
    if metrics["rmsle"] >= best_baseline:
        problems.append(f"RMSLE {metrics['rmsle']:.4f} does not beat the best baseline {best_baseline:.4f}")
    return problems


def git_commit(cfg: Config) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=cfg.project_dir, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def flat_params(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flat_params(v, key + "."))
        else:
            out[key] = json.dumps(v, default=str) if isinstance(v, list | tuple | dict) else str(v)
    return out


def log_lineage(spark: SparkSession, ref: TableRef, version: int) -> None:
    """The training table and its Delta version as the run's input dataset (MLflow UI: Datasets)."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.spark_dataset import SparkDataset

    df = delta_io.read(spark, ref, version=version)
    source = DeltaDatasetSource(path=ref.path, delta_table_name=ref.full_name, delta_table_version=version)
    ds = SparkDataset(df=df, source=source, targets="sold_price", name=ref.logical,
                      digest=f"{ref.logical}@v{version}"[:36])
    mlflow.log_input(ds, context="training")


def model_card(cfg: Config, ref: TableRef, version: int, split: Split, rows: dict[str, int],
               metrics: dict[str, float], base: dict[str, dict[str, float]], floor: float | None,
               predictor: PricePredictor, problems: list[str], seg: pd.DataFrame, fit_s: float) -> str:
    """A short markdown card: data window, rows, metrics against baselines and the noise floor, limits."""
    iv = predictor.intervals
    lines = [
        f"# Model card: `{cfg.mlflow.model_name}`", "",
        "Suggested price (p50) and 80% range (p10-p90) for a secondhand-fashion listing at listing time.", "",
        "## Data",
        f"- Training table: `{ref}` at Delta version {version}",
        f"- Train: sales before {split.valid_start:%Y-%m-%d %H:%M} ({rows['train']:,} rows); validation (early stopping, range "
        f"calibration): {split.valid_start:%Y-%m-%d %H:%M} .. {split.test_start:%Y-%m-%d %H:%M} ({rows['valid']:,}); test (never used to "
        f"choose anything): {split.test_start:%Y-%m-%d %H:%M} .. {split.end:%Y-%m-%d %H:%M} ({rows['test']:,})",
        f"- Features ({len(predictor.features)}): listing attributes, seller history strictly before listing time,"
        " text flags, market stats as of the listing day", "",
        "## Model",
        f"- xgboost.spark, `reg:squarederror` on log1p(price), {cfg.train.num_workers} workers, "
        f"best iteration {predictor.median.best_iteration if hasattr(predictor.median, 'best_iteration') else 'n/a'}"
        f", fit {fit_s:.0f} s",
        f"- Range: {iv.method}" + (f", split-conformal per `{iv.segment_feature}` ({len(iv.offsets) - 1} segments "
                                  f"with >= {cfg.train.interval_min_rows} validation rows, the rest global: "
                                  f"p10 = p50 x exp({iv.offsets[ALL][0]:+.3f}), p90 = p50 x "
                                  f"exp({iv.offsets[ALL][1]:+.3f}))" if iv.method == "conformal" else
                                  " boosting (p10 and p90 models)"), "",
        "## Test metrics", "",
        "| model | RMSLE | MAE | MAPE |", "|---|---|---|---|",
        f"| **this model** | **{metrics['rmsle']:.4f}** | {metrics['mae']:.2f} | {metrics['mape']:.3f} |",
        *[f"| baseline: {k.replace('_', ' ')} | {v['rmsle']:.4f} | {v['mae']:.2f} | {v['mape']:.3f} |"
          for k, v in base.items()],
    ]
    if floor:
        lines.append(f"| noise floor (simulator truth) | {floor:.4f} | | |")
    lines += ["", f"80% range: coverage {metrics['coverage_80']:.3f}, mean width {metrics['width_80']:.2f}; "
                  f"pinball p10 {metrics['pinball_p10']:.4f}, p50 {metrics['pinball_p50']:.4f}, "
                  f"p90 {metrics['pinball_p90']:.4f}."]
    if floor:
        lines.append(f"RMSLE / noise floor = **{metrics['rmsle'] / floor:.3f}** (1.0 is the best achievable).")
    worst = seg[seg["rows"] >= cfg.promote.min_segment_rows].nlargest(5, "rmsle")
    lines += ["", f"## Weakest segments (>= {cfg.promote.min_segment_rows} test rows)", "",
              "| segment | value | rows | RMSLE | coverage |", "|---|---|---|---|---|",
              *[f"| {r.segment} | {r.value} | {r.rows:,} | {r.rmsle:.4f} | {r.coverage_80:.3f} |"
                for r in worst.itertuples()],
              "", "Full table: `segment_metrics.csv`.", "",
              "## Sanity", "", "passed" if not problems else "\n".join(f"- {p}" for p in problems), "",
              "## Known limits",
              "- Trained on sold listings only: unsold items (priced too high) are not labels, so suggestions for "
              "unusual items lean on their segment's sold prices.",
              "- Rare brands and categories have little support; their range is the global conformal range.",
              "- The suggestion is made at listing time; it does not use the seller's asking price.",
              "- Market stats shift with seasons: retrain at least monthly."]
    return "\n".join(lines) + "\n"


def tune_params(spark: SparkSession, cfg: Config, split: Split, data: DataFrame) -> dict[str, Any]:
    from pricing.price_model.tuning import tune

    def objective(params: dict[str, Any]) -> tuple[float, dict[str, float]]:
        _, booster = fit(spark, cfg, data, params, features=features_of(cfg))
        pred = PricePredictor(features_of(cfg), booster, Intervals())
        valid = score_with_labels(split.valid, pred)
        from pricing.price_model.metrics import rmsle

        score = rmsle(valid["label"].to_numpy(), valid["p50_log"].to_numpy())
        return score, {"best_iteration": float(getattr(booster, "best_iteration", -1))}

    return tune(objective, booster_params(cfg.train), cfg.train.tuning, cfg.train.seed)


def simulator_noise_floor(spark: SparkSession, cfg: Config, split: Split, test: pd.DataFrame) -> float | None:
    """The simulator's noise floor for these test rows, when its truth table exists (evaluation only)."""
    ref = table(cfg, catalog.TRUTH_LISTINGS)
    if not delta_io.exists(spark, ref):
        return None
    truth = delta_io.read(spark, ref).select("listing_id", "log_fair_observable", "seller_skill")
    train_truth = split.train.select("listing_id", "label").join(truth, "listing_id").toPandas()
    test_ids = spark.createDataFrame(test[["listing_id"]])
    test_truth = test[["listing_id", "label"]].merge(truth.join(test_ids, "listing_id").toPandas(), on="listing_id")
    return noise_floor(train_truth, test_truth)


def register(cfg: Config, predictor: PricePredictor, split: Split, tmp: Path, run_id: str,
             metrics: dict[str, float], best_baseline: float, floor: float | None, ref: TableRef, ts_version: int,
             problems: list[str]) -> int:
    """Log the pyfunc (signature + input example), register a version, tag it, alias it `challenger` if sane."""
    example = split.test.select(*predictor.features).limit(5).toPandas().astype("float64")
    p10, p50, p90 = predictor.predict(predictor.matrix(example))
    signature = infer_signature(example, pd.DataFrame({"p10": p10, "p50": p50, "p90": p90}))
    info = mlflow.pyfunc.log_model(
        name="model", python_model=PriceModel(), artifacts=predictor.save(tmp / "predictor"),
        signature=signature, input_example=example, registered_model_name=cfg.mlflow.model_name,
        pip_requirements=tracking.model_requirements(),
    )
    client = MlflowClient()
    version = int(info.registered_model_version)
    faults.point("train.after_register")
    tags = {"training_table": str(ref), "training_table_version": str(ts_version), "run_id": run_id,
            "test_rmsle": f"{metrics['rmsle']:.5f}", "best_baseline_rmsle": f"{best_baseline:.5f}",
            "coverage_80": f"{metrics['coverage_80']:.4f}", "intervals": predictor.intervals.method,
            "sanity": "passed" if not problems else "; ".join(problems)}
    if floor:
        tags["rmsle_over_noise_floor"] = f"{metrics['rmsle'] / floor:.4f}"
    for k, v in tags.items():
        client.set_model_version_tag(cfg.mlflow.model_name, str(version), k, v)
    if not problems:
        client.set_registered_model_alias(cfg.mlflow.model_name, tracking.CHALLENGER, str(version))
    return version
