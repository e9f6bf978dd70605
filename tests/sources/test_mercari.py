"""Mercari training TSV -> landing frames that ingest's own parse / to_bronze accept (or quarantine with the right reason)."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricing.platform.errors import ConfigError
from pricing.sources.landing import parse, to_bronze
from pricing.sources.mercari import mercari_landing, read_tsv

SAMPLE = Path(__file__).parent / "data" / "mercari_sample.tsv"
SOURCE = f"file:{SAMPLE.resolve()}"
START = datetime(2024, 1, 1)
HEADER = "train_id\tname\titem_condition_id\tcategory_name\tbrand_name\tprice\tshipping\titem_description"


def _created_at(train_id: int) -> datetime:
    # max good train_id is 8, so listings are 10 days * 86400 s / 9 = 96000 s apart
    return START + timedelta(seconds=train_id * 96_000)


@pytest.fixture(scope="module")
def frames(spark) -> dict[str, DataFrame]:
    # Materialised once, like landing lines on disk: parse then plans over plain strings (fast to optimise).
    out = mercari_landing(spark, str(SAMPLE), start=START, days=10)
    return {event_type: df.localCheckpoint() for event_type, df in out.items()}


def _parsed(frames: dict[str, DataFrame], event_type: str) -> DataFrame:
    return frames[event_type].transform(parse(event_type))


def test_frames_have_the_landing_shape(frames) -> None:
    for df in frames.values():
        assert [(f.name, f.dataType.simpleString()) for f in df.schema.fields] == [
            ("raw_payload", "string"), ("source_file", "string"), ("ingested_at", "timestamp")]
        assert {r.source_file for r in df.select("source_file").distinct().collect()} == {SOURCE}


def test_good_listings_become_bronze_rows(spark, frames) -> None:
    parsed = _parsed(frames, "listing_created")
    got = parsed.filter(F.col("reason").isNull()).transform(to_bronze("listing_created")).drop("ingested_at")

    def row(tid, title, desc, brand, cat, cond, price, ship):
        return (f"mercari:listing_created:{tid}", "listing_created", tid, -1, title, desc, brand, cat, cond,
                None, None, None, [], price, "USD", ship, None, None, None, _created_at(tid), SOURCE)

    expected = spark.createDataFrame(
        [
            row(0, "Nike Dri-FIT Tee", "Great tee, barely worn", "Nike", "men/tops/t-shirts", "good", 10.0,
                "seller"),
            # [rm] removed from title and description, whitespace collapsed
            row(1, "Coach Leather Bag", "Paid for it. Selling for less", "Coach",
                "women/womens-handbags/shoulder-bag", "new_with_tags", 35.0, "buyer"),
            # "No description yet" -> null; empty brand -> null
            row(2, "Silk Blouse", None, None, "women/tops-and-blouses/blouse", "like_new", 8.0, "buyer"),
            # empty category -> null
            row(3, "Mystery box", "Assorted items", None, None, "used", 15.0, "seller"),
            # double quotes survive; levels beyond the third are folded into it
            row(6, 'Apple iPad "mini" 16GB', 'Screen is "perfect", no "scratches"', "Apple",
                "electronics/computers-and-tablets/ipad-tablet-ebook-access", "like_new", 120.0, "buyer"),
        ],
        "event_id string, event_type string, listing_id long, seller_id long, title string, description string, "
        "brand string, category_path string, condition string, size string, colour string, material string, "
        "style_tags array<string>, price double, currency string, shipping_paid_by string, "
        "seller_rating double, seller_experience_years double, seller_is_shop boolean, event_time timestamp, "
        "source_file string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_bad_listings_get_quarantine_reasons(spark, frames) -> None:
    parsed = _parsed(frames, "listing_created")
    got = parsed.filter(F.col("reason").isNotNull()).select(
        F.coalesce(F.col("e.event_id"), F.col("raw_payload")).alias("key"), "reason")
    expected = spark.createDataFrame(
        [
            ("mercari:listing_created:4", "non_positive_price"),
            ("mercari:listing_created:5", "unknown_condition"),
            ("mercari:listing_created:8", "wrong_type"),  # price "abc"
            ("7\tBroken line\t3", "malformed_json"),  # too few fields: the raw line is kept, once
            ("x9\tBad id\t3\tMen/Hats/Caps\t\t5.0\t1\tid is not a number", "malformed_json"),
        ],
        "key string, reason string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_sales_one_day_after_listing_at_the_listed_price(spark, frames) -> None:
    parsed = _parsed(frames, "listing_sold")
    got = parsed.select(
        F.col("e.event_id").alias("event_id"), F.col("e.listing_id").alias("listing_id"),
        F.col("e.price").alias("price"), F.col("e.currency").alias("currency"),
        F.col("event_ts").alias("event_time"), "reason")
    prices = {0: 10.0, 1: 35.0, 2: 8.0, 3: 15.0, 4: 0.0, 5: 40.0, 6: 120.0, 8: None}
    reasons = {4: "non_positive_price", 8: "wrong_type"}
    expected = spark.createDataFrame(
        [(f"mercari:listing_sold:{t}", t, p, "USD", _created_at(t) + timedelta(days=1), reasons.get(t))
         for t, p in prices.items()],
        "event_id string, listing_id long, price double, currency string, event_time timestamp, reason string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_currency_argument_is_used(spark) -> None:
    frames = mercari_landing(spark, str(SAMPLE), currency="EUR", start=START, days=10)
    got = frames["listing_sold"].select(F.get_json_object("raw_payload", "$.currency").alias("c")).distinct()
    assert [r.c for r in got.collect()] == ["EUR"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("id\tname\tprice\tdescription", "missing column(s) train_id, item_condition_id, category_name"),
        (HEADER.replace("brand_name", "brand"), "missing column(s) brand_name"),
        ("test_id\tname\titem_condition_id\tcategory_name\tbrand_name\tshipping\titem_description",
         "Mercari test file"),
    ],
)
def test_wrong_header_is_a_config_error(spark, tmp_path, header, message) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(f"{header}\n0\tx\t1\tA/B/C\t\t1.0\t1\ty\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mercari_landing(spark, str(path), start=START, days=10)


# Quoted fields as standard CSV readers take them: a tab inside quotes, doubled quotes, a newline inside quotes;
# quotes inside an unquoted field are plain characters; a record with too few fields stays one malformed record.
QUOTED = (
    f"{HEADER}\n"
    '10\t"Tee\twith tab"\t3\tMen/Tops/T-shirts\tNike\t10.0\t1\tplain\n'
    '11\t"12"" ruler"\t2\tHome/Office/Rulers\t\t4.5\t0\t"line one\nline two"\n'
    '12\tApple iPad "mini"\t2\tElectronics/Tablets/iPad\tApple\t99.0\t0\t"say ""hi""\tand\nbye"\n'
    '13\t""\t1\t\t\t5.0\t1\t\n'
    "14\ttoo few\t3\n"
)


def test_quoted_fields_are_read_as_pythons_csv_reads_them(spark, tmp_path) -> None:
    path = tmp_path / "quoted.tsv"
    path.write_text(QUOTED, newline="")
    with path.open(newline="") as f:
        py_rows = list(csv.reader(f, delimiter="\t"))[1:]
    assert py_rows == [
        ["10", "Tee\twith tab", "3", "Men/Tops/T-shirts", "Nike", "10.0", "1", "plain"],
        ["11", '12" ruler', "2", "Home/Office/Rulers", "", "4.5", "0", "line one\nline two"],
        ["12", 'Apple iPad "mini"', "2", "Electronics/Tablets/iPad", "Apple", "99.0", "0", 'say "hi"\tand\nbye'],
        ["13", "", "1", "", "", "5.0", "1", ""],
        ["14", "too few", "3"],
    ]
    got = []
    for r in read_tsv(spark, str(path), 8).collect():
        if r["_corrupt_record"] is None:  # a whole record: its fields, an empty one read as null
            got.append([r[f"_c{i}"] or "" for i in range(8)])
        else:  # a record with the wrong number of fields: its text, as read
            got.append(r["_corrupt_record"].split("\t"))
    assert got == py_rows

    frames = mercari_landing(spark, str(path), start=START, days=10)
    parsed = frames["listing_created"].transform(parse("listing_created"))
    bronze = parsed.filter(F.col("reason").isNull()).transform(to_bronze("listing_created"))
    # Title and description keep the quoted characters; the adapter's own cleaning collapses tabs and newlines.
    assert sorted(bronze.select("listing_id", "title", "description").collect()) == [
        (10, "Tee with tab", "plain"),
        (11, '12" ruler', "line one line two"),
        (12, 'Apple iPad "mini"', 'say "hi" and bye'),
        (13, None, None),
    ]
    bad = parsed.filter(F.col("reason").isNotNull()).select("raw_payload", "reason").collect()
    assert [tuple(r) for r in bad] == [("14\ttoo few\t3", "malformed_json")]
