"""Training the price model: the time split, xgboost.spark fits (median, conformal or quantile range), optional
tuning, and the evaluation against baselines and the noise floor that ``jobs/train.py`` logs and registers.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.training_set import MODEL_FEATURES, model_features
from pricing.platform import catalog, delta_io
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError, ModelGateError
from pricing.platform.rows import first_value
from pricing.platform.tables import TableRef, table
from pricing.price_model.evaluation import (
    SEGMENTS,
    baseline_metrics,
    baseline_predictions,
    brand_tiers,
    noise_floor,
    overall_metrics,
    segment_metrics,
    with_segments,
)
from pricing.price_model.predictor import (
    ALL,
    Intervals,
    PricePredictor,
    conformal_offsets,
    score_frame,
)

if TYPE_CHECKING:
    from xgboost import Booster
    from xgboost.spark import SparkXGBRegressorModel

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
    t_max: datetime | None = first_value(df.agg(F.max("sold_at")))
    if t_max is None:
        raise ModelGateError("the training set has no sold listings: nothing to train on")
    test_start = t_max - timedelta(days=cfg.train.test_days)
    valid_start = test_start - timedelta(days=cfg.train.validation_days)
    return Split(df.where(F.col("sold_at") < F.lit(valid_start)),
                 df.where((F.col("sold_at") >= F.lit(valid_start)) & (F.col("sold_at") < F.lit(test_start))),
                 df.where(F.col("sold_at") >= F.lit(test_start)), valid_start, test_start, t_max)


def task_slots(spark: SparkSession) -> int:
    """Tasks the cluster can run at once: what barrier mode checks (``spark.default.parallelism`` is not)."""
    sc = spark.sparkContext._jsc.sc()
    try:
        return int(sc.maxNumConcurrentTasks(sc.resourceProfileManager().defaultResourceProfile()))
    except Exception:  # an unexpected JVM API change must not block training; the barrier check still runs
        return int(spark.sparkContext.defaultParallelism)


def check_workers(spark: SparkSession, num_workers: int, wait_s: float = WORKER_WAIT_S) -> int:
    """xgboost.spark trains in barrier mode: all workers must run at once, or Spark retries for minutes
    and fails.  Waits for executors to register (a cluster starting up), then fails fast and clearly."""
    deadline = time.time() + wait_s
    slots = task_slots(spark)
    master = spark.sparkContext.master
    assert master is not None  # SparkContext refuses to start without spark.master
    while slots < num_workers and time.time() < deadline and not master.startswith("local"):
        time.sleep(2)
        slots = task_slots(spark)
    if num_workers > slots:
        raise ConfigError(f"train.num_workers={num_workers} but the cluster runs only {slots} tasks at once; "
                          f"barrier-mode training would hang. Set train.num_workers <= {slots}.")
    return slots



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
        quantile: float | None = None, features: tuple[str, ...] = MODEL_FEATURES
        ) -> tuple[SparkXGBRegressorModel, Booster]:
    """One xgboost.spark fit on ``assemble``'s frame (assembled from ``features``); squared error, or pinball
    loss at ``quantile``."""
    from xgboost.spark import SparkXGBRegressor

    t = cfg.train
    check_workers(spark, t.num_workers)
    objective = {"objective": "reg:squarederror", "eval_metric": "rmse"} if quantile is None else {
        "objective": "reg:quantileerror", "quantile_alpha": quantile}
    reg = SparkXGBRegressor(
        features_col="features", label_col="label", validation_indicator_col="is_valid",
        num_workers=t.num_workers, device=t.device, tree_method="hist", n_estimators=t.booster.n_estimators,
        early_stopping_rounds=t.booster.early_stopping_rounds, random_state=t.booster.seed, force_repartition=True,
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
    """The code's commit: ``mlflow.git_commit`` when set (the bundle passes ``${bundle.git.commit}``), else
    ``git rev-parse HEAD`` when the project folder is a git checkout (never a repository it merely sits in), else
    ``unknown``."""
    if cfg.mlflow.git_commit:
        return cfg.mlflow.git_commit
    project = Path(cfg.project_dir)
    if not cfg.project_dir or not (project / ".git").exists():  # .git: a folder, or a file in a worktree
        return "unknown"
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
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


def tune_params(spark: SparkSession, cfg: Config, split: Split, data: DataFrame) -> dict[str, Any]:
    from pricing.price_model.tuning import tune

    def objective(params: dict[str, Any]) -> tuple[float, dict[str, float]]:
        _, booster = fit(spark, cfg, data, params, features=features_of(cfg))
        pred = PricePredictor(features_of(cfg), booster, Intervals())
        valid = score_with_labels(split.valid, pred)
        from pricing.price_model.metrics import rmsle

        score = rmsle(valid["label"].to_numpy(), valid["p50_log"].to_numpy())
        return score, {"best_iteration": float(getattr(booster, "best_iteration", -1))}

    return tune(objective, cfg.train.booster.tree_params(), cfg.train.tuning, cfg.train.booster.seed)


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


# ---- the train job's steps -------------------------------------------------------------------------------
def check_train_settings(spark: SparkSession, cfg: Config, features: tuple[str, ...]) -> None:
    """Fails before anything is read when ``train.interval_segment`` is not one of ``features`` or the cluster
    cannot run ``train.num_workers`` tasks at once (``check_workers``)."""
    t = cfg.train
    if t.interval_segment != "none" and t.interval_segment not in features:
        raise ConfigError(f"train.interval_segment {t.interval_segment!r} is not a model feature; choose 'none' "
                          f"or one of {', '.join(features)}")
    check_workers(spark, t.num_workers)


def check_comparables(cfg: Config, data: DataFrame, ref: TableRef) -> None:
    """Fails when ``features.comparables`` is on but ``data`` (read from ``ref``) has no comparable-sales values."""
    if cfg.features.comparables and data.where(F.col("cmp_near_sold").isNotNull()).isEmpty():
        raise ConfigError(f"features.comparables is on but {ref} was built without comparable-sales features: "
                          "run `pricing match` and `pricing features` (or set features.comparables=false)")


def split_rows(split: Split) -> dict[str, int]:
    """Rows per part (``train``, ``valid``, ``test``); fails when any part is empty."""
    rows = {"train": split.train.count(), "valid": split.valid.count(), "test": split.test.count()}
    if min(rows.values()) == 0:
        raise ModelGateError(f"empty split {rows}: widen the data window or shrink test/validation days")
    return rows


def prepare(split: Split, features: tuple[str, ...]) -> tuple[DataFrame, float]:
    """``assemble``'s cached frame, materialised here (so fit times then time xgboost.spark alone), and the
    seconds that took."""
    assembled = assemble(split, features)
    t0 = time.time()
    assembled.count()
    return assembled, time.time() - t0


def log_run_inputs(spark: SparkSession, cfg: Config, ref: TableRef, version: int, split: Split,
                   rows: dict[str, int], features: tuple[str, ...]) -> None:
    """Into the active MLflow run: the resolved config (``cfg.*`` params and ``config.yml``), the features, the
    training table and its version, the split, tags (commit, env, job, intervals, model) and the lineage."""
    resolved = cfg.model_dump(mode="json", by_alias=True)
    flat = flat_params(resolved, "cfg.")
    for chunk in range(0, len(flat), 90):
        mlflow.log_params(dict(list(flat.items())[chunk:chunk + 90]))
    mlflow.log_text(yaml.safe_dump(resolved, sort_keys=False), "config.yml")
    mlflow.log_params({"features": ",".join(features), "n_features": len(features),
                       "training_table": str(ref), "training_table_version": version,
                       "valid_start": str(split.valid_start), "test_start": str(split.test_start),
                       "rows_train": rows["train"], "rows_valid": rows["valid"], "rows_test": rows["test"]})
    mlflow.set_tags({"git_commit": git_commit(cfg), "env": cfg.env, "job": "train",
                     "intervals": cfg.train.intervals, "model_name": cfg.mlflow.model_name})
    log_lineage(spark, ref, version)


def log_history(run_id: str, history: dict[str, list[float]]) -> None:
    """The validation objective per boosting round, as ``valid_<name>`` metric steps of run ``run_id``."""
    client = MlflowClient()
    stamp = int(time.time() * 1000)
    for name, values in history.items():
        batch = [Metric(f"valid_{name}", float(v), stamp, i) for i, v in enumerate(values)]
        for i in range(0, len(batch), 900):
            client.log_batch(run_id, metrics=batch[i:i + 900])


@dataclass(frozen=True)
class Evaluation:
    """A fitted price model judged on the test weeks (which chose nothing)."""

    test: pd.DataFrame
    """Scored test rows (``score_with_labels`` + ``EVAL_COLS`` + segments)."""
    metrics: dict[str, float]
    """``overall_metrics`` of the test rows."""
    baselines: dict[str, dict[str, float]]
    """Baseline name -> its test metrics."""
    segments: pd.DataFrame
    """``segment_metrics`` of the test rows."""
    noise_floor: float | None
    """The simulator's noise floor (RMSLE) when its truth exists."""
    logged: dict[str, float]
    """The run's metrics, as logged to MLflow."""
    problems: list[str]
    """``sanity``'s reasons the model is not fit to serve; empty when it passes."""

    @property
    def best_baseline(self) -> float:
        return min(v["rmsle"] for v in self.baselines.values())

    @property
    def verdict(self) -> str:
        """``passed``, or the problems joined by ``; `` (the ``sanity`` tag)."""
        return "passed" if not self.problems else "; ".join(self.problems)


