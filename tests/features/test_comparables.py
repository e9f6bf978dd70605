"""comparable_sales: sold prices of a listing's matches strictly before its listing time, never later ones."""

from __future__ import annotations

from datetime import datetime, timedelta

from chispa import assert_df_equality
from pyspark.sql import functions as F

from features import comparables, listing_features, market_stats, training_set

T = datetime(2025, 3, 10, 12, 0, 0)
SEC, DAY = timedelta(seconds=1), timedelta(days=1)
LISTINGS = "listing_id long, created_at timestamp"
SALES = "listing_id long, sold_at timestamp, sold_price double"
MATCHES = "listing_id long, matched_listing_id long, similarity double, same_product boolean"
OUT = ("listing_id long, as_of timestamp, cmp_product_listed long, cmp_product_sold long, "
       "cmp_product_median_price double, cmp_near_sold long, cmp_near_median_price double, cmp_near_similarity double")

# Listing 1 is listed at T.  Its same-product matches 11..14 were listed ten days earlier; 11 sold one second
# before T, 12 exactly at T, 13 one second after; 14 is unsold.  15 is a comparable (another colourway) that
# sold a day before T; 16 is the same product listed (and sold) after T.  2 was listed at T too, with no matches.
_listings = [(1, T), (2, T), *[(i, T - 10 * DAY) for i in range(11, 16)], (16, T + 3600 * SEC)]
_sales = [(11, T - SEC, 10.0), (12, T, 99.0), (13, T + SEC, 77.0), (15, T - DAY, 30.0), (16, T + DAY, 55.0)]
_matches = [(1, m, 1.0, True) for m in (11, 12, 13, 14, 16)] + [(1, 15, 0.5, False)]


def _compute(spark, sales=_sales, k=10, since=None):
    return comparables.compute(spark.createDataFrame(_listings, LISTINGS), spark.createDataFrame(sales, SALES),
                               spark.createDataFrame(_matches, MATCHES), k, since)


def _row(spark, rows):
    return spark.createDataFrame(rows, OUT)


def test_only_sales_strictly_before_the_listing_time_count(spark) -> None:
    got = _compute(spark).where(F.col("listing_id").isin(1, 2))
    # Same product: 11, 12, 13, 14 were listed before T (16 after); only 11 sold before T (12 at T, 13 after).
    # Nearest comparables sold before T: 11 (same product) and 15 (similarity 0.5).
    expected = _row(spark, [(1, T, 4, 1, 10.0, 2, 20.0, 0.75), (2, T, 0, 0, None, 0, None, None)])
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_matched_sale_one_second_after_t_changes_nothing_at_t(spark) -> None:
    before = _compute(spark).where("listing_id = 1")
    after = _compute(spark, [*_sales, (14, T + SEC, 1000.0)]).where("listing_id = 1")
    assert_df_equality(before, after, ignore_nullable=True)
    # ... whereas the same sale one second before T is counted.
    earlier = _compute(spark, [*_sales, (14, T - SEC, 1000.0)]).where("listing_id = 1")
    assert earlier.first()["cmp_product_sold"] == 2 and earlier.first()["cmp_product_median_price"] == 505.0


def test_a_sale_exactly_at_t_is_excluded(spark) -> None:
    only_at_t = [s for s in _sales if s[0] != 11]  # 12 sold exactly at T: nothing same-product sold before
    row = _compute(spark, only_at_t).where("listing_id = 1").first()
    assert (row["cmp_product_sold"], row["cmp_product_median_price"]) == (0, None)


def test_nearest_comparables_rank_the_same_product_first(spark) -> None:
    row = _compute(spark, k=1).where("listing_id = 1").first()
    assert (row["cmp_near_sold"], row["cmp_near_median_price"], row["cmp_near_similarity"]) == (1, 10.0, 1.0)


def test_an_incremental_slice_recomputes_only_later_listings(spark) -> None:
    got = _compute(spark, since=F.lit(T).cast("timestamp")).select("listing_id")
    assert sorted(r.listing_id for r in got.collect()) == [1, 2, 16]


def _pad(df, spec):
    for f in spec.schema.fields:
        if f.name not in df.columns:
            df = df.withColumn(f.name, F.lit(None).cast(f.dataType))
    return df


def test_the_training_set_takes_the_row_stamped_at_listing_time(spark) -> None:
    listings = spark.createDataFrame([(1, T, "nike", "tops", "good", 30.0, T + 3 * DAY, "sold")],
                                     "listing_id long, created_at timestamp, brand string, category string, "
                                     "condition string, sold_price double, sold_at timestamp, status string")
    feats = _pad(spark.createDataFrame([(1, T, "listed")], "listing_id long, as_of timestamp, snapshot string"),
                 listing_features.SPEC)
    stats = spark.createDataFrame([], market_stats.SPEC.schema)
    cmp = _compute(spark)
    got = training_set.compute(feats, stats, listings, 30, shrinkage_k=20.0, brand_window_days=365,
                               comparables=cmp).select(
        "listing_id", *comparables.MODEL_FEATURES)
    expected = _row(spark, [(1, T, 4, 1, 10.0, 2, 20.0, 0.75)]).drop("as_of")
    assert_df_equality(got, expected, ignore_nullable=True)
    without = training_set.compute(feats, stats, listings, 30, shrinkage_k=20.0, brand_window_days=365).select(
       *comparables.MODEL_FEATURES).first()
    assert all(v is None for v in without)
    assert set(comparables.MODEL_FEATURES) <= set(training_set.MODEL_FEATURES)
    assert not set(comparables.MODEL_FEATURES) & set(training_set.model_features(False))
