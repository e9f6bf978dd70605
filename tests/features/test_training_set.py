"""The as-of join and the training set: a row never sees a feature row or a label from after its own time."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F

from features import listing_features, market_stats, training_set
from features.asof import as_of_join

T0 = datetime(2025, 3, 10, 10, 0, 0)
BRAND = {"shrinkage_k": 20.0, "brand_window_days": 365}
"""The brand premium's settings where a test is not about it."""


def test_as_of_join_never_picks_a_later_row(spark) -> None:
    left = spark.createDataFrame([(1, "a", T0), (2, "b", T0)], "id long, k string, t timestamp")
    right = spark.createDataFrame(
        [("a", T0 - timedelta(hours=1), 1.0), ("a", T0, 2.0), ("a", T0 + timedelta(seconds=1), 3.0),
         ("b", T0 + timedelta(seconds=1), 9.0)],
        "k string, rt timestamp, v double")
    expected = spark.createDataFrame([(1, "a", T0, T0, 2.0), (2, "b", T0, None, None)],
                                     "id long, k string, t timestamp, r_rt timestamp, r_v double")
    for lookback in (None, 1):
        got = as_of_join(left, right, ["k"], "t", "rt", left_keys=["id"], lookback_days=lookback, prefix="r_")
        assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_as_of_join_with_lookback_reaches_the_previous_day(spark) -> None:
    left = spark.createDataFrame([(1, "a", T0)], "id long, k string, t timestamp")
    right = spark.createDataFrame([("a", T0 - timedelta(hours=23), 5.0), ("a", T0 - timedelta(days=3), 1.0)],
                                  "k string, rt timestamp, v double")
    got = as_of_join(left, right, ["k"], "t", "rt", left_keys=["id"], lookback_days=1).select("v")
    assert [r.v for r in got.collect()] == [5.0]


def _pad(df, spec):
    """Adds the spec's other columns as nulls: the test states only the columns it is about."""
    for f in spec.schema.fields:
        if f.name not in df.columns:
            df = df.withColumn(f.name, F.lit(None).cast(f.dataType))
    return df


def _listing_rows(spark, rows):
    return spark.createDataFrame(rows, "listing_id long, created_at timestamp, brand string, category string, "
                                       "condition string, sold_price double, sold_at timestamp, status string")


