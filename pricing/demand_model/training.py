"""Fitting the demand model, P(sold within H days | features, price), identified by the price-exploration
experiment (``pricing.demand_model.estimator`` explains the model; ``pricing.demand_model.evaluation`` judges it).

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
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sklearn.metrics import log_loss

from pricing.demand_model import pyfunc
from pricing.demand_model.estimator import (
    ALL,
    FRAILTY_KNOTS,
    P_EPS,
    DemandPredictor,
    as_pandas_input,
    cumulative_hazard,
    expected_correlation,
    fit_control_function,
    fit_frailty,
    price_response,
    score_terms,
    segment_key,
    value_fold,
)
from pricing.platform import fs, tracking
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError, ModelGateError
from pricing.platform.rows import first_value
from pricing.platform.tables import TableRef
from pricing.price_model.training import check_workers, fit, fit_estimator, git_commit
from pricing.sources.exploration import SUGGESTION_LOG, price_nudge
from pricing.sources.landing import MANIFEST

NEWTON_ITERS = 25


ELASTICITY_BAND = 0.2


"""The naive elasticity is the slope of the classifier's curve over own price x exp(+-0.2)."""


MONOTONE_GRID = np.linspace(-0.7, 0.7, 15)


"""The monotonicity check evaluates every sampled test listing at own price x exp(these)."""


SAMPLE_ROWS = 20_000


FRAILTY_ROWS = 300_000


@dataclass(frozen=True)
class Exploration:
    """The price-exploration experiment behind the data: a hashed ``share`` of listings were offered the asking
    price times ``exp(U(-max_log, max_log))`` (``pricing.sources.exploration.price_nudge``).  ``kind`` nudge:
    the marketplace set that price; encouragement: it suggested it, and ``log`` (the experiment's log,
    ``SUGGESTION_LOG``) says which sellers adopted it."""

    seed: int
    share: float
    max_log: float
    kind: str = "nudge"
    log: str | None = None

    def suggestion(self) -> Column:
        return price_nudge(self.seed, self.share, self.max_log, F.col("listing_id"))


def exploration_design(cfg: Config) -> Exploration | None:
    """The experiment as the landing export's manifest records it (the marketplace knows its own experiment);
    None for sources without one, or an export made without nudges."""
    if cfg.ingest.source != "simulator":
        return None
    path = cfg.landing_dir / MANIFEST
    if not path.exists():
        return None
    world = json.loads(path.read_text())
    share = float(world.get("price_nudge_share") or 0.0)
    if share <= 0:
        return None
    if world.get("exploration", "nudge") == "encouragement":
        return Exploration(int(world["seed"]), share, float(world["price_nudge_max"]), "encouragement",
                           str(cfg.landing_dir / SUGGESTION_LOG))
    return Exploration(int(world["seed"]), share, float(world["price_nudge_max"]))


def with_demand_inputs(design: Exploration | None, segment_cols: tuple[str, ...]
                       ) -> Callable[[DataFrame], DataFrame]:
    """Adds ``value_fold``, ``suggestion`` (the experiment's offered log price move, 0 outside it),
    ``price_nudge`` (the move the asking price carries: the suggestion, or under encouragement 0 where the
    seller did not adopt it), ``own_price`` (the asking price before the nudge: what the seller chose) and the
    elasticity ``segment``.  Under encouragement the experiment's log must exist (``ConfigError``)."""
    def step(df: DataFrame) -> DataFrame:
        offered = design.suggestion() if design is not None else F.lit(0.0)
        df = df.withColumn("suggestion", offered)
        if design is not None and design.kind == "encouragement":
            spark = df.sparkSession
            if not fs.exists(spark, str(design.log)):
                raise ConfigError(f"the encouragement experiment's log {design.log} is missing: rerun "
                                  f"`pricing generate` (it writes the log with the landing export)")
            adopted = spark.read.parquet(str(design.log)).select("listing_id", F.col("adopted").alias("_adopted"))
            df = (df.join(F.broadcast(adopted), "listing_id", "left")
                  .withColumn("price_nudge", F.when(F.coalesce(F.col("_adopted"), F.lit(False)), F.col("suggestion"))
                              .otherwise(F.lit(0.0))).drop("_adopted"))
        else:
            df = df.withColumn("price_nudge", F.col("suggestion"))
        return (df.withColumn("value_fold", value_fold(F.col("listing_id")))
                .withColumn("own_price", F.col("asking_price") * F.exp(-F.col("price_nudge")))
                .withColumn("segment", segment_key(segment_cols)))

    return step


def vectors(df: DataFrame, cols: list[str], label: str) -> DataFrame:
    assembler = VectorAssembler(inputCols=cols, outputCol="features", handleInvalid="keep")
    rows = df.select(*[F.col(c).cast("double") for c in cols], F.col(label).cast("double").alias("label"), "is_valid")
    return assembler.transform(rows).select("features", "label", "is_valid").persist()


