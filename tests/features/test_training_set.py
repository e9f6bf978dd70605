"""The as-of join and the training set: a row never sees a feature row or a label from after its own time."""

from __future__ import annotations

from datetime import datetime, timedelta

from chispa import assert_df_equality
from pyspark.sql import functions as F

from features import listing_features, market_stats, training_set
from features.asof import as_of_join

T0 = datetime(2025, 3, 10, 10, 0, 0)


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
    got = training_set.compute(feats, stats, listings, sold_within_days=30).select(
        "listing_id", "snapshot", "mkt_bc_p50_30d", "mkt_cc_p50_30d", "sold_price", "sold_within_days")
    expected = spark.createDataFrame([(1, "listed", 11.0, 12.0, 30.0, 1), (2, "listed", 7.0, 12.0, None, 0)],
                                     "listing_id long, snapshot string, mkt_bc_p50_30d double, "
                                     "mkt_cc_p50_30d double, sold_price double, sold_within_days int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_sale_at_or_before_listing_time_is_never_a_label(spark) -> None:
    listings = _listing_rows(spark, [(1, T0, "nike", "tops", "good", 30.0, T0, "sold")])
    feats = _pad(spark.createDataFrame([(1, T0)], "listing_id long, as_of timestamp"), listing_features.SPEC)
    stats = spark.createDataFrame([], market_stats.SPEC.schema)
    assert training_set.compute(feats, stats, listings, sold_within_days=30).count() == 0
