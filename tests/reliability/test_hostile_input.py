"""Hostile landing records: ingestion never crashes, and every record ends up in bronze (clean) or in quarantine
with a reason; counts reconcile.  Property-based on the pure parsing step (hypothesis), plus one real ingest run
of a file full of damaged bytes."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import ingest
from pricing.platform import delta_io
from pricing.platform.config import Config
from pricing.platform.tables import table
from pricing.sources import schemas
from pricing.sources.landing import MIN_EVENT_TIME, _reasons, parse, to_bronze
from tests.reliability.support import tiny_cfg

INGESTED_AT = datetime(2026, 1, 1)
GOOD = {
    "listing_created": {"event_id": "c:1", "event_type": "listing_created", "event_time": "2025-01-02T10:00:00.000Z",
                        "listing_id": 1, "seller_id": 3, "seller": {"rating": 4.5, "experience_years": 1.0,
                                                                    "is_shop": False},
                        "title": "Vintage denim jacket", "description": "barely worn", "brand": "Levi's",
                        "category_path": "Men/Jackets/Denim", "condition": "good", "size": "M", "colour": "blue",
                        "material": "denim", "style_tags": ["vintage"], "price": 25.0, "currency": "GBP",
                        "shipping_paid_by": "buyer"},
    "price_changed": {"event_id": "p:1", "event_type": "price_changed", "event_time": "2025-01-03T10:00:00.000Z",
                      "listing_id": 1, "old_price": 25.0, "new_price": 22.5, "currency": "GBP"},
    "listing_sold": {"event_id": "s:1", "event_type": "listing_sold", "event_time": "2025-01-04T10:00:00.000Z",
                     "listing_id": 1, "price": 22.5, "currency": "GBP"},
    "listing_removed": {"event_id": "r:1", "event_type": "listing_removed",
                        "event_time": "2025-01-05T10:00:00.000Z", "listing_id": 1},
}


def _deep(depth: int, kind: str) -> str:
    return ('{"a":' * depth + "1" + "}" * depth) if kind == "object" else ("[" * depth + "]" * depth)


timestamps = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"),
    st.sampled_from(["+275760-09-13T00:00:00.000Z", "-000001-01-01T00:00:00.000Z", "1970-01-01T00:00:00.000Z",
                     "0000-00-00T00:00:00.000Z", "2025-02-30T10:00:00.000Z", "2025-01-02T10:00:00.000+14:00",
                     "2025-01-02", "", "NaN"]),
)
hostile_values = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0, 5e-324, 2**63, -(2**63) - 1, 10**40, None, True,
                     "", " ", "twelve", [], {}, [1, "a"], {"rating": "x"}])
    | st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=20),
    st.integers(0, 30_000).map(lambda n: "x" * n),                        # huge strings
    st.just("\u0000\ufffd\u202e"),                                     # control, replacement, bidi override
    timestamps,
)


@st.composite
def records(draw: st.DrawFn, event_type: str) -> str:
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "text", "bytes", "deep", "truncated"]))
    if kind == "text":
        return draw(st.text(max_size=300))
    if kind == "bytes":  # bytes read in a wrong encoding
        return draw(st.binary(max_size=300)).decode(draw(st.sampled_from(["latin-1", "cp1252"])), errors="replace")
    if kind == "deep":
        return _deep(draw(st.integers(1, 3_000)), draw(st.sampled_from(["object", "array"])))
    rec = dict(GOOD[event_type])
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from([*rec, "seller.rating", "extra"]))
        value = draw(st.one_of(hostile_values, timestamps) if field == "event_time" else hostile_values)
        if field == "seller.rating" and isinstance(rec.get("seller"), dict):
            rec["seller"] = {**rec["seller"], "rating": value}
        else:
            rec[field] = value
    line = json.dumps(rec, allow_nan=True)  # NaN / Infinity tokens, as some exporters write them
    if kind == "truncated":
        line = line[: draw(st.integers(0, len(line)))]
    return line


@st.composite
def batches(draw: st.DrawFn) -> tuple[str, list[str]]:
    event_type = draw(st.sampled_from(list(schemas.LANDING)))
    return event_type, draw(st.lists(records(event_type), min_size=1, max_size=12))


def _clean_violations(event_type: str) -> F.Column:
    """True for a bronze row that should never have passed the checks."""
    bad = F.col("event_id").isNull() | (F.trim("event_id") == "") | F.col("listing_id").isNull() \
        | F.col("event_time").isNull() | (F.col("event_time") < F.lit(MIN_EVENT_TIME).cast("timestamp")) \
        | (F.col("event_time") > F.lit(INGESTED_AT) + F.expr("INTERVAL 1 DAY"))
    for f in schemas.LANDING[event_type].fields:
        if f.dataType == schemas.D:
            c = F.col(f.name)
            bad = bad | F.coalesce(F.isnan(c) | (F.abs(c) == float("inf")), F.lit(False))
    if event_type == "listing_created":
        for f in ("seller_rating", "seller_experience_years"):
            bad = bad | F.coalesce(F.isnan(f) | (F.abs(f) == float("inf")), F.lit(False))
    return bad


@pytest.mark.slow
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(batch=batches())
def test_every_record_is_bronze_or_quarantined_with_a_reason(spark: SparkSession,
                                                             batch: tuple[str, list[str]]) -> None:
    event_type, lines = batch
    df = spark.createDataFrame([(f"f{i}", line) for i, line in enumerate(lines)],
                               "source_file string, raw_payload string").withColumn("ingested_at", F.lit(INGESTED_AT))
    parsed = df.transform(parse(event_type))
    known = [code for code, _ in _reasons(event_type)]
    row = parsed.agg(F.count("*").alias("n"), F.count("reason").alias("quarantined"),
                     F.count_if(F.col("reason").isNotNull() & ~F.col("reason").isin(*known)).alias("unknown")).first()
    good = parsed.where(F.col("reason").isNull()).transform(to_bronze(event_type))
    clean = good.agg(F.count("*").alias("n"), F.count_if(_clean_violations(event_type)).alias("bad")).first()
    assert row["n"] == len(lines)
    assert row["unknown"] == 0
    assert clean["n"] + row["quarantined"] == len(lines), "a record is neither bronze nor quarantined"
    assert clean["bad"] == 0, good.where(_clean_violations(event_type)).collect()


HOSTILE_LINES = [
    json.dumps(GOOD["listing_created"]).encode(),
    json.dumps(GOOD["listing_created"]).encode(),                                        # a duplicate delivery
    json.dumps({**GOOD["listing_created"], "event_id": "c:2", "title": "Caf\u00e9 cr\u00e8me"}).encode("latin-1"),
    json.dumps({**GOOD["listing_created"], "event_id": "c:3"}).encode("utf-16"),          # wrong encoding
    b"\xff\xfe\x00garbage\x80\x81\xc3(",                                                  # invalid UTF-8
    b"\x00" * 64,
    ('{"a":' * 5_000 + "1" + "}" * 5_000).encode(),                                        # deep JSON
    ("[" * 100_000 + "]" * 100_000).encode(),
    json.dumps({**GOOD["listing_created"], "event_id": "c:4", "description": "x" * 2_000_000}).encode(),
    json.dumps({**GOOD["listing_created"], "event_id": "c:5", "price": math.nan}, allow_nan=True).encode(),
    json.dumps({**GOOD["listing_created"], "event_id": "c:6", "seller": {"rating": math.inf}},
               allow_nan=True).encode(),
    json.dumps({**GOOD["listing_created"], "event_id": "c:7", "event_time": "0001-01-01T00:00:00.000Z"}).encode(),
    json.dumps({**GOOD["listing_created"], "event_id": "c:8", "event_time": "+275760-09-13T00:00:00.000Z"}).encode(),
    json.dumps({**GOOD["listing_created"], "event_id": "c:9", "listing_id": 2**80}).encode(),
    json.dumps({**GOOD["listing_created"], "event_id": "c:10", "style_tags": "vintage"}).encode(),
    b"",
    b"   ",
    b"null",
    json.dumps({**GOOD["listing_created"], "event_id": "c:11", "listing_id": 2}).encode(),
]


@pytest.mark.slow
def test_a_hostile_landing_file_is_ingested_without_loss(spark: SparkSession, tmp_path) -> None:
    cfg: Config = tiny_cfg(tmp_path / "state")
    landing = cfg.state_path(cfg.ingest.landing_dir)
    for event_type in schemas.LANDING:
        (landing / event_type).mkdir(parents=True)
    day = landing / "listing_created" / "landing_date=2025-01-10"
    day.mkdir()
    (day / "hostile.json").write_bytes(b"\n".join(HOSTILE_LINES) + b"\r\n")
    (landing / "listing_sold" / "landing_date=2025-01-10").mkdir()
    (landing / "listing_sold" / "landing_date=2025-01-10" / "sold.json").write_bytes(
        json.dumps(GOOD["listing_sold"]).encode() + b"\n" + b"\xc0\xaf{}\n"
        + json.dumps({**GOOD["listing_sold"], "event_id": "s:2", "price": math.inf}, allow_nan=True).encode())

    summary = ingest.run(spark, cfg)

    counts = summary.info["counts"]
    lines = spark.read.text(str(landing), recursiveFileLookup=True, pathGlobFilter="*.json")
    assert counts["read"] == lines.count()
    assert counts["read"] == counts["inserted"] + counts["quarantined"] + counts["duplicates"]
    bronze = delta_io.read(spark, table(cfg, "bronze.listings_raw"))
    assert sorted(r.event_id for r in bronze.select("event_id").collect()) == ["c:1", "c:11", "c:2"]
    quarantine = delta_io.read(spark, table(cfg, "bronze.quarantine"))
    assert quarantine.where("reason IS NULL").count() == 0
    reasons = {r.raw_payload[:40]: r.reason for r in quarantine.collect()}
    assert "implausible_timestamp" in reasons.values() and "non_finite_number" in reasons.values()
    # Every line read is in quarantine, or its event is in bronze (a duplicate delivery once).
    events = delta_io.read(spark, table(cfg, "bronze.sales_raw")).select("event_id").union(bronze.select("event_id"))
    unaccounted = (lines.join(quarantine.select(F.col("raw_payload").alias("value")), "value", "left_anti")
                   .withColumn("event_id", F.get_json_object("value", "$.event_id"))
                   .join(events, "event_id", "left_anti"))
    assert unaccounted.count() == 0, unaccounted.collect()
    # c:1 and c:2 both describe listing 1 (the later event wins in silver); c:11 is listing 2.
    assert sorted(r.listing_id for r in delta_io.read(spark, table(cfg, "silver.listings")).collect()) == [1, 2]
