"""Spark side of experiments: windows, per-seller totals and table schemas (DataFrame in, DataFrame out).

The heavy lifting over listings stays in Spark; what reaches the driver is one row per seller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.experiment.simulate import CONTROL, EXPECTED_COLUMNS, TREATMENT


@dataclass(frozen=True)
class Windows:
    """An experiment's listing window and its sellers' pre-period, as half-open ``[start, end)`` instants.

    The pre-period ends ``horizon_days`` before the start, so every pre-period listing's outcome (sold
    within H days or not) was known before the experiment began: no post-start data reaches CUPED.
    """

    start: datetime
    end: datetime
    pre_start: datetime
    pre_end: datetime

    @classmethod
    def of(cls, start: date, days: int, horizon_days: int, pre_period_days: int) -> Windows:
        s = datetime(start.year, start.month, start.day)
        pre_end = s - timedelta(days=horizon_days)
        return cls(s, s + timedelta(days=days), pre_end - timedelta(days=pre_period_days), pre_end)


def created_in(start: datetime, end: datetime, col: str = "created_at") -> F.Column:
    return (F.col(col) >= F.lit(start)) & (F.col(col) < F.lit(end))


def seller_window_totals(listings: DataFrame, start: datetime, end: datetime, horizon_days: int,
                         prefix: str = "", squares: bool = False) -> DataFrame:
    """Per seller, over its listings created in ``[start, end)`` (columns of ``silver.listings``), the
    realised outcomes ``horizon_days`` after listing: ``<prefix>listings, sold, gmv, days`` (days on market
    capped at the horizon).  ``squares`` adds ``sold_sq, gmv_sq, days_sq`` (listing-level sums of squares, for
    the design effect)."""
    days_to_sale = (F.col("sold_at").cast("double") - F.col("created_at").cast("double")) / 86400.0
    sold = F.col("sold_at").isNotNull() & (days_to_sale < horizon_days)
    per_listing = listings.where(created_in(start, end)).select(
        "seller_id",
        sold.cast("long").alias("sold"),
        F.when(sold, F.col("sold_price")).otherwise(0.0).alias("gmv"),
        F.when(sold, days_to_sale).otherwise(float(horizon_days)).alias("days"),
    )
    aggs = [F.count(F.lit(1)).alias(f"{prefix}listings"), F.sum("sold").alias(f"{prefix}sold"),
            F.sum("gmv").alias(f"{prefix}gmv"), F.sum("days").alias(f"{prefix}days")]
    if squares:
        aggs += [F.sum("sold").alias(f"{prefix}sold_sq"),  # 0/1 per listing: its square is itself
                 F.sum(F.col("gmv") * F.col("gmv")).alias(f"{prefix}gmv_sq"),
                 F.sum(F.col("days") * F.col("days")).alias(f"{prefix}days_sq")]
    return per_listing.groupBy("seller_id").agg(*aggs)


def seller_outcome_totals(outcomes: DataFrame) -> DataFrame:
    """Per seller of an experiment's outcomes: ``seller_id, treated, listings, sold, gmv, days, n_arms``
    (``n_arms`` > 1 means the seller was in both arms: a broken randomisation the job refuses)."""
    return outcomes.groupBy("seller_id").agg(
        F.countDistinct("arm").alias("n_arms"),
        F.max(F.col("arm") == TREATMENT).alias("treated"),
        F.count(F.lit(1)).alias("listings"),
        F.sum(F.col("sold").cast("long")).alias("sold"),
        F.sum("gmv").alias("gmv"),
        F.sum("days_on_market").alias("days"),
    )


def with_pre(sellers: DataFrame, pre: DataFrame) -> DataFrame:
    """Left join of pre-period totals; sellers without a pre-period get zeros."""
    cols = [c for c in pre.columns if c != "seller_id"]
    return sellers.join(pre, "seller_id", "left").fillna(0, subset=cols)


OUTCOMES_SCHEMA = T.StructType([
    T.StructField("experiment_id", T.StringType(), False),
    T.StructField("listing_id", T.LongType(), False),
    T.StructField("seller_id", T.LongType(), False),
    T.StructField("arm", T.StringType(), False),
    T.StructField("shown_price", T.DoubleType(), True),
    T.StructField("adopted", T.BooleanType(), False),
    T.StructField("price", T.DoubleType(), False),
    T.StructField("sold", T.BooleanType(), False),
    T.StructField("sale_day", T.DoubleType(), True),
    T.StructField("days_on_market", T.DoubleType(), False),
    T.StructField("sold_price", T.DoubleType(), True),
    T.StructField("gmv", T.DoubleType(), False),
])
"""``ml.experiment_outcomes``: one row per listing in an experiment (``shown_price`` null: no suggestion)."""

SIMULATED_SCHEMA = T.StructType([*OUTCOMES_SCHEMA.fields,
                                 *[T.StructField(c, T.DoubleType(), False) for c in EXPECTED_COLUMNS]])
"""What the simulation step emits: the outcomes plus each listing's expectations under both arms."""