def fit_value_models(spark: SparkSession, cfg: Config, ts: DataFrame,
                     features: tuple[str, ...]) -> tuple[xgb.Booster, xgb.Booster]:
    """The price model's recipe (log1p sold price on ``features``, ``train`` hyperparameters) on each half of the
    sold listings; early stopping on a hashed tenth of that half."""
    sold = ts.where(F.col("sold_price") > 0).withColumn("label", F.log1p("sold_price")).withColumn(
        "is_valid", F.pmod(F.xxhash64(F.lit("value-valid"), F.col("listing_id")), F.lit(10)) == 0)
    models = []
    for k in (0, 1):
        data = vectors(sold.where(F.col("value_fold") == k), list(features), "label")
        models.append(fit(spark, cfg, data, cfg.train.booster.tree_params(), features=features)[1])
        data.unpersist()
    return models[0], models[1]


def fit_classifier(spark: SparkSession, cfg: Config, data: DataFrame, n_features: int) -> xgb.Booster:
    """xgboost.spark classifier on ``vectors``' frame: the last input (log own price / value) constrained
    monotone decreasing."""
    from xgboost.spark import SparkXGBClassifier

    b, t = cfg.demand.booster, cfg.train
    check_workers(spark, t.num_workers)
    constraints = "(" + ",".join(["0"] * (n_features - 1) + ["-1"]) + ")"
    clf = SparkXGBClassifier(
        features_col="features", label_col="label", validation_indicator_col="is_valid",
        num_workers=t.num_workers, device=t.device, tree_method="hist", n_estimators=b.n_estimators,
        early_stopping_rounds=b.early_stopping_rounds, random_state=b.seed, force_repartition=True, verbose=False,
        eval_metric="logloss", monotone_constraints=constraints, **b.tree_params(),
    )
    return fit_estimator(spark, cfg, clf, data).get_booster()


def _with_predicted(df: DataFrame, predictor: DemandPredictor, name: str,
                    compute: Callable[[DemandPredictor, pd.DataFrame], np.ndarray]) -> DataFrame:
    """Adds the double column ``name``: ``compute(predictor, batch)`` on each Arrow batch, with the predictor
    broadcast once."""
    blobs = df.sparkSession.sparkContext.broadcast(predictor.to_bytes())
    schema = T.StructType([*df.schema.fields, T.StructField(name, T.DoubleType())])

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = DemandPredictor.from_bytes(blobs.value)
        for pdf in batches:
            pdf[name] = compute(model, pdf)
            yield pdf

    return df.mapInPandas(run, schema)


def _log_value(model: DemandPredictor, pdf: pd.DataFrame) -> np.ndarray:
    return model.log_value(model.matrix(pdf), pdf["value_fold"].to_numpy())


def _offset(model: DemandPredictor, pdf: pd.DataFrame) -> np.ndarray:
    p0 = model.classify(model.matrix(pdf), pdf["log_value"].to_numpy(dtype=np.float64),
                        np.log(pdf["own_price"].to_numpy(dtype=np.float64)))
    return np.log(cumulative_hazard(p0))


def with_log_value(df: DataFrame, predictor: DemandPredictor) -> DataFrame:
    """Adds ``log_value`` (cross-fitted) and ``log_price_to_value`` (log own price - log value)."""
    return (_with_predicted(df, predictor, "log_value", _log_value)
            .withColumn("log_price_to_value", F.log("own_price") - F.col("log_value")))


def with_offset(df: DataFrame, predictor: DemandPredictor) -> DataFrame:
    """Adds ``offset``: log cumulative hazard of the classifier's sale probability at the seller's own price."""
    return _with_predicted(df, predictor, "offset", _offset)


def experiment_rows(rows: DataFrame, by: Column, delta: str = "price_nudge",
                    take_up: str | None = None) -> pd.DataFrame:
    """The experiment's rows on the driver, four or five numbers and a segment each (about 4 MB for the ~85k rows
    of a 1M-listing marketplace): ``seg`` (``by`` as a string), ``delta`` (the column of log price moves),
    ``offset``, the label ``y`` and, where ``take_up`` names one, ``take_up`` (the column of the moves'
    probability of being taken; without it every move is taken).

    ``newton_on_rows`` iterates on them on the driver, where one Spark aggregation per iteration (up to 25, twice
    per estimate) took about 25 s of the demand job at 1M, for a few milliseconds of arithmetic each."""
    cols = [by.cast("string").alias("seg"), F.col(delta).cast("double").alias("delta"),
            F.col("offset").cast("double").alias("offset"), F.col("label").cast("double").alias("y")]
    return rows.select(*cols, *([F.col(take_up).cast("double").alias("take_up")] if take_up else [])).toPandas()


