"""`ingest.source: tables`: a team's own tables, mapped onto bronze by config, through the same quarantine,
reconciliation and insert-only MERGE as the landing files."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import ingest
from pricing.platform import catalog, delta_io
from pricing.platform.config import (
    Config,
    ListingsTableConfig,
    PriceChangesTableConfig,
    RemovalsTableConfig,
    SalesTableConfig,
    load_config,
)
from pricing.platform.errors import ConfigError
from pricing.platform.tables import table
from pricing.sources import schemas
from pricing.sources.landing import parse
from pricing.sources.tables import landing_frame

LISTINGS = {
    "listing_id": "item_no",
    "event_time": "posted",
    "seller_id": "seller",
    "title": "headline",
    "brand": "nullif(trim(brand_name), '')",
    "condition": "CASE cond WHEN 'NEW' THEN 'new_with_tags' WHEN 'USED' THEN 'used' END",
    "price": "amount",
    "currency": "'EUR'",
    "style_tags": "tags",
}
SALES = {
    "event_id": "concat('order-', order_no)",
    "listing_id": "listing_ref",
    "event_time": "sold_ts",
    "price": "paid",
    "currency": "upper(ccy)",
}
CHANGES = {"listing_id": "item", "event_time": "changed", "old_price": "was", "new_price": "now", "currency": "'EUR'"}


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s)


@pytest.fixture(scope="module")
def sources(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Their tables, with their own column names: listings and price changes as Delta paths, sales as a
    metastore table."""
    root = tmp_path_factory.mktemp("their-tables")
    listings = spark.createDataFrame(
        [
            (1, "2024-03-01T10:00:00.000Z", 7, "Blue jacket", "Acme", "NEW", 40.0, ["denim", "blue"]),
            (2, "2024-03-02T11:30:00.000Z", 8, "Red scarf", " ", "USED", 12.5, None),
            (None, "2024-03-02T12:00:00.000Z", 8, "No id", "Acme", "USED", 9.0, []),  # missing_listing_id
            (4, "2024-03-03T08:00:00.000Z", 9, "Free hat", "Acme", "USED", -5.0, []),  # non_positive_price
            (5, "last Tuesday", 9, "Old boots", "Acme", "USED", 30.0, []),  # unparseable_timestamp
            (1, "2024-03-01T10:00:00.000Z", 7, "Blue jacket", "Acme", "NEW", 40.0, ["denim", "blue"]),  # again
        ],
        "item_no long, posted string, seller long, headline string, brand_name string, cond string, "
        "amount double, tags array<string>",
    )
    changes = spark.createDataFrame(
        [(2, _ts("2024-03-04 09:00:00"), 12.5, 11.0), (2, _ts("2024-03-06 09:00:00"), 11.0, 10.0)],
        "item long, changed timestamp_ntz, was double, now double",
    )
    sales = spark.createDataFrame(
        [("A1", 1, _ts("2024-03-05 09:15:00"), "38.00", "eur"),
         ("A2", 2, _ts("2024-03-07 10:00:00"), "twelve", "eur")],  # wrong_type
        "order_no string, listing_ref long, sold_ts timestamp, paid string, ccy string",
    )
    paths = {"listings": str(root / "listings"), "price_changes": str(root / "price_changes")}
    listings.write.format("delta").save(paths["listings"])
    changes.write.format("delta").save(paths["price_changes"])
    sales_table = f"default.their_sales_{uuid.uuid4().hex[:8]}"
    sales.write.format("delta").saveAsTable(sales_table)
    yield {**paths, "sales": sales_table}
    spark.sql(f"DROP TABLE IF EXISTS {sales_table}")


def _cfg(root: Path, sources: dict[str, str], **over: Any) -> Config:
    tables = {
        "listings": {"path": sources["listings"], "columns": LISTINGS},
        "price_changes": {"path": sources["price_changes"], "columns": CHANGES},
        "sales": {"table": sources["sales"], "columns": SALES},
    }
    for section, value in over.items():
        tables[section] = value
    return load_config("local", {"storage": {"root": str(root)}, "ingest": {"source": "tables", "tables": tables}})


def _derived_id(event_type: str, source: str, *key: str | None) -> str:
    digest = hashlib.sha256(json.dumps([source, *key], separators=(",", ":")).encode()).hexdigest()
    return f"tables:{event_type}:{digest}"


