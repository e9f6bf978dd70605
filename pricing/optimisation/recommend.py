"""Price recommendations: for every active listing, the candidate price that serves the seller's objective under
the demand model, within guardrails, with a reason.

* Guardrails: the category's floor and ceiling (``score.category_bounds``, else ``score.min_price`` /
  ``max_price``), at most ``recommend.max_change`` away from the current price (floor and ceiling win when the
  two disagree), and price points (``score.price_points``).  Candidates are ``grid_size`` log-spaced prices
  over the allowed band, each rounded to a price point inside it, so every candidate is allowed.
* Objective: ``revenue`` (expected revenue within the horizon: price x P(sold) x realisation) or
  ``sell_through`` (the highest P(sold) keeping ``min_revenue_share`` of the best expected revenue).
* Distributed: the demand model is broadcast once and each Arrow batch is scored as matrices (``mapInPandas``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pricing.demand_model.estimator import judged_columns
from pricing.optimisation import evaluation as ev
from pricing.optimisation import plots as optimisation_plots
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config, RecommendConfig, ScoreConfig
from pricing.platform.errors import ModelGateError
from pricing.platform.objective import Objective
from pricing.platform.rows import first_row, first_value
from pricing.platform.tables import TableRef, table
from pricing.price_model.scoring import bounds, round_to_price_points

OUTPUT = catalog.ML_PRICE_RECOMMENDATIONS


EVAL_OUTPUT = catalog.ML_RECOMMENDATION_EVAL


OUTPUT_DOCS = {
    "listing_id": "Active listing: one row per listing and scoring date.",
    "category": "Listing category (its floor and ceiling apply).",
    "current_price": "The listing's asking price when recommended.",
    "recommended_price": "The recommendation: the price point maximising the objective within the guardrails.",
    "price_change": "recommended_price / current_price - 1.",
    "p_sale": "Demand model's probability of selling within its horizon at recommended_price.",
    "expected_revenue": "Expected revenue within the horizon at recommended_price (price x p_sale x realisation).",
    "expected_value": "The objective's expected value at recommended_price under the demand model (continuation: "
                      "revenue within the horizon plus the discounted revenue of later sales).",
    "p_sale_current": "Demand model's probability of selling within its horizon at current_price.",
    "expected_revenue_current": "Expected revenue within the horizon at current_price.",
    "expected_value_current": "The objective's expected value at current_price under the demand model.",
    "elasticity": "Price elasticity the demand model used for the listing's segment.",
    "reason_code": "priced above market, under-priced or well priced (within recommend.reason_tolerance).",
    "limited_by": "Guardrail the recommendation sits on (max_change, floor, ceiling); null inside the band.",
    "objective": "The objective the run optimised (<kind>_<days>d: continuation, revenue or sell_through; see "
                 "recommend.objective).",
    "suggested_price": "The price model's suggestion (score's p50 within the guardrails), for comparison.",
    "model_name": "Registered demand model used.",
    "model_version": "Its version (the alias champion when run).",
    "price_model_name": "Registered price model whose suggestion is shown.",
    "price_model_version": "Its version.",
    "feature_table_version": "Delta version of features.training_set the features were read from.",
    "scoring_date": "The date the rows were written under; rerunning a date replaces its rows.",
    "scored_at": "When the run wrote the rows (UTC).",
}
"""Column -> description of ``ml.price_recommendations`` (what ``pricing recommend`` writes)."""


ABOVE, UNDER, WELL = "priced above market", "under-priced", "well priced"


def demand_champion(cfg: Config) -> int:
    """The version the demand model's `champion` points at, checked against the one the workflow handed over."""
    return tracking.checked_champion(cfg.mlflow.demand_model_name, cfg.recommend.demand_version,
                                     what="demand model", missing="run `pricing demand` first",
                                     handed_over="this workflow's demand task left",
                                     rerun="re-run demand and recommend")


def with_band(s: ScoreConfig, max_change: float) -> Callable[[DataFrame], DataFrame]:
    """Adds ``floor``, ``ceiling`` (the category's), the allowed band ``[band_lo, band_hi]`` (at most
    ``max_change`` from ``current_price``, inside floor and ceiling, which win when the two disagree) and what
    sets each end (``lo_by``, ``hi_by``: max_change, floor or ceiling)."""
    def step(df: DataFrame) -> DataFrame:
        floor, ceiling = bounds(F.col("category"), s)
        lo, hi = F.col("current_price") * (1.0 - max_change), F.col("current_price") * (1.0 + max_change)
        return (df.withColumn("floor", floor).withColumn("ceiling", ceiling)
                .withColumn("band_lo", F.least(F.greatest(lo, F.col("floor")), F.col("ceiling")))
                .withColumn("band_hi", F.greatest(F.least(hi, F.col("ceiling")), F.col("floor")))
                .withColumn("lo_by", F.when(lo < F.col("floor"), "floor").when(lo > F.col("ceiling"), "ceiling")
                            .otherwise("max_change"))
                .withColumn("hi_by", F.when(hi > F.col("ceiling"), "ceiling").when(hi < F.col("floor"), "floor")
                            .otherwise("max_change")))

    return step