def newton_on_rows(pdf: pd.DataFrame, prior: dict[str, float], prior_sd: float | None, iters: int = NEWTON_ITERS,
                   k: float | None = None) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """Penalised maximum-likelihood theta per segment of ``pdf`` (``experiment_rows``), every segment at once by
    Fisher scoring.  ``prior``: segment -> prior mean (``ALL`` for any segment not named); ``prior_sd`` None:
    unpenalised; ``k``: the frailty the price response mixes over.  Rows with a ``take_up`` column weigh each
    move by its probability of being taken (intent to treat) (``score_terms``).  Returns theta, information and
    rows per segment, segments in sorted order."""
    codes, segments = pd.factorize(pdf["seg"], sort=True)
    keep = codes >= 0  # a null segment is no segment (a grouping would have made it one of None)
    codes = codes[keep]
    d, off, y = (pdf[c].to_numpy(dtype=np.float64)[keep] for c in ("delta", "offset", "y"))
    tu = pdf["take_up"].to_numpy(dtype=np.float64)[keep] if "take_up" in pdf else None
    names = [str(x) for x in segments]
    n = np.bincount(codes, minlength=len(names))
    mean = np.array([prior.get(x, prior.get(ALL, 1.0)) for x in names])
    prec = 0.0 if prior_sd is None else 1.0 / prior_sd**2
    theta = mean.copy()
    total: np.ndarray = np.zeros(len(names))
    for _ in range(iters):
        g, h = score_terms(d, off, y, theta[codes], k, tu)
        grad = np.bincount(codes, weights=g, minlength=len(names))
        total = np.bincount(codes, weights=h, minlength=len(names)) + prec
        step = np.where(total > 0, (grad - prec * (theta - mean)) / np.where(total > 0, total, 1.0), 0.0)
        theta = theta + step
        if np.max(np.abs(step), initial=0.0) < 1e-6:
            break
    return ({x: float(t) for x, t in zip(names, theta, strict=True)},
            {x: float(t) for x, t in zip(names, total, strict=True)},
            {x: int(c) for x, c in zip(names, n, strict=True)})


def estimate_elasticities(nudged: DataFrame, prior_sd: float, k: float | None = None, delta: str = "price_nudge",
                          take_up: str | None = None) -> tuple[dict[str, float], pd.DataFrame]:
    """Overall theta (unpenalised), then one per segment shrunk toward it; negative estimates are set to 0
    (demand cannot rise with price; a negative one is noise).  ``k``: the frailty the response mixes over;
    ``delta``, ``take_up``: see ``experiment_rows``.  The table's attrs carry the correlation with the true
    segment elasticities that the data's noise allows if they spread by ``prior_sd`` (``expected_correlation``)."""
    pdf = experiment_rows(nudged, F.col("segment"), delta, take_up)  # collected once, for both fits
    overall, o_info, o_n = newton_on_rows(pdf.assign(seg=ALL), {ALL: 1.0}, None, k=k)
    if ALL not in overall or not np.isfinite(overall[ALL]):
        raise ModelGateError("the price response could not be estimated: no usable exploration rows")
    theta, info, counts = newton_on_rows(pdf, {ALL: overall[ALL]}, prior_sd, k=k)
    elasticity = {ALL: max(0.0, overall[ALL]), **{k: max(0.0, v) for k, v in theta.items()}}
    table_ = pd.DataFrame({"segment": list(theta), "exploration": [elasticity[k] for k in theta],
                           "exploration_se": [1.0 / np.sqrt(info[k]) for k in theta],
                           "nudged_rows": [counts[k] for k in theta]})
    data_info = np.array([info[k] for k in theta]) - prior_sd**-2
    table_.attrs.update({"overall": overall[ALL], "overall_se": 1.0 / np.sqrt(o_info[ALL]),
                         "nudged_rows": o_n[ALL], "expected_corr": expected_correlation(prior_sd, data_info)})
    return elasticity, table_


TAKE_UP_PSEUDO_ROWS = 50.0
"""A segment's take-up rate of raises (or cuts) is shrunk toward the overall one by this many rows' worth."""