RESULTS_SCHEMA = T.StructType([
    T.StructField("experiment_id", T.StringType(), False),
    T.StructField("metric", T.StringType(), False),
    T.StructField("analysed_at", T.TimestampType(), False),
    T.StructField("mlflow_run_id", T.StringType(), True),
    T.StructField("control_policy", T.StringType(), False),
    T.StructField("treatment_policy", T.StringType(), False),
    *[T.StructField(c, T.LongType(), False) for c in (
        "n_sellers_control", "n_sellers_treatment", "n_listings_control", "n_listings_treatment")],
    *[T.StructField(c, T.DoubleType(), True) for c in (
        "control_mean", "treatment_mean", "effect", "se", "ci_low", "ci_high", "p_value", "p_adjusted")],
    T.StructField("correction", T.StringType(), False),
    T.StructField("significant", T.BooleanType(), False),
    *[T.StructField(c, T.DoubleType(), True) for c in (
        "relative_lift", "lift_ci_low", "lift_ci_high", "effect_raw", "se_raw", "ci_low_raw", "ci_high_raw",
        "p_value_raw", "cuped_theta", "variance_reduction", "ci_width_reduction", "srm_p_value")],
    T.StructField("srm_ok", T.BooleanType(), False),
    T.StructField("balance_ok", T.BooleanType(), False),
    T.StructField("true_effect", T.DoubleType(), True),
    T.StructField("ci_covers_truth", T.BooleanType(), True),
])
"""``ml.experiment_results``: one row per experiment and metric (effects CUPED-adjusted; ``*_raw`` without)."""

EXPERIMENTS_SCHEMA = T.StructType([
    T.StructField("experiment_id", T.StringType(), False),
    T.StructField("control_policy", T.StringType(), False),
    T.StructField("treatment_policy", T.StringType(), False),
    T.StructField("price_multiplier", T.DoubleType(), True),
    T.StructField("champion_version", T.LongType(), True),
    T.StructField("challenger_version", T.LongType(), True),
    T.StructField("treatment_share", T.DoubleType(), False),
    T.StructField("adoption_rate", T.DoubleType(), False),
    T.StructField("horizon_days", T.IntegerType(), False),
    T.StructField("start_date", T.DateType(), False),
    T.StructField("days", T.IntegerType(), False),
    T.StructField("pre_period_days", T.IntegerType(), False),
    T.StructField("seed", T.LongType(), False),
    T.StructField("lost_treatment_share", T.DoubleType(), False),
    T.StructField("simulated_at", T.TimestampType(), False),
])
"""``ml.experiments``: one row per experiment, its design (what ``analyse`` reads back)."""

TRUTH_SCHEMA = T.StructType([
    T.StructField("experiment_id", T.StringType(), False),
    T.StructField("metric", T.StringType(), False),
    T.StructField("control", T.DoubleType(), True),
    T.StructField("treatment", T.DoubleType(), True),
    T.StructField("effect", T.DoubleType(), True),
    T.StructField("relative_lift", T.DoubleType(), True),
])
"""``truth.experiment_effects``: the simulator's expected effect per metric (evaluation only)."""

ARMS = (CONTROL, TREATMENT)
