"""Scoring's pure parts on hand-written rows: price-point rounding, guardrails, review flags, drift."""

from __future__ import annotations

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from pricing.platform.config import ScoreConfig
from pricing.price_model.monitoring import drift, psi
from pricing.price_model.scoring import apply_guardrails, round_to_price_points


def test_suggestions_round_to_the_price_points_sellers_use(spark) -> None:
    df = spark.createDataFrame([(1, 12.2), (2, 12.4), (3, 12.8), (4, 13.02), (5, 0.1)], "id int, p double")
    got = df.select("id", round_to_price_points(F.col("p"), (0.0, 0.5, 0.99)).alias("r"))
    expected = spark.createDataFrame([(1, 12.0), (2, 12.5), (3, 12.99), (4, 13.0), (5, 0.0)], "id int, r double")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_rounding_never_crosses_a_bound(spark) -> None:
    df = spark.createDataFrame([(1, 5.0), (2, 19.999), (3, 7.3)], "id int, p double")
    # nearest points: 5.00 -> 5.0 (on the floor), 19.999 -> 19.99 (not 20.0 above the ceiling), 7.3 -> 7.3 (no point
    # inside [7.2, 7.4])
    got = df.select("id", F.when(F.col("id") == 3, round_to_price_points(F.col("p"), (0.0, 0.5, 0.99), 7.2, 7.4))
                    .otherwise(round_to_price_points(F.col("p"), (0.0, 0.5, 0.99), 5.0, 19.995)).alias("r"))
    expected = spark.createDataFrame([(1, 5.0), (2, 19.99), (3, 7.3)], "id int, r double")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_guardrails_clamp_per_category_and_flag_for_review(spark) -> None:
    s = ScoreConfig(min_price=2.0, max_price=500.0, category_bounds={"bags": (20.0, 300.0)},
                    review_max_range_ratio=4.0, review_min_support=5)
    preds = spark.createDataFrame([
        (1, "tops", 8.0, 12.2, 20.0, 40),      # fine
        (2, "bags", 5.0, 10.0, 15.0, 40),      # below the bags floor: clamped to 20
        (3, "tops", 2.0, 12.0, 30.0, 40),      # p90 / p10 = 15 > 4: wide range
        (4, "tops", 10.0, 14.0, 18.0, 2),      # brand x category sold 2 < 5: low support
        (5, "tops", 0.5, 1.0, 1.5, None),      # below the global floor, no support at all
    ], "listing_id long, category string, p10 double, p50 double, p90 double, mkt_bc_n_sales_90d long")
    got = apply_guardrails(preds, s).select("listing_id", "suggested_price", "p10", "p50", "p90", "needs_review",
                                            "review_reasons")
    expected = spark.createDataFrame([
        (1, 12.0, 8.0, 12.2, 20.0, False, []),
        (2, 20.0, 20.0, 20.0, 20.0, True, ["guardrail"]),
        (3, 12.0, 2.0, 12.0, 30.0, True, ["wide_range"]),
        (4, 14.0, 10.0, 14.0, 18.0, True, ["low_support"]),
        (5, 2.0, 2.0, 2.0, 2.0, True, ["low_support", "guardrail"]),
    ], "listing_id long, suggested_price double, p10 double, p50 double, p90 double, needs_review boolean, "
       "review_reasons array<string>")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_psi_is_zero_for_equal_histograms_and_grows_with_shift() -> None:
    assert psi(np.array([10, 20, 30]), np.array([1, 2, 3])) == pytest.approx(0.0)
    small = psi(np.array([25, 25, 25, 25]), np.array([22, 26, 26, 26]))
    large = psi(np.array([25, 25, 25, 25]), np.array([5, 15, 30, 50]))
    # by hand: sum (a - e) ln(a / e) over shares
    a = np.array([0.05, 0.15, 0.30, 0.50])
    assert large == pytest.approx(float(np.sum((a - 0.25) * np.log(a / 0.25))))
    assert 0 < small < 0.1 < 0.25 < large


def test_drift_against_the_previous_scoring(spark) -> None:
    rng = np.random.default_rng(0)
    prev = spark.createDataFrame([(float(x),) for x in rng.normal(3.0, 0.5, 2000)], "x double")
    same = spark.createDataFrame([(float(x),) for x in rng.normal(3.0, 0.5, 2000)], "x double")
    moved = spark.createDataFrame([(float(x),) for x in rng.normal(3.4, 0.5, 2000)], "x double")
    assert drift(prev, same, "x")["psi"] < 0.05
    shifted = drift(prev, moved, "x")
    assert shifted["psi"] > 0.25 and shifted["mean_shift"] == pytest.approx(0.4, abs=0.05)