def with_take_up(offered: DataFrame) -> DataFrame:
    """Adds ``take_up``: the first stage of an encouragement design, the share of the segment's sellers who
    adopted a suggested move in the same direction (raise or cut), shrunk toward the share over all segments
    (``TAKE_UP_PSEUDO_ROWS``).  Reads only the experiment's log (``price_nudge != 0``: adopted)."""
    up = F.col("suggestion") > 0
    took = (F.col("price_nudge") != 0).cast("double")
    overall = {bool(r["up"]): float(r["rate"]) for r in offered.groupBy(up.alias("up")).agg(
        F.avg(took).alias("rate")).collect()}
    if not overall:
        raise ModelGateError("the encouragement experiment has no rows to estimate take-up from")
    prior = F.when(up, F.lit(overall.get(True, 0.0))).otherwise(F.lit(overall.get(False, 0.0)))
    w = Window.partitionBy("segment", up)
    return offered.withColumn("take_up", (F.sum(took).over(w) + TAKE_UP_PSEUDO_ROWS * prior)
                              / (F.count(F.lit(1)).over(w) + TAKE_UP_PSEUDO_ROWS))


ESTIMATORS = ("control_function", "intent_to_treat", "as_treated")
"""An encouragement design's elasticity estimates: the served one (``demand.encouragement``) and the others
beside it, as columns of the elasticity table."""
INTENT_TO_TREAT: dict[str, Any] = {"delta": "suggestion", "take_up": "take_up"}
"""``estimate_elasticities``' arguments for intent to treat: the offered move, taken with the take-up."""


def identify(nudged: DataFrame, design: Exploration, encouragement: str, prior_sd: float, k: float | None,
             seed: int) -> tuple[DataFrame, dict[str, float], pd.DataFrame]:
    """The served elasticities from the experiment's rows (``estimate_elasticities``), and the rows with the
    offset the survival layer should use.  A nudge design: the moves as they are.  An encouragement design
    (rows ``with_take_up``): ``intent_to_treat``, or ``control_function`` (the offset shifted by the first
    stage's residual, ``with_selection_offset``)."""
    if design.kind != "encouragement":
        return nudged, *estimate_elasticities(nudged, prior_sd, k)
    if encouragement == "intent_to_treat":
        return nudged, *estimate_elasticities(nudged, prior_sd, k, **INTENT_TO_TREAT)
    rows, shifts = control_function_rows(nudged, k, seed)
    elasticity, table_ = estimate_elasticities(rows, prior_sd, k)
    table_.attrs.update({"selection_cut": shifts[0], "selection_raise": shifts[1]})
    return rows, elasticity, table_


def control_function_rows(nudged: DataFrame, k: float | None, seed: int) -> tuple[DataFrame, tuple[float, float]]:
    """The rows with the control function's offset (``with_selection_offset``), and its shifts (``fit_selection``)."""
    shifts = fit_selection(nudged, k, seed)
    return with_selection_offset(nudged, shifts, k), shifts


def fit_selection(nudged: DataFrame, k: float | None, seed: int) -> tuple[float, float]:
    """The control function's log-hazard shifts per unit of first-stage residual, for offered cuts and raises
    (``fit_control_function``, jointly with theta), from at most ``FRAILTY_ROWS`` rows on the driver."""
    n = nudged.count()
    rows = nudged.sample(fraction=min(1.0, FRAILTY_ROWS / max(n, 1)), seed=seed) if n > FRAILTY_ROWS else nudged
    pdf = rows.select("price_nudge", "suggestion", "offset", F.col("label").cast("double"), "take_up").toPandas()
    col = {c: pdf[c].to_numpy(dtype=np.float64) for c in pdf.columns}
    _, cut, raise_ = fit_control_function(col["price_nudge"], col["suggestion"], col["offset"], col["label"],
                                          col["take_up"], k)
    return cut, raise_


def with_selection_offset(nudged: DataFrame, shifts: tuple[float, float], k: float | None) -> DataFrame:
    """``offset`` moved by the control function: each item's hazard scaled by ``exp(shift * (adopted - take_up))``
    (the cut or the raise shift), through the gamma(``k``) mixture as ``fit_control_function`` does."""
    residual = (F.col("price_nudge") != 0).cast("double") - F.col("take_up")
    shift = F.when(F.col("suggestion") < 0, F.lit(shifts[0])).otherwise(F.lit(shifts[1])) * residual
    if k is None:
        return nudged.withColumn("offset", F.col("offset") + shift)
    mean_hazard = F.lit(k) * F.expm1(F.exp("offset") / F.lit(k))
    return nudged.withColumn("offset", F.log(F.lit(k) * F.log1p(mean_hazard * F.exp(shift) / F.lit(k))))