def test_training_rows_take_features_as_of_listing_time(spark, cfg) -> None:
    listings = _listing_rows(spark, [(1, T0, "nike", "tops", "good", 30.0, T0 + timedelta(days=3), "sold"),
                                     (2, T0, None, "tops", "good", None, None, "active")])
    # listing_features: the listed row at T0 and a later reprice row that must not be picked
    feats = _pad(spark.createDataFrame(
        [(1, T0, "listed"), (1, T0 + timedelta(days=1), "repriced"), (2, T0, "listed")],
        "listing_id long, as_of timestamp, snapshot string"), listing_features.SPEC)
    day = T0.replace(hour=0)
    stats_rows = [
        ("brand_category", "nike", "tops", None, day, 11.0),
        ("brand_category", "nike", "tops", None, day + timedelta(days=1), 99.0),  # next day's stamp: later
        ("brand_category", market_stats.NO_BRAND, "tops", None, day, 7.0),
        ("category_condition", None, "tops", "good", day, 12.0),
    ]
    stats = _pad(spark.createDataFrame(stats_rows, "level string, brand string, category string, "
                                                   "condition string, as_of timestamp, p50_30d double"),
                 market_stats.SPEC)
    got = training_set.compute(feats, stats, listings, sold_within_days=30, **BRAND).select(
        "listing_id", "snapshot", "mkt_bc_p50_30d", "mkt_cc_p50_30d", "sold_price", "sold_within_days")
    expected = spark.createDataFrame([(1, "listed", 11.0, 12.0, 30.0, 1), (2, "listed", 7.0, 12.0, None, 0)],
                                     "listing_id long, snapshot string, mkt_bc_p50_30d double, "
                                     "mkt_cc_p50_30d double, sold_price double, sold_within_days int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_sale_at_or_before_listing_time_is_never_a_label(spark) -> None:
    listings = _listing_rows(spark, [(1, T0, "nike", "tops", "good", 30.0, T0, "sold")])
    feats = _pad(spark.createDataFrame([(1, T0)], "listing_id long, as_of timestamp"), listing_features.SPEC)
    stats = spark.createDataFrame([], market_stats.SPEC.schema)
    assert training_set.compute(feats, stats, listings, sold_within_days=30, **BRAND).count() == 0


def _brand_world(spark):
    """Listings (brand, created, sold price, sold at) around T0, and one category x condition median of 9.0 on
    each listing day, so a sale at 99.0 has the log ratio ln(100 / 10) = ln 10, and one at 9.0 the ratio 0."""
    d = timedelta(days=1)
    rows = [
        (1, "nike", T0 - 5 * d, 99.0, T0 - 2 * d),   # counts for listing 5: ratio ln 10
        (2, "nike", T0 - 5 * d, 999.0, T0),          # sold at listing 5's time itself: never counts for it
        (3, "nike", T0 - 30 * d, 999.0, T0 - 20 * d),  # before the 10-day window
        (4, "adidas", T0 - 5 * d, 999.0, T0 - d),    # another brand
        (5, "nike", T0, None, None),
        (6, None, T0, None, None),
        (7, None, T0 - 5 * d, 99.0, T0 - d),         # unbranded items are one brand of their own
        (8, "puma", T0, None, None),                 # no sales yet: premium 0
        (9, "nike", T0 - 5 * d, 9.0, T0 - d),        # counts for listing 5: ratio 0
    ]
    listings = spark.createDataFrame(
        [(i, t, b, "tops", "good", p, s, "active" if s is None else "sold") for i, b, t, p, s in rows],
        "listing_id long, created_at timestamp, brand string, category string, condition string, "
        "sold_price double, sold_at timestamp, status string")
    days = sorted({t.replace(hour=0) for _, _, t, _, _ in rows})
    stats = _pad(spark.createDataFrame([("category_condition", "tops", "good", day, 9.0) for day in days],
                                       "level string, category string, condition string, as_of timestamp, "
                                       "p50_90d double"), market_stats.SPEC)
    return listings, stats


def test_the_brand_premium_reads_only_the_brands_earlier_sales_in_its_window(spark) -> None:
    listings, stats = _brand_world(spark)
    queries = listings.select("listing_id", F.col("created_at").alias("as_of"),
                              F.coalesce("brand", F.lit(market_stats.NO_BRAND)).alias("_brand"))
    got = training_set.brand_premium(queries, listings, stats, shrinkage_k=2.0, window_days=10)
    ln10 = math.log(10.0)
    expected = spark.createDataFrame(
        [(1, 0.0, 0), (2, 0.0, 0), (3, 0.0, 0), (4, 0.0, 0), (5, (ln10 + 0.0) / (2 + 2), 2), (6, ln10 / (1 + 2), 1),
         (7, 0.0, 0), (8, 0.0, 0), (9, 0.0, 0)],
        "listing_id long, mkt_brand_premium double, mkt_brand_sales long")
    # running sums differenced: equal to the exact figures up to rounding
    assert_approx_df_equality(got, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)
    # the training set carries the same values, for every listing
    feats = _pad(listings.select("listing_id", F.col("created_at").alias("as_of"), F.lit("listed").alias("snapshot")),
                 listing_features.SPEC)
    rows = training_set.compute(feats, stats, listings, sold_within_days=30, shrinkage_k=2.0, brand_window_days=10)
    assert_approx_df_equality(rows.select("listing_id", *training_set.BRAND_FEATURES), expected, 1e-12,
                              ignore_row_order=True, ignore_nullable=True)
    assert set(training_set.BRAND_FEATURES) <= set(training_set.MODEL_FEATURES)


def test_the_text_arrays_the_model_jobs_leave_out_are_the_tables_arrays_and_no_model_input() -> None:
    """The train and demand jobs drop ``TEXT_COLUMNS`` before they cache rows or send them to Python: the names
    must be the training table's array columns (a rename would make the drop a silent no-op), and no model input."""
    from pyspark.sql import types as T

    arrays = [f.name for f in training_set.SPEC.schema.fields if isinstance(f.dataType, T.ArrayType)]
    assert arrays == list(listing_features.TEXT_COLUMNS)
    assert set(listing_features.TEXT_COLUMNS).isdisjoint(training_set.MODEL_FEATURES)
