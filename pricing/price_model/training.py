"""Training the price model: the time split, xgboost.spark fits (median, conformal or quantile range), optional
tuning, and the evaluation against baselines and the noise floor that ``jobs/train.py`` logs and registers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from features.training_set import FEATURE_GROUPS, MODEL_FEATURES, model_features
from pricing.platform import catalog, delta_io
from pricing.platform.config import Config, TrainConfig
from pricing.platform.errors import ConfigError, ModelGateError
from pricing.platform.rows import first_value
from pricing.platform.tables import TableRef, table
from pricing.price_model.evaluation import (
    SEGMENTS,
    baseline_metrics,
    baseline_predictions,
    behind_a_baseline,
    brand_tiers,
    noise_floor,
    overall_metrics,
    segment_metrics,
    with_baselines,
    with_segments,
)
from pricing.price_model.oracle import oracle_frame, structured_oracle
from pricing.price_model.predictor import (
    ALL,
    P50_BAND,
    Intervals,
    PricePredictor,
    conformal_offsets,
    cqr_offsets,
    model_inputs,
    p50_bands,
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
    """The labelled listings cut by **listing time** (``as_of``) into consecutive windows, each used for one
    purpose only (see :func:`time_split`)."""

    train: DataFrame
    """Listings created before ``valid_start``: what the boosters fit."""
    valid: DataFrame
    """Created in [valid_start, calib_start): early stopping (and tuning, when on)."""
    calib: DataFrame
    """Created in [calib_start, test_start): the conformal calibration of the range, nothing else."""
    test: DataFrame
    """Created in [test_start, end) and outside the gate's holdout: the reported figures, which choose nothing."""
    holdout: DataFrame
    """Created in [test_start, end), the ``promote.holdout_share`` of listings the gate keeps (a stable hash of
    ``listing_id``): the sanity checks and the champion/challenger decision read these, never ``test``."""
    valid_start: datetime
    calib_start: datetime
    test_start: datetime
    end: datetime
    """End of the test window: ``now`` less the label horizon, so every listing before it has a known label."""
    now: datetime
    """The latest listing time in the table, standing for "now"."""
    horizon_days: int
    """The label horizon H (``features.sold_within_days``): a label is a sale within H days of listing."""


def labelled(training_set: DataFrame) -> DataFrame:
    """Rows with a sold price, and ``label`` = log1p(sold price)."""
    return training_set.where(F.col("sold_price").isNotNull() & (F.col("sold_price") > 0)).withColumn(
        "label", F.log1p("sold_price"))


def in_holdout(share: float) -> Column:
    """True for the ``share`` of listings the promotion gate keeps: a stable hash of ``listing_id`` (Spark's
    ``xxhash64``, the same on every run and cluster), so a listing is in the holdout for every model version."""
    return F.pmod(F.xxhash64(F.col("listing_id")), F.lit(10_000)) < F.lit(int(round(share * 10_000)))