def with_comparisons(nudged: DataFrame, served: pd.DataFrame, encouragement: str, prior_sd: float,
                     k: float | None, seed: int) -> pd.DataFrame:
    """``served`` (the elasticity table) with a column per other estimator of ``ESTIMATORS`` and their
    overall estimates (``<name>_overall``) and the mean take-up among its attributes."""
    attrs = dict(served.attrs)
    others = {"intent_to_treat": INTENT_TO_TREAT, "as_treated": {}}
    if encouragement == "intent_to_treat":
        others = {"control_function": {}, "as_treated": {}}
    out = served
    for name, how in others.items():
        rows = control_function_rows(nudged, k, seed)[0] if name == "control_function" else nudged
        _, table_ = estimate_elasticities(rows, prior_sd, k, **how)
        out = out.merge(table_[["segment", "exploration"]].rename(columns={"exploration": name}), on="segment",
                        how="left")
        attrs[f"{name}_overall"] = table_.attrs["overall"]
    out.attrs.update({**attrs, "take_up": float(first_value(nudged.agg(F.avg("take_up"))) or 0.0)})
    return out


def estimate_frailty(nudged: DataFrame, elasticity: dict[str, float], last: Any, horizon: int,
                     seed: int, response_k: float | None = None) -> dict[str, Any]:
    """Gamma frailty shape and cumulative-hazard shape (``pricing.demand_model.estimator.fit_frailty``) from the treatment
    arm's sale times, with each listing's sale probability from the classifier (out of sample: it was trained
    on the control arm) moved by its nudge.  At most ``FRAILTY_ROWS`` listings reach the driver."""
    n = nudged.count()
    rows = (nudged.sample(fraction=min(1.0, FRAILTY_ROWS / max(n, 1)), seed=seed) if n > FRAILTY_ROWS else nudged)
    pdf = rows.select(
        "segment", "offset", "price_nudge",
        ((F.col("sold_at").cast("double") - F.col("as_of").cast("double")) / 86400.0).alias("sold_day"),
        ((F.lit(last).cast("timestamp").cast("double") - F.col("as_of").cast("double")) / 86400.0).alias("censor_day"),
    ).toPandas()
    theta = pdf["segment"].map(elasticity).fillna(elasticity[ALL]).to_numpy(dtype=np.float64)
    p0 = -np.expm1(-np.exp(pdf["offset"].to_numpy(dtype=np.float64)))
    p_h = price_response(p0, theta, pdf["price_nudge"].to_numpy(dtype=np.float64), response_k)
    sold = pdf["sold_day"].to_numpy(dtype=np.float64, na_value=np.nan)
    censor = pdf["censor_day"].to_numpy(dtype=np.float64)
    # A sale after the end of the data cannot have been seen yet.
    sold = np.where(sold < censor, sold, np.nan)
    k, g = fit_frailty(p_h, sold, censor, horizon)
    return {"frailty_k": k, "exposure_knots": tuple(FRAILTY_KNOTS), "exposure_values": tuple(float(x) for x in g)}


FRAILTY_ROUNDS = 2
"""demand.price_response frailty: rounds of theta given k, then k given theta, after the proportional start."""
REALISATION_MIN_SALES = 30
"""A knot interval with fewer sales than this takes the previous interval's realisation."""


def realisation_curve(labelled: DataFrame, knots: tuple[float, ...], fallback: float,
                      min_sales: int = REALISATION_MIN_SALES) -> tuple[float, ...]:
    """E[sold price / listed price] of the sales between consecutive ``knots`` days after listing, in one
    aggregation: later sales close lower (the marketplace's price drops).  An interval with fewer than
    ``min_sales`` sales takes the previous interval's value (the first one ``fallback``)."""
    day = (F.col("sold_at").cast("double") - F.col("as_of").cast("double")) / 86400.0
    bucket = F.lit(0)
    for k in knots[1:]:
        bucket = bucket + (day >= F.lit(float(k))).cast("int")
    rows = (labelled.where(F.col("sold_at").isNotNull() & (F.col("sold_price") > 0) & (F.col("asking_price") > 0))
            .groupBy(bucket.alias("bucket")).agg(F.avg(F.col("sold_price") / F.col("asking_price")).alias("r"),
                                                 F.count("*").alias("n")).collect())
    found = {int(r["bucket"]): (float(r["r"]), int(r["n"])) for r in rows}
    out, prev = [], fallback
    for j in range(len(knots) - 1):
        r, n = found.get(j, (prev, 0))
        prev = r if n >= min_sales else prev
        out.append(prev)
    return tuple(out)


def test_frame(df: DataFrame, predictor: DemandPredictor) -> pd.DataFrame:
    """Per test listing: the label, the served and naive sale probability at the price it was listed at."""
    spark = df.sparkSession
    blobs = spark.sparkContext.broadcast(predictor.to_bytes())
    schema = "listing_id long, y double, p double, p_naive double, segment string, nudged boolean"

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = DemandPredictor.from_bytes(blobs.value)
        for pdf in batches:
            price = pdf["asking_price"].to_numpy(dtype=np.float64)[:, None]
            served, naive = model.curves(pdf, price)
            yield pd.DataFrame({"listing_id": pdf["listing_id"], "y": pdf["label"].astype(float), "p": served[:, 0],
                                "p_naive": naive[:, 0], "segment": pdf["segment"], "nudged": pdf["price_nudge"] != 0})

    return df.mapInPandas(run, schema).toPandas()


