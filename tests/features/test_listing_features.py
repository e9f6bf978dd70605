"""Leakage tests on hand-written rows: a feature at t uses only data strictly before t."""

from __future__ import annotations

from datetime import datetime

from chispa import assert_df_equality
from pyspark.sql import functions as F

from features import listing_features

LISTINGS_SCHEMA = "listing_id long, seller_id long, created_at timestamp"
SALES_SCHEMA = "seller_id long, sold_at timestamp"
OUT_SCHEMA = "listing_id long, seller_prior_listings long, seller_prior_sales long"


def _history(spark, listings, sales):
    """Seller history of each listing's ``listed`` row (as_of = created_at)."""
    ldf = spark.createDataFrame(listings, LISTINGS_SCHEMA)
    sdf = spark.createDataFrame(sales, SALES_SCHEMA)
    rows = ldf.withColumn("as_of", F.col("created_at"))
    return rows.transform(listing_features.with_seller_history(ldf, sdf)).select(
        "listing_id", "seller_prior_listings", "seller_prior_sales")


def test_sale_one_second_after_t_does_not_change_features_at_t(spark) -> None:
    t = datetime(2025, 3, 1, 12, 0, 0)
    listings = [(1, 7, datetime(2025, 2, 1)), (2, 7, t)]
    before = _history(spark, listings, [(7, datetime(2025, 2, 10))])
    after = _history(spark, listings, [(7, datetime(2025, 2, 10)), (7, datetime(2025, 3, 1, 12, 0, 1))])
    expected = spark.createDataFrame([(1, 0, 0), (2, 1, 1)], OUT_SCHEMA)
    assert_df_equality(before, expected, ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(after, expected, ignore_row_order=True, ignore_nullable=True)


def test_event_exactly_at_t_is_excluded(spark) -> None:
    t = datetime(2025, 3, 1, 12, 0, 0)
    # Another listing and a sale at exactly t: neither is "before" t.
    got = _history(spark, [(1, 7, t), (2, 7, t)], [(7, t)])
    expected = spark.createDataFrame([(1, 0, 0), (2, 0, 0)], OUT_SCHEMA)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_other_sellers_history_never_leaks_in(spark) -> None:
    got = _history(spark, [(1, 7, datetime(2025, 3, 1)), (2, 8, datetime(2025, 3, 2))],
                   [(8, datetime(2025, 2, 1)), (8, datetime(2025, 2, 2))])
    expected = spark.createDataFrame([(1, 0, 0), (2, 0, 2)], OUT_SCHEMA)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_text_flags_read_title_and_description(spark) -> None:
    df = spark.createDataFrame(
        [(1, "DEADSTOCK nike tee", "never worn"), (2, "zara dress", "small stain on front"),
         (3, "levis 501", "No description yet")],
        "listing_id long, title string, description string",
    )
    got = df.transform(listing_features.with_text_features).select("listing_id", "txt_deadstock", "txt_damage",
                                                                     "txt_rare")
    expected = spark.createDataFrame([(1, 1, 0, 0), (2, 0, 1, 0), (3, 0, 0, 0)],
                                     "listing_id long, txt_deadstock int, txt_damage int, txt_rare int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_unknown_sellers_get_no_history(spark) -> None:
    # Mercari has no sellers (seller_id -1): their listings must not pool into one pseudo-seller.
    got = _history(spark, [(1, -1, datetime(2025, 3, 1)), (2, -1, datetime(2025, 3, 2))],
                   [(-1, datetime(2025, 2, 1))])
    expected = spark.createDataFrame([(1, None, None), (2, None, None)], OUT_SCHEMA)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_text_is_tokenised_and_hashed(spark) -> None:
    df = spark.createDataFrame([(1, "Nike TEE tee!!", "a   rare-find 🔥"), (2, "", None)],
                               "listing_id long, title string, description string")
    got = {r.listing_id: r for r in df.transform(listing_features.with_text_features).collect()}
    assert got[1].text_tokens == ["nike", "tee", "tee", "rare", "find"]  # lower case, stopword "a" gone, emoji gone
    assert got[2].text_tokens == [] and got[2].text_hash_indices == [] and got[2].text_hash_values == []
    idx, vals = got[1].text_hash_indices, got[1].text_hash_values
    assert idx == sorted(idx) and all(0 <= i < listing_features.TEXT_HASH_DIM for i in idx)
    assert sum(vals) == 5.0 and max(vals) == 2.0  # "tee" twice (barring a hash collision, which would only add)


REPRICE_LISTINGS = ("listing_id long, seller_id long, created_at timestamp, list_price double, "
                    "sold_at timestamp, removed_at timestamp")


def test_reprice_snapshots_only_while_on_sale(spark) -> None:
    t = datetime(2025, 3, 1)
    listings = spark.createDataFrame([(1, 7, t, 50.0, datetime(2025, 3, 20), None)], REPRICE_LISTINGS)
    changes = spark.createDataFrame(
        [("e1", 1, datetime(2025, 3, 5), 45.0), ("e2", 1, datetime(2025, 3, 10), 40.0),
         ("e3", 1, datetime(2025, 3, 25), 30.0),   # after the sale: not a snapshot
         ("e0", 1, datetime(2025, 2, 1), 99.0)],   # before creation: impossible, ignored
        "event_id string, listing_id long, event_time timestamp, new_price double")
    got = listing_features.snapshots(listings, changes)
    expected = spark.createDataFrame(
        [(1, t, "listed", 50.0, 0), (1, datetime(2025, 3, 5), "repriced", 45.0, 1),
         (1, datetime(2025, 3, 10), "repriced", 40.0, 2)],
        "listing_id long, as_of timestamp, snapshot string, asking_price double, n_price_changes int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_reprice_rows_see_history_up_to_their_own_time(spark) -> None:
    # A reprice row at t2 counts the seller's sale between created_at and t2; the listed row does not.
    t1, t2 = datetime(2025, 3, 1), datetime(2025, 3, 10)
    listings = spark.createDataFrame([(1, 7, t1)], LISTINGS_SCHEMA)
    sales = spark.createDataFrame([(7, datetime(2025, 3, 5)), (7, t2)], SALES_SCHEMA)
    rows = spark.createDataFrame([(1, 7, t1), (1, 7, t2)], "listing_id long, seller_id long, as_of timestamp")
    got = rows.transform(listing_features.with_seller_history(listings, sales)).select(
        "as_of", "seller_prior_listings", "seller_prior_sales")
    expected = spark.createDataFrame([(t1, 0, 0), (t2, 1, 1)],
                                     "as_of timestamp, seller_prior_listings long, seller_prior_sales long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