def time_split(df: DataFrame, cfg: Config) -> Split:
    """Split ``training_set`` rows (all of them, sold or not: the latest listing time is "now") by listing time.

    Windows, newest last (``train.validation_days``, ``train.calibration_days``, ``train.test_days``)::

        train: as_of < T1 | valid: [T1, T2) | calib: [T2, T3) | test + holdout: [T3, T4),  T4 = now - H

    **Right-censoring.**  A listing's label is its sold price *if it sold within H days of listing*
    (H = ``features.sold_within_days``, the demand model's horizon).  Only listings created before
    T4 = now - H are used, so every one of them has had its full H days: whether it sold within H is known, in
    every window alike.  Listings that did not sell within H (unsold at the end of the data, removed, or sold
    later) are excluded from every window by the same rule, never only from the recent ones.  Splitting by sale
    time instead would fill the latest weeks with the listings that happened to sell quickly (the slow sellers
    of those weeks have not sold yet), and would train on listings created after some test listings.

    **Why the test population is what scoring sees.**  Scoring prices a listing at its listing time from the
    training table's own feature assembly, as of ``as_of``.  The test rows are the listings *created* in
    [T3, T4), with those same as-of features, whichever day they sold on, judged on the outcome the model
    predicts (the price of a sale within H days).  The listings that do not sell within H days are the part of
    the scored population that no price can be checked on; the model card says so.

    **Nothing reported chooses anything.**  Early stopping (and tuning) read ``valid``; the range is calibrated
    on ``calib``; the sanity checks and the promotion gate read ``holdout`` (``promote.holdout_share`` of the
    test window's listings by a stable hash); ``test`` (the rest of that window) is only reported.  Training
    labels (sales before T1 + H) all fall before T3 when ``validation_days + calibration_days >= H``, so no sale
    of the test window teaches the model (a config check enforces it).
    """
    t = cfg.train
    now: datetime | None = first_value(df.agg(F.max("as_of")))
    if now is None:
        raise ModelGateError("the training set is empty: nothing to train on")
    h = cfg.features.sold_within_days
    end = now - timedelta(days=h)
    test_start = end - timedelta(days=t.test_days)
    calib_start = test_start - timedelta(days=t.calibration_days)
    valid_start = calib_start - timedelta(days=t.validation_days)
    rows = (labelled(df)
            .where(F.col("sold_at") < F.col("as_of") + F.make_interval(days=F.lit(h)))
            .where(F.col("as_of") < F.lit(end)))

    def window(lo: datetime | None, hi: datetime) -> DataFrame:
        inside = F.col("as_of") < F.lit(hi)
        return rows.where(inside if lo is None else inside & (F.col("as_of") >= F.lit(lo)))

    last = window(test_start, end)
    gate = in_holdout(cfg.promote.holdout_share)
    return Split(window(None, valid_start), window(valid_start, calib_start), window(calib_start, test_start),
                 last.where(~gate), last.where(gate), valid_start, calib_start, test_start, end, now, h)


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


def local_cores(master: str) -> int | None:
    """The cores of a local master (``local``, ``local[N]``, ``local[*]``, ``local[N,F]``); None for a cluster."""
    m = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", master.strip())
    if m is None:
        return None
    if m.group(1) == "*":
        return os.cpu_count() or 1
    return int(m.group(1) or 1)