def curves_frame(df: DataFrame, predictor: DemandPredictor, changes: np.ndarray) -> pd.DataFrame:
    """Per sampled listing: served and naive sale probability at own price x exp(``changes``), flattened."""
    spark = df.sparkSession
    blobs = spark.sparkContext.broadcast(predictor.to_bytes())
    k = len(changes)
    schema = T.StructType([T.StructField("listing_id", T.LongType()), T.StructField("segment", T.StringType()),
                           *[T.StructField(f"s{i}", T.DoubleType()) for i in range(k)],
                           *[T.StructField(f"n{i}", T.DoubleType()) for i in range(k)]])

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = DemandPredictor.from_bytes(blobs.value)
        for pdf in batches:
            prices = pdf["own_price"].to_numpy(dtype=np.float64)[:, None] * np.exp(changes)[None, :]
            served, naive = model.curves(pdf, prices)
            out = pd.DataFrame({"listing_id": pdf["listing_id"], "segment": pdf["segment"]})
            for i in range(k):
                out[f"s{i}"], out[f"n{i}"] = served[:, i], naive[:, i]
            yield out

    return df.mapInPandas(run, schema).toPandas()


def check_monotone(curves: pd.DataFrame, k: int) -> dict[str, float]:
    """Share of sampled listings whose sale probability ever rises with price (served, naive): must be 0."""
    out = {}
    for prefix, name in (("s", "served"), ("n", "naive")):
        p = curves[[f"{prefix}{i}" for i in range(k)]].to_numpy()
        out[f"monotone_violations_{name}"] = float((np.diff(p, axis=1) > 1e-9).any(axis=1).mean()) if len(p) else 0.0
    return out


def load_demand_version(name: str, version: int) -> DemandPredictor:
    """The predictor of one registered version, as this package's :class:`DemandPredictor` (a model logged from
    code defines its own copy of the class when loaded)."""
    model = tracking.load_code_model(name, version)
    return DemandPredictor.from_bytes(model.predictor.to_bytes())


def clipped_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(log_loss(y, np.clip(p, P_EPS, 1 - P_EPS), labels=[0.0, 1.0]))


def sanity(metrics: dict[str, float], predictor: DemandPredictor) -> list[str]:
    """Reasons the demand model is not fit to serve; empty when it passes."""
    problems = []
    if not np.isfinite(metrics["test_logloss"]) or metrics["test_logloss"] >= metrics["base_rate_logloss"]:
        problems.append(f"test log loss {metrics['test_logloss']:.4f} does not beat the base rate's "
                        f"{metrics['base_rate_logloss']:.4f}")
    for name in ("served", "naive"):
        if metrics[f"monotone_violations_{name}"] > 0:
            problems.append(f"{name} sale probability rises with price for "
                            f"{metrics[f'monotone_violations_{name}']:.1%} of sampled listings")
    if predictor.identification == "exploration" and predictor.elasticity[ALL] <= 0:
        problems.append("the randomised price nudges show no price response (overall elasticity 0)")
    return problems


def register(cfg: Config, predictor: DemandPredictor, sample: DataFrame, tmp: Path, run_id: str,
             metrics: dict[str, float], problems: list[str], ts_ref: str, ts_version: int) -> int:
    """Log the pyfunc (signature + input example), then the finite ``metrics`` with its ``model_id`` (on the run
    and on the logged model), register a version, tag it (git commit too), alias it `challenger` if sane.

    The model is logged from code: ``pricing/demand_model/pyfunc.py``, self-contained, is the model's code, so
    it loads wherever its pip requirements are installed (Model Serving, ``spark_udf`` in a virtualenv), not
    only where our wheel is."""
    rows = sample.limit(5).toPandas()
    rows["price"] = rows["own_price"]
    example = as_pandas_input(rows, predictor.features)
    signature = infer_signature(example, pd.DataFrame({"p_sale": predictor.p_sale(example, example[["price"]]
                                                                                 .to_numpy())[:, 0]}))
    info = tracking.log_code_model(Path(pyfunc.__file__), predictor.save(tmp / "predictor"),
                                   registered_as=cfg.mlflow.demand_model_name, signature=signature, example=example)
    # The run's metrics, logged once and linked to the logged model (MLflow 3 LoggedModel).
    mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)}, model_id=info.model_id)
    client = MlflowClient()
    name, version = cfg.mlflow.demand_model_name, int(info.registered_model_version)
    tags = {"training_table": ts_ref, "training_table_version": str(ts_version), "run_id": run_id,
            "identification": predictor.identification, "horizon_days": str(predictor.horizon_days),
            "test_logloss": f"{metrics['test_logloss']:.5f}", "test_auc": f"{metrics['test_auc']:.4f}",
            "elasticity_overall": f"{predictor.elasticity[ALL]:.4f}", "git_commit": git_commit(cfg),
            "sanity": "passed" if not problems else "; ".join(problems)}
    for k, v in tags.items():
        client.set_model_version_tag(name, str(version), k, v)
    if not problems:
        client.set_registered_model_alias(name, tracking.CHALLENGER, str(version))
    return version


