"""Each kind of bad landing record gets its own quarantine reason; good ones become typed bronze rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from chispa import assert_df_equality
from pyspark.sql import functions as F

from pricing.sources.landing import parse, to_bronze

GOOD = ('{"event_id":"listing_sold:1","event_type":"listing_sold","event_time":"2025-01-02T10:00:00.000Z",'
        '"listing_id":1,"price":12.5,"currency":"GBP"}')


def _sold(**over: object) -> str:
    import json

    rec = json.loads(GOOD)
    rec.update(over)
    return json.dumps(rec)


def test_sale_records_are_checked_and_reasoned(spark) -> None:
    lines = [
        ("a", GOOD),
        ("b", '{"event_id": "x", "listing_id": 1, "price": '),
        ("c", _sold(event_id=None)),
        ("d", _sold(listing_id=None)),
        ("e", _sold(event_time="yesterday")),
        ("f", _sold(event_time="2999-01-01T00:00:00.000Z")),
        ("g", _sold(price=0)),
        ("h", _sold(price=-3)),
        ("i", _sold(price=1e9)),
        ("j", _sold(currency="XYZ")),
        ("k", _sold(price="twelve")),
    ]
    df = spark.createDataFrame(lines, "source_file string, raw_payload string").withColumn(
        "ingested_at", F.lit(datetime(2026, 1, 1)))
    got = df.transform(parse("listing_sold")).select("source_file", "reason")
    expected = spark.createDataFrame(
        [("a", None), ("b", "malformed_json"), ("c", "missing_event_id"), ("d", "missing_listing_id"),
         ("e", "unparseable_timestamp"), ("f", "future_timestamp"), ("g", "non_positive_price"),
         ("h", "non_positive_price"), ("i", "absurd_price"), ("j", "unknown_currency"), ("k", "wrong_type")],
        "source_file string, reason string")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_good_record_becomes_typed_bronze_row(spark) -> None:
    df = spark.createDataFrame([("f1", GOOD)], "source_file string, raw_payload string").withColumn(
        "ingested_at", F.lit(datetime(2026, 1, 1)))
    got = df.transform(parse("listing_sold")).transform(to_bronze("listing_sold"))
    expected = spark.createDataFrame(
        [("listing_sold:1", "listing_sold", 1, 12.5, "GBP", datetime(2025, 1, 2, 10), "f1", datetime(2026, 1, 1))],
        "event_id string, event_type string, listing_id long, price double, currency string, "
        "event_time timestamp, source_file string, ingested_at timestamp")
    assert_df_equality(got, expected, ignore_nullable=True)


def test_the_files_reader_lists_landing_folders_on_the_driver_and_restores_the_setting(spark, tmp_path,
                                                                                        monkeypatch) -> None:
    from pricing.platform.config import load_config
    from pricing.sources import ingest

    cfg = load_config("local", [f"storage.root={tmp_path}"])
    landing = tmp_path / "landing"
    for day in range(40):  # more folders than Spark's default threshold (32) for a distributed listing
        folder = landing / "listing_sold" / f"landing_date={date(2025, 1, 1) + timedelta(days=day)}"
        folder.mkdir(parents=True)
        (folder / "part-0.json").write_text(_sold(event_id=f"listing_sold:{day}", listing_id=day) + "\n")
    seen = []
    process = ingest._process_batch

    def spy(spark_, cfg_, event_type, df):  # the setting as the stream's batches see it
        seen.append(df.sparkSession.conf.get(ingest.PARALLEL_LISTING))
        return process(spark_, cfg_, event_type, df)

    monkeypatch.setattr(ingest, "_process_batch", spy)
    original = spark.conf.get(ingest.PARALLEL_LISTING)
    spark.conf.set(ingest.PARALLEL_LISTING, "32")
    try:
        tally = ingest.stream_landing(spark, cfg, "listing_sold", str(landing))
        assert (tally.read, tally.inserted, tally.quarantined) == (40, 40, 0)
        assert seen and set(seen) == {str(ingest.DRIVER_LISTING_FOLDERS)}
        assert spark.conf.get(ingest.PARALLEL_LISTING) == "32"
    finally:
        spark.conf.set(ingest.PARALLEL_LISTING, original)