def threads_per_worker(t: TrainConfig, master: str, task_cpus: int) -> int:
    """xgboost threads per worker under ``train.threads_per_worker`` (which see), on ``master``."""
    if t.threads_per_worker is not None:
        return t.threads_per_worker
    cores = local_cores(master)
    return task_cpus if cores is None else max(1, cores // t.num_workers)


def worker_threads(spark: SparkSession, cfg: Config) -> int:
    """:func:`threads_per_worker` on this session's master."""
    return threads_per_worker(cfg.train, spark.sparkContext.master or "",
                              int(spark.sparkContext.getConf().get("spark.task.cpus", "1")))


def with_threads(estimator: Any, threads: int) -> Any:
    """``estimator`` (an xgboost.spark estimator) training with ``threads`` xgboost threads per worker.

    xgboost.spark refuses ``nthread`` and takes ``spark.task.cpus``: on one machine that is 1, and raising it
    would run every other stage of the job one task at a time.  A barrier stage runs only the training tasks,
    so a worker may use more threads than its one task slot without competing with other tasks.  The thread
    count xgboost.spark computes is replaced here, where the xgboost version computes it in
    ``_get_xgb_parameters`` (as 3.2, the version pinned here, does); otherwise it stays ``spark.task.cpus``."""
    original = getattr(estimator, "_get_xgb_parameters", None)
    if original is None:
        return estimator

    def _get_xgb_parameters(dataset: DataFrame) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        booster_params, train_kwargs, dmatrix_kwargs = original(dataset)
        booster_params["nthread"] = dmatrix_kwargs["nthread"] = threads
        return booster_params, train_kwargs, dmatrix_kwargs

    estimator._get_xgb_parameters = _get_xgb_parameters
    return estimator


@contextmanager
def openmp_threads(spark: SparkSession, threads: int) -> Iterator[None]:
    """Python workers started for the UDFs created inside the block see ``OMP_NUM_THREADS=threads``.

    PySpark caps each Python worker's OpenMP pool at its task's cores (``spark.task.cpus``: 1 on one machine),
    and xgboost never runs more threads than that cap, whatever its ``nthread``: a worker given both cores of
    this machine trained at the speed of one (measured: 30 rounds 3.9 s against 2.0 s).  A UDF carries the
    context's environment as it is when the UDF is made, and Spark starts a separate worker daemon for each
    distinct environment; so xgboost.spark's barrier stage, made inside the block, gets ``threads`` and every
    other UDF keeps the session's value.  Takes effect where the session sets
    ``spark.executorEnv.OMP_NUM_THREADS`` (``get_spark`` does): otherwise PySpark puts its cap back."""
    env = spark.sparkContext.environment
    before = env.get("OMP_NUM_THREADS")
    env["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if before is None:
            env.pop("OMP_NUM_THREADS", None)
        else:
            env["OMP_NUM_THREADS"] = before


def fit_estimator(spark: SparkSession, cfg: Config, estimator: Any, data: DataFrame) -> Any:
    """``estimator.fit(data)`` (an xgboost.spark estimator) with :func:`worker_threads` xgboost threads in each
    worker, and an OpenMP pool that lets them run (:func:`openmp_threads`)."""
    threads = worker_threads(spark, cfg)
    with openmp_threads(spark, threads):
        return with_threads(estimator, threads).fit(data)


def features_of(cfg: Config) -> tuple[str, ...]:
    """The model's inputs under ``cfg``: ``features.comparables`` switches the comparable-sales ones."""
    return model_features(cfg.features.comparables)


def assemble(split: Split, features: tuple[str, ...] = MODEL_FEATURES, workers: int = 1) -> DataFrame:
    """Training and validation rows as one frame with a Vector ``features`` column (measured faster than
    a list of columns) and a boolean ``is_valid`` for early stopping, dealt round robin into ``workers``
    partitions (each holds training and validation rows).  Cached: every fit reads it, and a frame with one
    partition per xgboost.spark worker goes to the workers as it is (:func:`fit`), with no shuffle per fit."""
    assembler = VectorAssembler(inputCols=list(features), outputCol="features", handleInvalid="keep")
    rows = (split.train.withColumn("is_valid", F.lit(False))
            .unionByName(split.valid.withColumn("is_valid", F.lit(True)))
            .select(*[F.col(c).cast("double") for c in features], "label", "is_valid")
            .repartition(workers))
    return assembler.transform(rows).select("features", "label", "is_valid").persist()


def fit(spark: SparkSession, cfg: Config, data: DataFrame, params: dict[str, Any],
        quantile: float | None = None, features: tuple[str, ...] = MODEL_FEATURES
        ) -> tuple[SparkXGBRegressorModel, Booster]:
    """One xgboost.spark fit on ``assemble``'s frame (assembled from ``features``); squared error, or pinball
    loss at ``quantile``.  A frame assembled for ``train.num_workers`` workers is trained on as it is partitioned;
    xgboost.spark repartitions any frame with another partition count."""
    from xgboost.spark import SparkXGBRegressor

    t = cfg.train
    check_workers(spark, t.num_workers)
    objective = {"objective": "reg:squarederror", "eval_metric": "rmse"} if quantile is None else {
        "objective": "reg:quantileerror", "quantile_alpha": quantile}
    reg = SparkXGBRegressor(
        features_col="features", label_col="label", validation_indicator_col="is_valid",
        num_workers=t.num_workers, device=t.device, tree_method="hist", n_estimators=t.booster.n_estimators,
        early_stopping_rounds=t.booster.early_stopping_rounds, random_state=t.booster.seed,
        force_repartition=False, verbose=False, **objective, **params,
    )
    model = fit_estimator(spark, cfg, reg, data)
    booster = model.get_booster()
    booster.feature_names = list(features)
    return model, booster


def score_with_labels(df: DataFrame, predictor: PricePredictor, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """The predictor's p10 / p50 / p90 beside each row's label (and ``extra`` columns), on the driver, with their
    log scale.  The windows scored here are weeks of listings: their features come to the driver as float32 (as
    :func:`score_frame` sends them to executors, so the predictions are the same) and go through the predictor
    in one matrix, with no Python worker, broadcast or join (measured at 1M listings: 9 s for the test and
    holdout windows through ``score_frame``)."""
    x = [f"_x{i}" for i in range(len(predictor.features))]  # apart from ``extra``, which may name a feature
    out = df.select("listing_id", "label", *extra, *model_inputs(predictor.features, x)).toPandas()
    p10, p50, p90 = predictor.predict(out[x].to_numpy(dtype=np.float32, na_value=np.nan))
    out = out.drop(columns=x).assign(p10=p10, p50=p50, p90=p90)
    for q in ("p10", "p50", "p90"):
        out[f"{q}_log"] = np.log1p(out[q].to_numpy())
    return out


def fit_predictor(spark: SparkSession, cfg: Config, split: Split, data: DataFrame,
                  params: dict[str, Any]) -> tuple[PricePredictor, dict[str, list[float]], float]:
    """Median model and its range (``train.intervals``): conformal offsets around the median, the p10/p90
    boosters as they are (``quantile``), or those boosters conformalised (``cqr``).  Boosters fit on
    ``split.train`` and stop early on ``split.valid``; the range is calibrated on ``split.calib`` only, per
    ``train.interval_segment`` (a feature's value, or ``p50_band``: ``train.interval_bands`` bands of equal
    calibration counts of the median prediction).  Returns the predictor, its validation history and the
    seconds spent fitting."""
    t = cfg.train
    feats = features_of(cfg)
    seg_feature = None if t.interval_segment == "none" else t.interval_segment
    alphas = (t.quantiles[0], t.quantiles[2])
    t0 = time.time()
    model, median = fit(spark, cfg, data, params, features=feats)
    history = dict(getattr(getattr(model, "training_summary", None), "validation_objective_history", {}) or {})
    lower = upper = None
    if t.intervals in ("quantile", "cqr"):
        lower = fit(spark, cfg, data, params, quantile=t.quantiles[0], features=feats)[1]
        upper = fit(spark, cfg, data, params, quantile=t.quantiles[2], features=feats)[1]
    fit_s = time.time() - t0
    if t.intervals == "quantile":
        return PricePredictor(feats, median, Intervals("quantile"), lower, upper), history, fit_s
    # The boosters' own outputs on the calibration rows (before any sorting around the median), on the driver.
    calib = split.calib.select("label", *[F.col(c).cast("double") for c in feats]).toPandas()
    X = PricePredictor(feats, median, Intervals()).matrix(calib)
    y = calib["label"].to_numpy()
    mid = np.asarray(median.inplace_predict(X), dtype=np.float64)
    bands = p50_bands(mid, t.interval_bands) if seg_feature == P50_BAND else ()
    seg = Intervals("conformal", seg_feature, bands=bands).segments(X, feats, mid)
    if t.intervals == "cqr":
        assert lower is not None and upper is not None
        q_lo = np.asarray(lower.inplace_predict(X), dtype=np.float64)
        q_hi = np.asarray(upper.inplace_predict(X), dtype=np.float64)
        offsets = cqr_offsets(y, q_lo, q_hi, seg, alphas, t.interval_min_rows)
        return PricePredictor(feats, median, Intervals("cqr", seg_feature, offsets, bands), lower, upper), history, fit_s
    offsets = conformal_offsets(y - mid, seg, alphas, t.interval_min_rows)
    return PricePredictor(feats, median, Intervals("conformal", seg_feature, offsets, bands)), history, fit_s


def rmsle_without(spark: SparkSession, cfg: Config, split: Split, params: dict[str, Any],
                  dropped: tuple[str, ...]) -> float:
    """Ablation: a second median booster on the same split and with the same params, without the ``dropped``
    features; its test RMSLE (log scale, as ``test_rmsle``).  Evaluation only: nothing of it is registered."""
    from pricing.price_model.metrics import rmsle

    feats = tuple(f for f in features_of(cfg) if f not in dropped)
    data = assemble(split, feats, cfg.train.num_workers)
    try:
        booster = fit(spark, cfg, data, params, features=feats)[1]
    finally:
        data.unpersist()
    test = score_with_labels(split.test, PricePredictor(feats, booster, Intervals("conformal")))
    return rmsle(test["label"].to_numpy(), test["p50_log"].to_numpy())


def ablation(spark: SparkSession, cfg: Config, split: Split, params: dict[str, Any], rmsle: float) -> dict[str, float]:
    """``test_rmsle_without_<group>`` and ``test_rmsle_delta_<group>`` (the model's test RMSLE less the refit's:
    negative when the group helps) for each of :data:`FEATURE_GROUPS` the model reads."""
    out: dict[str, float] = {}
    for group, dropped in FEATURE_GROUPS.items():
        if set(dropped) & set(features_of(cfg)):
            out[f"test_rmsle_without_{group}"] = rmsle_without(spark, cfg, split, params, dropped)
            out[f"test_rmsle_delta_{group}"] = rmsle - out[f"test_rmsle_without_{group}"]
    return out


def sanity(metrics: dict[str, float], best_baseline: float, cfg: Config, frame: pd.DataFrame) -> list[str]:
    """Reasons the model is not fit to serve; empty when it passes.  ``metrics``, ``best_baseline`` and the
    scored ``frame`` are the gate's holdout's (``Split.holdout``): the reported test rows choose nothing."""
    problems = []
    if frame[["p10", "p50", "p90"]].isna().any().any() or not np.isfinite(frame[["p10", "p50", "p90"]]).all().all():
        problems.append("NaN or infinite predictions")
    if not ((frame["p10"] <= frame["p50"]) & (frame["p50"] <= frame["p90"])).all():
        problems.append("quantiles cross")
    target = cfg.train.quantiles[2] - cfg.train.quantiles[0]
    if abs(metrics["coverage_80"] - target) > cfg.promote.max_coverage_error:
        problems.append(f"holdout interval coverage {metrics['coverage_80']:.3f} is off the target {target:.2f} by more "
                        f"than {cfg.promote.max_coverage_error}")
    if metrics["rmsle"] >= best_baseline:
        problems.append(f"holdout RMSLE {metrics['rmsle']:.4f} does not beat the best baseline {best_baseline:.4f}")
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
    """The training table and its Delta version as the run's input dataset (MLflow UI: Datasets), with its row
    count as the profile."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.spark_dataset import SparkDataset

    df = delta_io.read(spark, ref, version=version)
    rows = df.count()

    class CountedSparkDataset(SparkDataset):
        """MLflow's own profile counts the rows by pickling every one of them into Python (``df.rdd``) with a
        5-second timeout, and its Spark job runs on after the timeout: at 1M listings it took both cores for the
        first half minute of the first fit.  The count Spark gives in the JVM is exact and cheap."""

        @property
        def profile(self) -> dict[str, Any]:
            return {"approx_count": rows}

    source = DeltaDatasetSource(path=ref.path, delta_table_name=ref.full_name, delta_table_version=version)
    ds = CountedSparkDataset(df=df, source=source, targets="sold_price", name=ref.logical,
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


@dataclass(frozen=True)
class SimulatorTruth:
    """The split's train, valid and test rows joined to the simulator's truth, on the driver (evaluation only):
    ``listing_id, label``, the structured oracle's attributes and true signals (``oracle_frame``) and
    ``log_fair_observable``.  Read once for both references, the noise floor and the structured oracle."""
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


def simulator_truth(spark: SparkSession, cfg: Config, split: Split) -> SimulatorTruth | None:
    """:class:`SimulatorTruth` of ``split``, when the simulator's truth table exists (None otherwise)."""
    ref = table(cfg, catalog.TRUTH_LISTINGS)
    if not delta_io.exists(spark, ref):
        return None
    truth = delta_io.read(spark, ref)
    return SimulatorTruth(*(oracle_frame(part, truth, extra=("log_fair_observable",))
                            for part in (split.train, split.valid, split.test)))


def simulator_noise_floor(truth: SimulatorTruth, test: pd.DataFrame) -> float | None:
    """The simulator's noise floor (``noise_floor``) for the scored ``test`` rows (``listing_id, label``)."""
    cols = ["listing_id", "log_fair_observable", "seller_skill"]
    return noise_floor(truth.train, test[["listing_id", "label"]].merge(truth.test[cols], on="listing_id"))


# ---- the train job's steps -------------------------------------------------------------------------------
def check_train_settings(spark: SparkSession, cfg: Config, features: tuple[str, ...]) -> None:
    """Fails before anything is read when the validation and calibration windows are shorter than the label
    horizon (see :func:`time_split`), ``train.interval_segment`` is not one of ``features`` or the cluster cannot
    run ``train.num_workers`` tasks at once (``check_workers``)."""
    t = cfg.train
    h = cfg.features.sold_within_days
    if t.validation_days + t.calibration_days < h:
        raise ConfigError(f"train.validation_days + train.calibration_days = {t.validation_days + t.calibration_days}"
                          f" is shorter than the label horizon features.sold_within_days = {h}: training labels "
                          "(sales up to H days after listing) would reach into the test window")
    if t.interval_segment not in ("none", P50_BAND, *features):
        raise ConfigError(f"train.interval_segment {t.interval_segment!r} is not a model feature; choose 'none', "
                          f"'{P50_BAND}' or one of {', '.join(features)}")
    check_workers(spark, t.num_workers)


def check_comparables(cfg: Config, data: DataFrame, ref: TableRef) -> None:
    """Fails when ``features.comparables`` is on but ``data`` (read from ``ref``) has no comparable-sales values."""
    if cfg.features.comparables and data.where(F.col("cmp_near_sold").isNotNull()).isEmpty():
        raise ConfigError(f"features.comparables is on but {ref} was built without comparable-sales features: "
                          "run `pricing match` and `pricing features` (or set features.comparables=false)")


def split_rows(split: Split) -> dict[str, int]:
    """Rows per part (``train``, ``valid``, ``calib``, ``test``, ``holdout``); fails when any part is empty."""
    rows = {"train": split.train.count(), "valid": split.valid.count(), "calib": split.calib.count(),
            "test": split.test.count(), "holdout": split.holdout.count()}
    if min(rows.values()) == 0:
        raise ModelGateError(f"empty split {rows}: widen the data window or shrink train.test_days, "
                             "calibration_days or validation_days")
    return rows


def prepare(split: Split, features: tuple[str, ...], workers: int = 1) -> tuple[DataFrame, float]:
    """``assemble``'s cached frame for ``workers`` xgboost.spark workers, materialised here (so fit times then
    time xgboost.spark alone), and the seconds that took."""
    assembled = assemble(split, features, workers)
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
                       "valid_start": str(split.valid_start), "calib_start": str(split.calib_start),
                       "test_start": str(split.test_start), "test_end": str(split.end),
                       "label_horizon_days": split.horizon_days,
                       **{f"rows_{k}": v for k, v in rows.items()}})
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
    """A fitted price model judged on the test window (which chose nothing), and checked on the gate's holdout."""

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
    """``sanity``'s reasons the model is not fit to serve (judged on the holdout); empty when it passes."""
    oracle: float | None = None
    """The structured oracle's test RMSLE (simulator only), when its truth exists."""

    @property
    def best_baseline(self) -> float:
        return min(v["rmsle"] for v in self.baselines.values())

    @property
    def verdict(self) -> str:
        """``passed``, or the problems joined by ``; `` (the ``sanity`` tag)."""
        return "passed" if not self.problems else "; ".join(self.problems)


def min_segment_coverage(seg: pd.DataFrame, min_rows: int) -> pd.DataFrame:
    """Per segment dimension, the segment with at least ``min_rows`` rows whose 80% range covers least:
    ``segment, value, rows, coverage_80``."""
    big = seg[seg["rows"] >= min_rows]
    if big.empty:
        return big[["segment", "value", "rows", "coverage_80"]]
    idx = big.groupby("segment")["coverage_80"].idxmin()
    return big.loc[idx, ["segment", "value", "rows", "coverage_80"]].reset_index(drop=True)


def evaluate(spark: SparkSession, cfg: Config, split: Split, predictor: PricePredictor, params: dict[str, Any],
             prepare_s: float, fit_s: float) -> Evaluation:
    """Test metrics against the baselines and the noise floor, per segment, the ablation (when ``train.ablation``:
    a median booster refitted with ``params`` without each of :data:`FEATURE_GROUPS`), the run's metrics (with
    ``prepare_s`` and ``fit_s``), and the sanity checks, which read the gate's holdout, never the test rows."""
    t = cfg.train
    tiers = brand_tiers(split.train, t.brand_tier_min_sales)
    test = with_segments(score_with_labels(split.test, predictor, EVAL_COLS), tiers)
    metrics = overall_metrics(test, t.quantiles)
    preds = baseline_predictions(split.train, test, cfg.features.shrinkage_k)
    base = baseline_metrics(test, preds)
    seg = with_baselines(segment_metrics(test, SEGMENTS, t.quantiles), test, preds)
    truth = simulator_truth(spark, cfg, split)
    floor = simulator_noise_floor(truth, test) if truth is not None else None
    holdout = score_with_labels(split.holdout, predictor, EVAL_COLS)
    h_metrics = overall_metrics(holdout, t.quantiles)
    h_base = baseline_metrics(holdout, baseline_predictions(split.train, holdout, cfg.features.shrinkage_k))
    logged = {f"test_{k}": v for k, v in metrics.items()}
    logged.update({f"baseline_{k}_{m}": v for k, d in base.items() for m, v in d.items()})
    logged.update({"holdout_rmsle": h_metrics["rmsle"], "holdout_coverage_80": h_metrics["coverage_80"],
                   "holdout_rows": h_metrics["rows"],
                   "holdout_best_baseline_rmsle": min(v["rmsle"] for v in h_base.values())})
    logged.update({"prepare_seconds": prepare_s, "fit_seconds": fit_s,
                   "best_iteration": float(getattr(predictor.median, "best_iteration", -1))})
    logged["test_segments_behind_a_baseline"] = float(len(behind_a_baseline(seg, cfg.promote.min_segment_rows)))
    weakest = min_segment_coverage(seg, cfg.promote.min_segment_rows)
    logged.update({f"test_coverage_80_min_{dim}": float(cov)
                   for dim, cov in zip(weakest["segment"], weakest["coverage_80"], strict=True)})
    if len(weakest):
        logged["test_coverage_80_min_segment"] = float(weakest["coverage_80"].min())
    if floor:
        logged.update({"noise_floor_rmsle": floor, "rmsle_over_noise_floor": metrics["rmsle"] / floor})
    oracle = structured_oracle(truth.train, truth.valid, truth.test) if truth is not None and floor else None
    if oracle:
        logged.update({"structured_oracle_rmsle": oracle, "rmsle_over_structured_oracle": metrics["rmsle"] / oracle})
    # Where the range sits around the median on average (log scale), whatever the method.
    logged.update({"interval_lo": float(np.mean(test["p10_log"] - test["p50_log"])),
                   "interval_hi": float(np.mean(test["p90_log"] - test["p50_log"]))})
    if predictor.intervals.method in ("conformal", "cqr"):
        g_lo, g_hi = predictor.intervals.offsets[ALL]
        logged.update({"interval_offset_lo": g_lo, "interval_offset_hi": g_hi,
                       "interval_segments": float(len(predictor.intervals.offsets) - 1)})
    if t.ablation:  # each feature group's worth, on the same split and params
        logged.update(ablation(spark, cfg, split, params, metrics["rmsle"]))
    problems = sanity(h_metrics, logged["holdout_best_baseline_rmsle"], cfg, holdout)
    return Evaluation(test, metrics, base, seg, floor, logged, problems, oracle)