def gate(cfg: Config, version: int, problems: list[str], logloss: float, test: DataFrame) -> tuple[int | None, str]:
    """`champion` moves to this version when it is sane and its test log loss is no worse than the current
    champion's on the same test listings (or there is no champion).  Returns the champion's version after the
    decision and the reason, which is also tagged on the version."""
    client = MlflowClient()
    name = cfg.mlflow.demand_model_name
    champ = tracking.alias_version(client, name, tracking.CHAMPION)
    if problems:
        promote, reason = False, "not promoted: failed its sanity checks"
    elif champ is None:
        promote, reason = True, "promoted: no champion yet"
    else:
        try:
            old = test_frame(test, load_demand_version(name, champ))
        except (ValueError, KeyError) as exc:
            promote, reason = True, f"promoted: champion v{champ} cannot score the current test listings ({exc})"
        else:
            old_loss = clipped_log_loss(old["y"].to_numpy(), old["p"].to_numpy())
            promote = logloss <= old_loss
            reason = (f"{'promoted' if promote else 'not promoted'}: test log loss {logloss:.5f} vs champion "
                      f"v{champ} {old_loss:.5f} on the same test listings")
    if promote:
        client.set_registered_model_alias(name, tracking.CHAMPION, str(version))
    client.set_model_version_tag(name, str(version), "promotion", reason)
    return (version if promote else champ), reason


# ---- the demand job's steps ------------------------------------------------------------------------------
def check_demand_settings(spark: SparkSession, cfg: Config, design: Exploration | None) -> None:
    """Fails before anything is read when ``demand.identification=exploration`` has no experiment (``design``
    None) or the cluster cannot run ``train.num_workers`` tasks at once."""
    if cfg.demand.identification == "exploration" and design is None:
        raise ConfigError("demand.identification=exploration needs the price-exploration experiment, but the "
                          "landing export has none (simulator.price_nudge_share = 0, an export made before it, or "
                          "a source without one). Regenerate with simulator.price_nudge_share > 0, or set "
                          "demand.identification=naive (a confounded price response)")
    check_workers(spark, cfg.train.num_workers)


@dataclass(frozen=True)
class DemandSplit:
    """The listings whose label is known (listed at least H days before the latest listing, ``last``), split by
    listing time: train before ``valid_start``, validation before ``test_start``, test up to ``cutoff``."""

    labelled: DataFrame
    last: datetime
    cutoff: datetime
    valid_start: datetime
    test_start: datetime
    rows: dict[str, int]
    """Rows per part: ``train``, ``valid``, ``test``."""


def demand_split(ts: DataFrame, cfg: Config, features: tuple[str, ...], ref: TableRef) -> DemandSplit:
    """``ts`` (``with_demand_inputs``' training set, read from ``ref``) cut to labelled listings and split by
    time; fails when it is empty, lacks a model feature, or a part of the split is empty."""
    d, horizon = cfg.demand, cfg.features.sold_within_days
    last: datetime | None = first_value(ts.agg(F.max("as_of")))
    if last is None:
        raise ModelGateError(f"{ref} is empty: run `pricing features` first")
    # A label is known once H days have passed since listing: the latest listing time stands for "now".
    cutoff = last - timedelta(days=horizon)
    test_start = cutoff - timedelta(days=d.test_days)
    valid_start = test_start - timedelta(days=d.validation_days)
    missing = [c for c in features if c not in ts.columns]
    if missing:
        raise ConfigError(f"{ref} lacks model feature columns {missing}: rebuild it with `pricing features` "
                          f"(comparable-sales columns need `pricing match` first, or features.comparables=false)")
    cols: list[str | Column] = ["listing_id", "as_of", *features, "asking_price", "sold_price", "sold_at", "value_fold",
            "suggestion", "price_nudge", "own_price", "segment", F.col("sold_within_days").cast("double").alias("label")]
    labelled = ts.where(F.col("as_of") <= F.lit(cutoff)).where(F.col("asking_price") > 0).select(*cols)
    part = (F.when(F.col("as_of") < F.lit(valid_start), "train").when(F.col("as_of") < F.lit(test_start), "valid")
            .otherwise("test"))
    counted = {r["part"]: int(r["n"]) for r in labelled.groupBy(part.alias("part")).agg(F.count("*").alias("n"))
               .collect()}  # the three parts in one pass over the table
    rows = {k: counted.get(k, 0) for k in ("train", "valid", "test")}
    if min(rows.values()) == 0:
        raise ModelGateError(f"empty demand split {rows} (labels need {horizon} days after listing): widen the data "
                             f"window or shrink demand.test_days / validation_days")
    return DemandSplit(labelled, last, cutoff, valid_start, test_start, rows)