def with_candidates(grid_size: int, points: tuple[float, ...]) -> Callable[[DataFrame], DataFrame]:
    """Adds ``candidates``: ``grid_size`` log-spaced prices from ``band_lo`` to ``band_hi``, each rounded to the
    nearest price point inside the band (``score``'s rounding), ascending."""
    def step(df: DataFrame) -> DataFrame:
        lo, hi = F.log("band_lo"), F.log("band_hi")

        def candidate(i: Column) -> Column:
            raw = F.exp(lo + (hi - lo) * i.cast("double") / float(grid_size - 1))
            return round_to_price_points(raw, points, F.col("band_lo"), F.col("band_hi"))

        return df.withColumn("candidates", F.transform(F.sequence(F.lit(0), F.lit(grid_size - 1)), candidate))

    return step


def with_reasons(r: RecommendConfig) -> Callable[[DataFrame], DataFrame]:
    """Adds ``price_change`` (recommended / current - 1), ``reason_code`` and ``limited_by`` (which guardrail
    the recommendation sits on: max_change, floor, ceiling; null when it is inside the band)."""
    def step(df: DataFrame) -> DataFrame:
        change = F.col("recommended_price") / F.col("current_price") - 1.0
        return (df.withColumn("price_change", change)
                .withColumn("reason_code", F.when(change < -r.reason_tolerance, ABOVE)
                            .when(change > r.reason_tolerance, UNDER).otherwise(WELL))
                .withColumn("limited_by", F.when(F.col("at_lowest"), F.col("lo_by"))
                            .when(F.col("at_highest"), F.col("hi_by"))))

    return step


def catalogue(spark: SparkSession, cfg: Config) -> tuple[DataFrame, TableRef, int, int]:
    """Every active listing's features as of listing time (``features.training_set``, as ``score`` reads them)
    with its current price; fails before any write when an active listing has no features."""
    feat_ref = table(cfg, catalog.TRAINING_SET)
    feat_version = delta_io.version(spark, feat_ref)
    feats = delta_io.read(spark, feat_ref, version=feat_version).where("status = 'active'")
    active = delta_io.read(spark, table(cfg, catalog.SILVER_LISTINGS)).where("status = 'active'").select(
        "listing_id", "current_price")
    cat = feats.join(active, "listing_id").where(F.col("current_price") > 0)
    n_active, n_cat = active.count(), cat.count()
    if n_cat != n_active:
        raise ModelGateError(f"{n_active - n_cat:,} of {n_active:,} active listings have no features (or no "
                             f"positive price) in {feat_ref} @ v{feat_version}: run `pricing features` first "
                             f"(nothing was written)")
    return cat, feat_ref, feat_version, n_active


def replace_date(spark: SparkSession, df: DataFrame, ref: TableRef, scoring_date: Any,
                 docs: Mapping[str, str] | None = None) -> int:
    delta_io.overwrite(df, ref, replace_where=f"scoring_date = DATE'{scoring_date.isoformat()}'", docs=docs)
    return delta_io.version(spark, ref)


def recommendation_stats(df: DataFrame) -> dict[str, float]:
    """Rows, reason shares, guardrail share, price change and the demand model's own expected uplift."""
    row = first_row(df.agg(
        F.count("*").alias("rows"),
        *[F.sum((F.col("reason_code") == F.lit(c)).cast("int")).alias(f"reason_{c}") for c in (ABOVE, UNDER, WELL)],
        F.sum(F.col("limited_by").isNotNull().cast("int")).alias("limited"),
        F.avg("price_change").alias("mean_price_change"),
        F.expr("percentile_approx(price_change, 0.5)").alias("median_price_change"),
        F.avg("p_sale").alias("mean_p_sale"), F.avg("p_sale_current").alias("mean_p_sale_current"),
        F.sum("expected_revenue").alias("expected_revenue"),
        F.sum("expected_revenue_current").alias("expected_revenue_current"),
    )).asDict()
    rows = max(row["rows"], 1)
    out = {k: float(v or 0.0) for k, v in row.items()}
    for c in (ABOVE, UNDER, WELL):
        out[f"reason_{c}_share"] = out[f"reason_{c}"] / rows
    out["limited_share"] = out["limited"] / rows
    out["model_revenue_uplift"] = out["expected_revenue"] / max(out["expected_revenue_current"], 1e-9) - 1.0
    return {k.replace(" ", "_").replace("-", "_"): v for k, v in out.items()}


