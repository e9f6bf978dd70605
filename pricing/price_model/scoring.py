"""Batch scoring of the active catalogue with the registry's `champion`: guardrails (category floors and ceilings,
price points), review flags, and the scoring summary with drift against the previous scoring date.

The predictor is broadcast once and applied to Arrow batches with ``inplace_predict`` (measured against the
alternatives in ``bench/scoring.py``); the model is loaded by version number, never from a path a user passes in."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import mlflow
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config, ScoreConfig
from pricing.platform.rows import first_row, first_value
from pricing.platform.tables import TableRef
from pricing.price_model import monitoring

OUTPUT = catalog.ML_PRICE_SUGGESTIONS


SUPPORT_COL = "mkt_bc_n_sales_90d"


"""Market support of a listing: sales of its brand x category in the 90 days before it was listed."""


REASONS = ("wide_range", "low_support", "guardrail")


OUTPUT_DOCS = {
    "listing_id": "Active listing priced: one row per listing and scoring date.",
    "category": "Listing category (its floor and ceiling apply).",
    "suggested_price": "The suggestion: p50 within the category's floor and ceiling, rounded to a price point.",
    "p10": "Lower end of the range: 10th percentile of the likely sold price, within the guardrails.",
    "p50": "Median predicted sold price, within the guardrails.",
    "p90": "Upper end of the range: 90th percentile of the likely sold price, within the guardrails.",
    "current_price": "The listing's asking price when scored.",
    "needs_review": "True when review_reasons is not empty.",
    "review_reasons": "Why a person should look: wide_range (p90/p10 too wide), low_support (few comparable "
                      "sales), guardrail (p50 outside the category's bounds).",
    "model_name": "Registered price model that scored the row.",
    "model_version": "Its version (the alias champion when scored).",
    "feature_table_version": "Delta version of features.training_set the features were read from.",
    "scoring_date": "The date the rows were written under; rerunning a date replaces its rows.",
    "scored_at": "When the scoring run wrote the rows (UTC).",
}
"""Column -> description of ``ml.price_suggestions`` (what ``pricing score`` writes)."""


def round_to_price_points(col: Column, points: tuple[float, ...], lo: Column | float | None = None,
                          hi: Column | float | None = None) -> Column:
    """Nearest price of the form whole + ending (e.g. 12.00, 12.50, 11.99) inside ``[lo, hi]``, never below 0.

    Candidates outside the bounds are skipped, so rounding never crosses a guardrail; when no price point
    lies inside narrow bounds, the bound itself is used."""
    base = F.floor(col)
    lo_c = F.lit(0.0) if lo is None else F.greatest(F.lit(0.0), F.lit(lo) if isinstance(lo, float | int) else lo)
    hi_c = None if hi is None else (F.lit(hi) if isinstance(hi, float | int) else hi)
    # (distance, candidate) structs: array_min picks the nearest, the lower one on a tie; linear in the
    # number of candidates (a chain of CASE WHENs that reuses the running best grows exponentially).
    cands = F.array(*[F.struct(F.abs(base + k + e - col).alias("d"), (base + k + e).alias("c"))
                      for k in (-1, 0, 1) for e in points])
    inside = F.filter(cands, lambda x: (x["c"] >= lo_c) if hi_c is None else ((x["c"] >= lo_c) & (x["c"] <= hi_c)))
    best = F.array_min(inside)["c"]
    fallback = F.greatest(col, lo_c) if hi_c is None else F.least(F.greatest(col, lo_c), hi_c)
    return F.round(F.coalesce(best, fallback), 2)


def bounds(category: Column, s: ScoreConfig) -> tuple[Column, Column]:
    """(floor, ceiling) per category: ``score.category_bounds`` where set, else the global min/max."""
    lo, hi = F.lit(s.min_price), F.lit(s.max_price)
    for cat, (c_lo, c_hi) in s.category_bounds.items():
        lo = F.when(category == F.lit(cat), F.lit(c_lo)).otherwise(lo)
        hi = F.when(category == F.lit(cat), F.lit(c_hi)).otherwise(hi)
    return lo, hi


def apply_guardrails(preds: DataFrame, s: ScoreConfig) -> DataFrame:
    """Clamp to the category's bounds, round, and flag for review.

    ``preds``: listing_id, category, p10, p50, p90 and the support column.  Adds ``suggested_price``,
    clamped ``p10/p50/p90``, ``needs_review`` and ``review_reasons``."""
    lo, hi = bounds(F.col("category"), s)

    def clamp(c: str) -> Column:
        return F.least(F.greatest(F.col(c), lo), hi)

    reasons = F.array_compact(F.array(
        F.when(F.col("p90") > F.col("p10") * s.review_max_range_ratio, F.lit("wide_range")),
        F.when(F.coalesce(F.col(SUPPORT_COL), F.lit(0)) < s.review_min_support, F.lit("low_support")),
        F.when((F.col("p50") < lo) | (F.col("p50") > hi), F.lit("guardrail")),
    ))
    return (preds.withColumn("review_reasons", reasons)
            .withColumn("needs_review", F.size("review_reasons") > 0)
            .withColumn("suggested_price", round_to_price_points(clamp("p50"), s.price_points, lo, hi))
            .withColumn("p10", F.round(clamp("p10"), 2))
            .withColumn("p50", F.round(clamp("p50"), 2))
            .withColumn("p90", F.round(clamp("p90"), 2)))


def champion_version(cfg: Config) -> int:
    """The version `champion` points at, checked against the one the workflow handed over."""
    return tracking.checked_champion(cfg.mlflow.model_name, cfg.score.champion_version, what="model",
                                     missing="run `pricing train` and `pricing promote`",
                                     handed_over="this workflow promoted", rerun="re-run promote and score")


def previous_scoring_date(spark: SparkSession, ref: Any, scoring_date: date) -> date | None:
    if not delta_io.exists(spark, ref):
        return None
    return first_value(delta_io.read(spark, ref).where(F.col("scoring_date") < F.lit(scoring_date)).agg(
        F.max("scoring_date")))


def scoring_stats(df: DataFrame) -> dict[str, float]:
    """Row count, review shares and the suggested-price distribution of one scoring."""
    row = first_row(df.agg(
        F.count("*").alias("rows"), F.sum(F.col("needs_review").cast("int")).alias("needs_review"),
        *[F.sum(F.array_contains("review_reasons", r).cast("int")).alias(f"review_{r}") for r in REASONS],
        F.avg("suggested_price").alias("suggested_mean"),
        F.avg(F.log(F.col("p90") / F.col("p10"))).alias("mean_log_range"),
    )).asDict()
    rows = max(row["rows"], 1)
    out = {k: float(v or 0.0) for k, v in row.items()}
    out["needs_review_share"] = out["needs_review"] / rows
    for r in REASONS:
        out[f"review_{r}_share"] = out[f"review_{r}"] / rows
    if row["rows"]:
        for p, v in zip((10, 50, 90), monitoring.quantiles(df, "suggested_price", (0.1, 0.5, 0.9)), strict=True):
            out[f"suggested_p{p}"] = v
    return out


def log_scoring_summary(cfg: Config, written: DataFrame, stats: dict[str, float], version: int, scoring_date: date,
                        previous: date | None, feat_version: int, out_ref: TableRef, out_version: int) -> str:
    """One MLflow run per scoring: what it used (model ``version``, the feature table at ``feat_version``) and
    what it wrote (``out_ref`` at Delta ``out_version``) as params and tags; metrics, a histogram of suggestions
    (against the previous scoring)."""
    from pricing.price_model import plots

    name = cfg.mlflow.model_name
    with mlflow.start_run(run_name=f"score-{scoring_date}") as active, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({"job": "score", "env": cfg.env, "model_name": name,
                         "model_version": str(version), "scoring_date": str(scoring_date),
                         "previous_scoring_date": str(previous) if previous else "none",
                         "output_table_version": str(out_version)})
        mlflow.log_params({"model_uri": f"models:/{name}/{version}", "model_version": version,
                           "output_table": str(out_ref), "output_table_version": out_version,
                           "feature_table_version": feat_version, "review_max_range_ratio":
                           cfg.score.review_max_range_ratio, "review_min_support": cfg.score.review_min_support})
        mlflow.log_metrics(stats)
        sample = written.select("suggested_price").sample(fraction=min(1.0, 200_000 / max(stats["rows"], 1)),
                                                          seed=1).toPandas()["suggested_price"].to_numpy()
        png = plots.distribution(sample, Path(tmp) / "suggested_price.png",
                                 f"Suggested prices {scoring_date} ({int(stats['rows']):,} listings, "
                                 f"{stats['needs_review_share']:.1%} flagged for review)")
        mlflow.log_artifact(str(png), "plots")
        mlflow.log_dict(stats, "scoring_summary.json")
        return str(active.info.run_id)