def test_their_tables_land_in_bronze_quarantine_and_silver_once(spark, sources, tmp_path) -> None:
    cfg = _cfg(tmp_path / "state", sources)
    first = ingest.run(spark, cfg)
    # listings: 6 read = 2 bronze + 3 quarantined + 1 duplicate; price changes: 2 = 2; sales: 2 = 1 + 1.
    assert first.info["counts"] == {"read": 10, "inserted": 5, "quarantined": 4, "duplicates": 1}
    assert first.info["quarantine"] == {"missing_listing_id": 1, "non_positive_price": 1,
                                        "unparseable_timestamp": 1, "wrong_type": 1}
    assert first.rows_in == {"listing_created": 6, "price_changed": 2, "listing_sold": 2}

    src = sources["listings"]
    listings = delta_io.read(spark, table(cfg, catalog.BRONZE_LISTINGS_RAW)).drop("ingested_at")
    expected = spark.createDataFrame(
        [
            (_derived_id("listing_created", src, "1"), "listing_created", 1, 7, "Blue jacket", None, "Acme", None,
             "new_with_tags", None, None, None, ["denim", "blue"], 40.0, "EUR", None, None, None, None,
             _ts("2024-03-01 10:00:00"), src),
            (_derived_id("listing_created", src, "2"), "listing_created", 2, 8, "Red scarf", None, None, None,
             "used", None, None, None, [], 12.5, "EUR", None, None, None, None, _ts("2024-03-02 11:30:00"), src),
        ],
        "event_id string, event_type string, listing_id long, seller_id long, title string, description string, "
        "brand string, category_path string, condition string, size string, colour string, material string, "
        "style_tags array<string>, price double, currency string, shipping_paid_by string, "
        "seller_rating double, seller_experience_years double, seller_is_shop boolean, event_time timestamp, "
        "source_file string",
    )
    assert_df_equality(listings, expected, ignore_row_order=True, ignore_nullable=True)

    changes = delta_io.read(spark, table(cfg, catalog.BRONZE_EVENT_TABLES["price_changed"])).drop("ingested_at")
    csrc = sources["price_changes"]
    assert_df_equality(changes, spark.createDataFrame(
        [(_derived_id("price_changed", csrc, "2", "2024-03-04T09:00:00.000Z"), "price_changed", 2, 12.5, 11.0,
          "EUR", _ts("2024-03-04 09:00:00"), csrc),
         (_derived_id("price_changed", csrc, "2", "2024-03-06T09:00:00.000Z"), "price_changed", 2, 11.0, 10.0,
          "EUR", _ts("2024-03-06 09:00:00"), csrc)],
        "event_id string, event_type string, listing_id long, old_price double, new_price double, "
        "currency string, event_time timestamp, source_file string"), ignore_row_order=True, ignore_nullable=True)

    sales = delta_io.read(spark, table(cfg, catalog.BRONZE_EVENT_TABLES["listing_sold"])).drop("ingested_at")
    assert_df_equality(sales, spark.createDataFrame(
        [("order-A1", "listing_sold", 1, 38.0, "EUR", _ts("2024-03-05 09:15:00"), sources["sales"])],
        "event_id string, event_type string, listing_id long, price double, currency string, "
        "event_time timestamp, source_file string"), ignore_nullable=True)

    quarantine = delta_io.read(spark, table(cfg, catalog.BRONZE_QUARANTINE)).select(
        "event_type", F.get_json_object("raw_payload", "$.title").alias("title"),
        F.get_json_object("raw_payload", "$.event_id").alias("event_id"), "reason", "source_file")
    assert sorted(tuple(r) for r in quarantine.collect()) == [
        ("listing_created", "Free hat", _derived_id("listing_created", src, "4"), "non_positive_price", src),
        ("listing_created", "No id", _derived_id("listing_created", src, None), "missing_listing_id", src),
        ("listing_created", "Old boots", _derived_id("listing_created", src, "5"), "unparseable_timestamp", src),
        ("listing_sold", None, "order-A2", "wrong_type", sources["sales"]),
    ]
    # The wrong_type record keeps their value, as text, for whoever inspects the quarantine.
    bad = delta_io.read(spark, table(cfg, catalog.BRONZE_QUARANTINE)).where("reason = 'wrong_type'")
    assert json.loads(bad.first()["raw_payload"])["price"] == "twelve"

    silver = delta_io.read(spark, table(cfg, catalog.SILVER_LISTINGS))
    assert sorted(tuple(r) for r in silver.select(
        "listing_id", "status", "list_price", "current_price", "n_price_changes", "sold_price").collect()) == [
        (1, "sold", 40.0, 40.0, 0, 38.0), (2, "active", 12.5, 10.0, 2, None)]

    # Idempotent: the second run reads the same 10 records, all already in bronze or quarantine, and commits
    # nothing anywhere: every bronze, quarantine and silver table keeps its Delta version (so its rows).
    again = ingest.run(spark, cfg)
    assert again.info["counts"] == {"read": 10, "inserted": 0, "quarantined": 0, "duplicates": 10}
    assert len(first.tables) == 7 and again.tables == first.tables
    assert again.rows_out == {**first.rows_out, **{t: 0 for t in first.rows_out if t.startswith("bronze.")}}


