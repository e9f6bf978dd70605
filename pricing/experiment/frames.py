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

OUTCOMES_DOCS = {
    "experiment_id": "Experiment (experiment.experiment_id); a rerun of simulate replaces its rows.",
    "listing_id": "Listing created in the experiment's window: one row per experiment and listing.",
    "seller_id": "Seller: the unit of randomisation (all of a seller's listings share its arm).",
    "arm": "control or treatment, drawn per seller by a hash of (seed, experiment, seller).",
    "shown_price": "Price (GBP) the arm's policy suggested to the seller; null when it suggested none (own_price "
                   "policy, or no model price).",
    "adopted": "Whether the seller adopted the suggestion (with probability adoption_rate); else the own price "
               "was kept.",
    "price": "Asking price (GBP) the listing was listed at: shown_price if adopted, else the seller's own price.",
    "sold": "Whether the listing sold within horizon_days of listing.",
    "sale_day": "Days from listing to sale (fractional); null when not sold within horizon_days.",
    "days_on_market": "Days on market, capped at horizon_days (an unsold listing counts horizon_days).",
    "sold_price": "Price (GBP) it sold for: price after the day-14/28 drops before the sale, less an accepted "
                  "offer; null if not sold.",
    "gmv": "Gross merchandise value (GBP): sold_price, or 0 when not sold.",
}
"""Column -> description of ``ml.experiment_outcomes`` (``OUTCOMES_SCHEMA``)."""

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

RESULTS_DOCS = {
    "experiment_id": "Experiment analysed; a rerun of analyse replaces its rows.",
    "metric": "sell_through, gmv_per_listing, days_on_market (capped at horizon_days) or price_accepted (GMV per "
              "sale): one row per experiment and metric.",
    "analysed_at": "When analyse wrote the rows (UTC).",
    "mlflow_run_id": "MLflow run holding the read-out report.",
    "control_policy": "Policy shown to control sellers (as in ml.experiments).",
    "treatment_policy": "Policy shown to treatment sellers (as in ml.experiments).",
    "n_sellers_control": "Sellers in the control arm (the unit of analysis).",
    "n_sellers_treatment": "Sellers in the treatment arm.",
    "n_listings_control": "Listings of the control sellers.",
    "n_listings_treatment": "Listings of the treatment sellers.",
    "control_mean": "Control arm's metric (ratio of totals over its sellers), CUPED-adjusted; in the metric's unit "
                    "(share, GBP or days).",
    "treatment_mean": "Treatment arm's metric, CUPED-adjusted.",
    "effect": "treatment_mean - control_mean: the CUPED-adjusted effect, in the metric's unit.",
    "se": "Standard error of effect (delta method, clustered by seller, CUPED-adjusted).",
    "ci_low": "Lower end of effect's normal confidence interval at level 1 - experiment.alpha.",
    "ci_high": "Upper end of effect's confidence interval.",
    "p_value": "Two-sided p-value of effect, before the multiple-metric correction.",
    "p_adjusted": "p_value adjusted over the experiment's metrics by correction.",
    "correction": "Multiple-metric correction: holm (family-wise error rate) or bh (Benjamini-Hochberg, false "
                  "discovery rate).",
    "significant": "p_adjusted < experiment.alpha.",
    "relative_lift": "treatment_mean / control_mean - 1 (CUPED-adjusted); null when control_mean is 0.",
    "lift_ci_low": "Lower end of relative_lift's delta-method confidence interval.",
    "lift_ci_high": "Upper end of relative_lift's confidence interval.",
    "effect_raw": "Effect without CUPED (plain difference of the arms' ratios).",
    "se_raw": "Standard error of effect_raw (delta method, clustered by seller).",
    "ci_low_raw": "Lower end of effect_raw's confidence interval.",
    "ci_high_raw": "Upper end of effect_raw's confidence interval.",
    "p_value_raw": "Two-sided p-value of effect_raw, uncorrected.",
    "cuped_theta": "CUPED slope on the covariate (the same metric over each seller's pre-period listings); 0: no "
                   "adjustment.",
    "variance_reduction": "1 - Var(effect) / Var(effect_raw): the variance CUPED removed.",
    "ci_width_reduction": "1 - width(CUPED interval) / width(raw interval).",
    "srm_p_value": "Sample-ratio-mismatch chi-square p-value of the seller split against treatment_share (same on "
                   "every metric's row).",
    "srm_ok": "srm_p_value >= experiment.srm_alpha: the seller split matches the design.",
    "balance_ok": "Pre-period covariates balanced between the arms (every Holm-adjusted p >= "
                  "experiment.balance_alpha).",
    "true_effect": "Simulator's true effect (truth.experiment_effects); null when none is recorded.",
    "ci_covers_truth": "Whether [ci_low, ci_high] contains true_effect; null without a true effect.",
}
"""Column -> description of ``ml.experiment_results`` (``RESULTS_SCHEMA``)."""

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

EXPERIMENTS_DOCS = {
    "experiment_id": "Experiment (experiment.experiment_id): one row each; a rerun of simulate replaces it.",
    "control_policy": "What control sellers are shown: own_price (no suggestion), champion or challenger (that "
                      "model's p50) or multiplier.",
    "treatment_policy": "What treatment sellers are shown (same choices); equal to control_policy in an A/A test.",
    "price_multiplier": "Factor the multiplier policy applies to the seller's own price; null when neither arm "
                        "uses it.",
    "champion_version": "Registry version of the champion model shown; null when neither arm shows it.",
    "challenger_version": "Registry version of the challenger model shown; null when neither arm shows it.",
    "treatment_share": "Designed share of sellers assigned to treatment.",
    "adoption_rate": "Probability that a seller adopts a shown suggestion.",
    "horizon_days": "Outcome horizon H in days: sold within H days, days on market capped at H.",
    "start_date": "First day of the listing window.",
    "days": "Length of the listing window in days (listings created from start_date on).",
    "pre_period_days": "Length in days of the sellers' pre-period (CUPED covariates), which ends horizon_days before "
                       "start_date.",
    "seed": "Seed of the hashed assignment, adoption and sale draws.",
    "lost_treatment_share": "Share of treatment sellers dropped from the outcomes (an injected fault to test the SRM "
                            "check); 0 normally.",
    "simulated_at": "When simulate wrote the experiment (UTC).",
}
"""Column -> description of ``ml.experiments`` (``EXPERIMENTS_SCHEMA``)."""

TRUTH_SCHEMA = T.StructType([
    T.StructField("experiment_id", T.StringType(), False),
    T.StructField("metric", T.StringType(), False),
    T.StructField("control", T.DoubleType(), True),
    T.StructField("treatment", T.DoubleType(), True),
    T.StructField("effect", T.DoubleType(), True),
    T.StructField("relative_lift", T.DoubleType(), True),
])
"""``truth.experiment_effects``: the simulator's expected effect per metric (evaluation only)."""

TRUTH_DOCS = {
    "experiment_id": "Simulated experiment; a rerun of simulate replaces its rows.",
    "metric": "sell_through, gmv_per_listing, days_on_market or price_accepted: one row per experiment and metric.",
    "control": "Expected metric with every experiment listing under the control policy (over the adoption and "
               "sale draws, from the true demand).",
    "treatment": "Expected metric with every experiment listing under the treatment policy.",
    "effect": "treatment - control: the true effect the analysis estimates.",
    "relative_lift": "treatment / control - 1 (NaN when control is 0).",
}
"""Column -> description of ``truth.experiment_effects`` (``TRUTH_SCHEMA``)."""

ARMS = (CONTROL, TREATMENT)
