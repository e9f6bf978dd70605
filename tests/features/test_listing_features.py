"""Leakage tests on hand-written rows: a feature at t uses only data strictly before t."""

from __future__ import annotations

from datetime import datetime

from chispa import assert_df_equality

from features import listing_features

LISTINGS_SCHEMA = "listing_id long, seller_id long, created_at timestamp"
SALES_SCHEMA = "seller_id long, sold_at timestamp"
OUT_SCHEMA = "listing_id long, seller_prior_listings long, seller_prior_sales long"


def _history(spark, listings, sales):  # type: ignore[no-untyped-def]
    ldf = spark.createDataFrame(listings, LISTINGS_SCHEMA)
    sdf = spark.createDataFrame(sales, SALES_SCHEMA)
    return ldf.transform(listing_features.with_seller_history(sdf)).select(
        "listing_id", "seller_prior_listings", "seller_prior_sales")


def test_sale_one_second_after_t_does_not_change_features_at_t(spark) -> None:  # type: ignore[no-untyped-def]
    t = datetime(2025, 3, 1, 12, 0, 0)
    listings = [(1, 7, datetime(2025, 2, 1)), (2, 7, t)]
    before = _history(spark, listings, [(7, datetime(2025, 2, 10))])
    after = _history(spark, listings, [(7, datetime(2025, 2, 10)), (7, datetime(2025, 3, 1, 12, 0, 1))])
    expected = spark.createDataFrame([(1, 0, 0), (2, 1, 1)], OUT_SCHEMA)
    assert_df_equality(before, expected, ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(after, expected, ignore_row_order=True, ignore_nullable=True)


def test_event_exactly_at_t_is_excluded(spark) -> None:  # type: ignore[no-untyped-def]
    t = datetime(2025, 3, 1, 12, 0, 0)
    # Another listing and a sale at exactly t: neither is "before" t.
    got = _history(spark, [(1, 7, t), (2, 7, t)], [(7, t)])
    expected = spark.createDataFrame([(1, 0, 0), (2, 0, 0)], OUT_SCHEMA)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_other_sellers_history_never_leaks_in(spark) -> None:  # type: ignore[no-untyped-def]
    got = _history(spark, [(1, 7, datetime(2025, 3, 1)), (2, 8, datetime(2025, 3, 2))],
                   [(8, datetime(2025, 2, 1)), (8, datetime(2025, 2, 2))])
    expected = spark.createDataFrame([(1, 0, 0), (2, 0, 2)], OUT_SCHEMA)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_text_flags_read_title_and_description(spark) -> None:  # type: ignore[no-untyped-def]
    df = spark.createDataFrame(
        [(1, "DEADSTOCK nike tee", "never worn"), (2, "zara dress", "small stain on front"),
         (3, "levis 501", "No description yet")],
        "listing_id long, title string, description string",
    )
    got = df.transform(listing_features.with_text_flags).select("listing_id", "txt_deadstock", "txt_damage", "txt_rare")
    expected = spark.createDataFrame([(1, 1, 0, 0), (2, 0, 1, 0), (3, 0, 0, 0)],
                                     "listing_id long, txt_deadstock int, txt_damage int, txt_rare int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_unknown_sellers_get_no_history(spark) -> None:  # type: ignore[no-untyped-def]
    # Mercari has no sellers (seller_id -1): their listings must not pool into one pseudo-seller.
    got = _history(spark, [(1, -1, datetime(2025, 3, 1)), (2, -1, datetime(2025, 3, 2))],
                   [(-1, datetime(2025, 2, 1))])
    expected = spark.createDataFrame([(1, None, None), (2, None, None)], OUT_SCHEMA)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