def evaluate_policies(spark: SparkSession, cfg: Config, full: DataFrame, judged: Sequence[Objective], demand_v: int,
                      scoring_date: Any, now: datetime) -> tuple[pd.DataFrame, int]:
    """Evaluation only: under each ``judged`` objective (horizons filled in), each policy's true expected value
    against that objective's oracles, per segment -> EVAL_OUTPUT (one block of rows per objective)."""
    reference = first_value(full.agg(F.max("created_at")))
    days = (F.lit(reference).cast("timestamp").cast("double") - F.col("created_at").cast("double")) / 86400.0
    blocks = []
    for objective in judged:
        price_col, naive_col = judged_columns(objective)
        inputs = full.select("listing_id", "current_price", "suggested_price",
                             F.col(price_col).alias("recommended_price"), F.col(naive_col).alias("naive_price"),
                             "band_lo", "band_hi", "floor", "ceiling", "department", "category",
                             ev.price_band(F.col("current_price")).alias("price_band"),
                             ev.listing_age(days).alias("listing_age"), "limited_by")
        assert objective.horizon_days is not None
        block = ev.summarise(ev.per_listing(spark, cfg, inputs, objective.horizon_days, objective))
        block.insert(0, "objective", objective.name)
        blocks.append(block)
    table_ = pd.concat(blocks, ignore_index=True)
    rows = spark.createDataFrame(table_.astype({"listings": "int64"})).select(
        F.lit(scoring_date).cast("date").alias("scoring_date"), "*", F.lit(demand_v).alias("model_version"),
        F.lit(now).alias("evaluated_at"))
    return table_, replace_date(spark, rows, table(cfg, EVAL_OUTPUT), scoring_date, docs=ev.EVAL_DOCS)


def headline(evaluation: pd.DataFrame, objective: str) -> pd.Series:
    """The overall row of one objective's block."""
    return evaluation.query("segment == 'overall' and objective == @objective").iloc[0]


def log_recommend_run(cfg: Config, stats: dict[str, float], evaluation: pd.DataFrame | None, demand_v: int,
                      price_v: int, scoring_date: Any, primary: str | None = None) -> str:
    """One MLflow run per recommendation date: stats, and the evaluation against the truth when there is one
    (``eval_*``: the ``primary`` objective's overall row; ``eval_<objective>_*``: every judged objective's)."""
    r = cfg.recommend
    with mlflow.start_run(run_name=f"recommend-{scoring_date}") as active, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({"job": "recommend", "env": cfg.env, "scoring_date": str(scoring_date),
                         "demand_model": f"{cfg.mlflow.demand_model_name} v{demand_v}",
                         "price_model": f"{cfg.mlflow.model_name} v{price_v}"})
        mlflow.log_params({f"recommend.{k}": v for k, v in r.model_dump(mode="json").items()
                           if k not in ("scoring_date", "demand_version")})
        mlflow.log_params({"score.price_points": str(list(cfg.score.price_points)),
                           "score.min_price": cfg.score.min_price, "score.max_price": cfg.score.max_price})
        mlflow.log_metrics(stats)
        if evaluation is not None:
            primary = primary or str(evaluation["objective"].iloc[0])
            numeric = evaluation.select_dtypes("number").columns
            for name in evaluation["objective"].unique():
                overall = headline(evaluation, name)
                values = {c: float(overall[c]) for c in numeric if np.isfinite(float(overall[c]))}
                mlflow.log_metrics({f"eval_{name}_{c}": v for c, v in values.items()})
                mlflow.set_tag(f"eval_best_flat_{name}", str(overall["best_flat"]))
                if name == primary:
                    mlflow.log_metrics({f"eval_{c}": v for c, v in values.items()})
                    mlflow.set_tag("eval_best_flat", str(overall["best_flat"]))
            path = Path(tmp) / "recommendation_eval.csv"
            evaluation.to_csv(path, index=False)
            mlflow.log_artifact(str(path))
            block = evaluation[evaluation["objective"] == primary]
            policies = tuple(p for p in ev.POLICIES if block[f"{p}_ratio"].notna().any())
            mlflow.log_artifact(str(optimisation_plots.policy_ratios(block, Path(tmp) / "policy_ratios.png",
                                                                     policies)), "plots")
        return str(active.info.run_id)