def evaluate(spark: SparkSession, cfg: Config, split: Split, predictor: PricePredictor, params: dict[str, Any],
             prepare_s: float, fit_s: float) -> Evaluation:
    """Test metrics against the baselines and the noise floor, per segment, the comparables ablation (when
    ``features.comparables``; it refits a median booster with ``params``), the run's metrics (with
    ``prepare_s`` and ``fit_s``) and the sanity checks."""
    t = cfg.train
    test = with_segments(score_with_labels(split.test, predictor, EVAL_COLS),
                         brand_tiers(split.train, t.brand_tier_min_sales))
    metrics = overall_metrics(test, t.quantiles)
    base = baseline_metrics(test, baseline_predictions(split.train, test, cfg.features.shrinkage_k))
    seg = segment_metrics(test, SEGMENTS, t.quantiles)
    floor = simulator_noise_floor(spark, cfg, split, test)
    logged = {f"test_{k}": v for k, v in metrics.items()}
    logged.update({f"baseline_{k}_{m}": v for k, d in base.items() for m, v in d.items()})
    logged.update({"prepare_seconds": prepare_s, "fit_seconds": fit_s,
                   "best_iteration": float(getattr(predictor.median, "best_iteration", -1))})
    if floor:
        logged.update({"noise_floor_rmsle": floor, "rmsle_over_noise_floor": metrics["rmsle"] / floor})
    g_lo, g_hi = predictor.intervals.offsets[ALL]
    if predictor.intervals.method == "conformal":
        logged.update({"interval_lo": g_lo, "interval_hi": g_hi,
                       "interval_segments": float(len(predictor.intervals.offsets) - 1)})
    if cfg.features.comparables:  # the comparable features' worth, on the same split and params
        logged["test_rmsle_without_comparables"] = rmsle_without_comparables(spark, cfg, split, params)
        logged["test_rmsle_delta_comparables"] = metrics["rmsle"] - logged["test_rmsle_without_comparables"]
    best_base = min(v["rmsle"] for v in base.values())
    return Evaluation(test, metrics, base, seg, floor, logged, sanity(metrics, best_base, cfg, test))