@dataclass(frozen=True)
class DemandFit:
    """The fitted demand model and what its evaluation needs."""

    predictor: DemandPredictor
    valued: DataFrame
    """``split.labelled`` with ``log_value`` and ``log_price_to_value``; persisted: unpersist it when done."""
    elasticity: dict[str, float]
    """segment -> theta (``{ALL: 0.0}`` without an experiment)."""
    elasticity_table: pd.DataFrame
    """``estimate_elasticities``' per-segment table (empty without an experiment)."""
    frailty: dict[str, Any]
    """``estimate_frailty``'s fields (empty without an experiment)."""
    realisation: float
    value_seconds: float
    classifier_seconds: float


def fit_demand(spark: SparkSession, cfg: Config, ts: DataFrame, split: DemandSplit, features: tuple[str, ...],
               design: Exploration | None) -> DemandFit:
    """Steps 1-3 of the module docstring: cross-fitted value boosters on ``ts``'s sold listings, the classifier
    on the control arm's train/validation rows of ``split``, the realisation rate, and (with an experiment,
    ``design``) the elasticities and the survival layer from the treatment arm."""
    d, horizon = cfg.demand, cfg.features.sold_within_days
    t0 = time.time()
    value_models = fit_value_models(spark, cfg, ts, features)
    value_s = time.time() - t0
    bare = DemandPredictor(features, value_models[0], value_models, {ALL: 0.0}, horizon, 1.0,
                           d.identification, d.elasticity_segment)
    valued = with_log_value(split.labelled, bare).persist()
    control = valued.where(F.col("suggestion") == 0).where(F.col("as_of") < F.lit(split.test_start)).withColumn(
        "is_valid", F.col("as_of") >= F.lit(split.valid_start))
    clf_cols = [*features, "log_value", "log_price_to_value"]
    data = vectors(control, clf_cols, "label")
    t1 = time.time()
    classifier = fit_classifier(spark, cfg, data, len(clf_cols))
    clf_s = time.time() - t1
    data.unpersist()
    classifier.feature_names = clf_cols
    realisation = float(first_value(split.labelled.where((F.col("label") == 1) & (F.col("sold_price") > 0)).agg(
        F.avg(F.col("sold_price") / F.col("asking_price")))) or 1.0)
    bare = DemandPredictor(features, classifier, value_models, {ALL: 0.0}, horizon, realisation,
                           d.identification, d.elasticity_segment)
    elasticity_table = pd.DataFrame(columns=["segment", "exploration", "exploration_se", "nudged_rows"])
    elasticity: dict[str, float] = {ALL: 0.0}
    frailty: dict[str, Any] = {}
    if design is not None:
        offered = with_offset(valued.where(F.col("suggestion") != 0).where(F.col("as_of") < F.lit(split.test_start)),
                              bare)
        encouraged = design.kind == "encouragement"
        nudged = (offered.transform(with_take_up) if encouraged else offered).persist()
        rows, elasticity, elasticity_table = identify(nudged, design, d.encouragement, d.elasticity_prior_sd, None,
                                                      d.booster.seed)
        frailty = estimate_frailty(rows, elasticity, split.last, horizon, d.booster.seed)
        k: float | None = None
        for _ in range(FRAILTY_ROUNDS if d.price_response == "frailty" else 0):
            # theta and k each need the other: alternate (theta given k, then k and g given theta).
            k = float(frailty["frailty_k"])
            rows, elasticity, elasticity_table = identify(nudged, design, d.encouragement, d.elasticity_prior_sd, k,
                                                          d.booster.seed)
            frailty = estimate_frailty(rows, elasticity, split.last, horizon, d.booster.seed, k)
        if encouraged:
            elasticity_table = with_comparisons(nudged, elasticity_table, d.encouragement, d.elasticity_prior_sd, k,
                                                d.booster.seed)
        nudged.unpersist()
        frailty["realisation_values"] = realisation_curve(split.labelled, FRAILTY_KNOTS, realisation)
    response = d.price_response if frailty else "proportional"
    predictor = DemandPredictor(features, classifier, value_models, elasticity, horizon, realisation,
                                d.identification, d.elasticity_segment, response=response, **frailty)
    return DemandFit(predictor, valued, elasticity, elasticity_table, frailty, realisation, value_s, clf_s)
