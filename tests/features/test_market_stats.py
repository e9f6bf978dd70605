"""market_stats on hand-written sales: exact window edges, leakage, quantiles and shrinkage."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from features import market_stats

LISTINGS = "listing_id long, brand string, category string, condition string, created_at timestamp"
SALES = "listing_id long, sold_at timestamp, sold_price double"
D = datetime(2025, 3, 10)  # the stamp under test: stat_date 2025-03-10, as_of 2025-03-10 00:00


def _frames(spark, sales: list[tuple[datetime, float]], brand: str | None = "nike"):
    """One listing per sale (created 100 days earlier) plus listing 0 created on D, which requests the stamp."""
    listings = [(0, brand, "tops", "good", D + timedelta(hours=12))]
    listings += [(i + 1, brand, "tops", "good", t - timedelta(days=100)) for i, (t, _) in enumerate(sales)]
    sold = [(i + 1, t, p) for i, (t, p) in enumerate(sales)]
    return spark.createDataFrame(listings, LISTINGS), spark.createDataFrame(sold, SALES)


DAY = D.date()


def _stamp(df, level: str, day: date = DAY):
    return df.where((F.col("level") == level) & (F.col("stat_date") == F.lit(day)))


EDGES = [
    (D - timedelta(seconds=1), 10.0),              # last instant before the stamp: in every window
    (D - timedelta(days=7), 20.0),                 # exactly at the 7-day window's start: included
    (D - timedelta(days=7, seconds=1), 30.0),      # one second earlier: out of 7d, in 30d
    (D - timedelta(days=30), 40.0),                # exactly at the 30-day start: in 30d
    (D - timedelta(days=90, seconds=1), 50.0),     # before the 90-day window: in none
]


def test_window_edges_are_exact(spark) -> None:
    listings, sales = _frames(spark, [*EDGES, (D, 1000.0)])  # a sale at exactly D 00:00 is day D's: excluded
    row = _stamp(market_stats.compute(listings, sales, shrinkage_k=0.0), "brand_category").first()
    assert (row.n_sales_7d, row.n_sales_30d, row.n_sales_90d) == (2, 4, 4)
    assert row.p50_7d == pytest.approx(15.0)
    assert row.p50_30d == pytest.approx(float(np.quantile([10, 20, 30, 40], 0.5)))
    assert row.p25_30d == pytest.approx(float(np.quantile([10, 20, 30, 40], 0.25)))
    assert row.p75_30d == pytest.approx(float(np.quantile([10, 20, 30, 40], 0.75)))
    assert row.as_of == D
    # listings created in the windows: those sold 100 days after creation were created well before;
    # only none fall in [D-7d, D) -> sell-through is undefined (null), not infinite.
    assert row.n_listed_7d == 0 and row.sell_through_7d is None


def test_a_sale_one_second_after_the_stamp_changes_nothing(spark) -> None:
    before = market_stats.compute(*_frames(spark, EDGES), shrinkage_k=5.0)
    after = market_stats.compute(*_frames(spark, [*EDGES, (D + timedelta(seconds=1), 999.0)]), shrinkage_k=5.0)
    for level in market_stats.LEVELS:
        assert_df_equality(_stamp(after, level), _stamp(before, level), ignore_row_order=True, ignore_nullable=True)
    assert _stamp(before, "brand_category").count() == 1


def test_sparse_segments_are_shrunk_toward_their_parent(spark) -> None:
    # nike/tops has 2 sales in 30 days at 10; the category as a whole also has 8 adidas sales at 100.
    nike = [(D - timedelta(days=d), 10.0) for d in (1, 2)]
    adidas = [(D - timedelta(days=d, hours=1), 100.0) for d in range(1, 9)]
    l1, s1 = _frames(spark, nike)
    l2, s2 = _frames(spark, adidas, brand="adidas")
    listings = l1.unionByName(l2.withColumn("listing_id", F.col("listing_id") + 100))
    sales = s1.unionByName(s2.withColumn("listing_id", F.col("listing_id") + 100))
    k = 4.0
    stats = market_stats.compute(listings, sales, shrinkage_k=k)
    nike_row = _stamp(stats, "brand_category").where("brand = 'nike'").first()
    cat = _stamp(stats, "category").first()
    glob = _stamp(stats, "global").first()
    # category median of [10, 10, 100 x 8] = 100, shrunk toward the global level (the same sales) = itself
    assert cat.n_sales_30d == 10 and glob.n_sales_30d == 10
    assert cat.p50_30d == pytest.approx(100.0)
    expected = np.expm1((2 * np.log1p(10.0) + k * np.log1p(100.0)) / (2 + k))
    assert nike_row.p50_30d == pytest.approx(expected)
    assert nike_row.n_sales_30d == 2


def test_unbranded_items_form_their_own_segment(spark) -> None:
    stats = market_stats.compute(*_frames(spark, EDGES[:2], brand=None), shrinkage_k=0.0)
    row = _stamp(stats, "brand_category").first()
    assert row.brand == market_stats.NO_BRAND and row.n_sales_7d == 2