def test_a_mapping_their_table_cannot_evaluate_fails_before_any_write(spark, sources, tmp_path) -> None:
    # The listings mapping is fine; the sales one names a column they do not have.  Nothing is written.
    root = tmp_path / "state"
    cfg = _cfg(root, sources, sales={"table": sources["sales"], "columns": {**SALES, "price": "amount_paid"}})
    with pytest.raises(ConfigError, match=r"ingest\.tables\.sales\.columns\.price: 'amount_paid' cannot be "):
        ingest.run(spark, cfg)
    assert not (root / "warehouse").exists()
    assert not (root / "checkpoints").exists()

    missing = _cfg(root, sources, listings={"path": str(tmp_path / "nope"), "columns": LISTINGS})
    with pytest.raises(ConfigError, match=r"ingest\.tables\.listings\.path: cannot read Delta path"):
        ingest.run(spark, missing)
    bad_type = _cfg(root, sources, listings={"path": sources["listings"], "columns": {**LISTINGS, "style_tags": "cond"}})
    with pytest.raises(ConfigError, match=r"ingest\.tables\.listings\.columns\.style_tags: is string"):
        ingest.run(spark, bad_type)
    assert not (root / "warehouse").exists()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"path": "/x", "columns": {**LISTINGS, "colour_name": "c"}},
         r"ingest\.tables\.listings\.columns: unknown column\(s\) colour_name"),
        ({"path": "/x", "columns": {k: v for k, v in LISTINGS.items() if k != "currency"}},
         r"ingest\.tables\.listings\.columns: required column\(s\) currency not mapped"),
        ({"table": "main.shop.listings; DROP TABLE x", "columns": LISTINGS},
         r"ingest\.tables\.listings\.table: .*not a valid identifier"),
        ({"table": "a.b.c.d", "columns": LISTINGS}, r"ingest\.tables\.listings\.table: .*more than three parts"),
        ({"table": "main.shop.listings", "path": "/x", "columns": LISTINGS},
         r"ingest\.tables\.listings: set exactly one of table"),
        ({"path": "/x", "columns": LISTINGS, "key": ["title_text"]},
         r"ingest\.tables\.listings: key column\(s\) title_text are not mapped"),
        ({"path": "/x", "columns": {**LISTINGS, "event_type": "'x'"}},
         r"ingest\.tables\.listings\.columns: unknown column\(s\) event_type"),
    ],
)
def test_bad_mapping_is_a_config_error_naming_the_key(tmp_path, section, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _cfg(tmp_path, {"listings": "", "price_changes": "", "sales": "s"}, listings=section)


def test_tables_source_needs_listings(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"ingest: ingest.source 'tables' needs ingest.tables.listings"):
        load_config("local", {"storage": {"root": str(tmp_path)}, "ingest": {"source": "tables"}})


def test_config_columns_are_the_landing_fields() -> None:
    for section in (ListingsTableConfig, SalesTableConfig, PriceChangesTableConfig, RemovalsTableConfig):
        fields = []
        for f in schemas.LANDING[section.EVENT_TYPE].fields:
            if f.name == "seller":
                fields += [f"seller_{n.name}" for n in f.dataType.fields]
            elif f.name != "event_type":
                fields.append(f.name)
        assert sorted(section.COLUMNS) == sorted(fields), section.EVENT_TYPE
        assert set(section.REQUIRED) <= set(section.COLUMNS)


def test_event_times_do_not_depend_on_the_session_time_zone(spark, tmp_path) -> None:
    path = str(tmp_path / "times")
    spark.createDataFrame(
        [(1, datetime(2024, 3, 1, 23, 30, 0, 123456, tzinfo=UTC), _ts("2024-03-01 23:30:00"),
          _ts("2024-03-01 00:00:00").date())],
        "id long, ts timestamp, ntz timestamp_ntz, d date").write.format("delta").save(path)
    cfg = _cfg(tmp_path, {"listings": path, "price_changes": path, "sales": "s"})

    def times(column: str) -> list[str]:
        t = RemovalsTableConfig(path=path, columns={"listing_id": "id", "event_time": column})
        frame = landing_frame(spark, cfg, "removals", t).transform(parse("listing_removed"))
        return [(r["t"], r["reason"]) for r in frame.select(F.col("e.event_time").alias("t"), "reason").collect()]

    zone = spark.conf.get("spark.sql.session.timeZone")
    try:
        got = {}
        for tz in ("UTC", "America/Los_Angeles", "Asia/Kolkata"):
            spark.conf.set("spark.sql.session.timeZone", tz)
            got[tz] = [times(c) for c in ("ts", "ntz", "d")]
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert got["UTC"] == [[("2024-03-01T23:30:00.123Z", None)], [("2024-03-01T23:30:00.000Z", None)],
                          [("2024-03-01T00:00:00.000Z", None)]]
    assert got["America/Los_Angeles"] == got["UTC"] == got["Asia/Kolkata"]
