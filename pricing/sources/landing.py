"""Pure parsing and checking of landing records: raw JSON line -> typed bronze row or quarantine row."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.sources import schemas

MANIFEST = "_simulator.json"
"""The export's manifest in the landing folder: the simulated world's settings, including its price
exploration design (which share of asking prices was randomised, and by how much)."""
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
MIN_EVENT_TIME = "2000-01-01 00:00:00"
"""Events stamped before this are quarantined (``implausible_timestamp``): no marketplace export goes back
further, and year-1 or epoch-0 stamps are defaults of broken clients (year 1 cannot even become a Python
datetime)."""


def _reasons(event_type: str) -> list[tuple[str, Column]]:
    """(reason code, condition that is true when the record is bad), checked in order."""
    e = F.col("e")
    # A field present in the raw JSON but null once parsed had the wrong type ("twelve" for a price).
    typed = [f.name for f in schemas.LANDING[event_type].fields
             if isinstance(f.dataType, T.NumericType | T.BooleanType | T.ArrayType)]
    wrong_type = F.lit(False)
    for name in typed:
        wrong_type = wrong_type | (F.get_json_object("raw_payload", f"$.{name}").isNotNull() & e[name].isNull())
    checks: list[tuple[str, Column]] = [
        ("malformed_json", e.isNull()),
        ("wrong_type", wrong_type),
        ("oversized_record", F.length("raw_payload") > 4 * schemas.MAX_TEXT),
        ("missing_event_id", e["event_id"].isNull() | (F.trim(e["event_id"]) == "")),
        ("missing_listing_id", e["listing_id"].isNull()),
        ("wrong_event_type", e["event_type"].isNull() | (e["event_type"] != event_type)),
        ("unparseable_timestamp", F.col("event_ts").isNull()),
        ("future_timestamp", F.col("event_ts") > F.col("ingested_at") + F.expr("INTERVAL 1 DAY")),
        ("implausible_timestamp", F.col("event_ts") < F.lit(MIN_EVENT_TIME).cast("timestamp")),
    ]
    price_field = {"listing_created": "price", "listing_sold": "price", "price_changed": "new_price"}.get(event_type)
    if price_field:
        p = e[price_field]
        checks += [
            ("missing_price", p.isNull()),
            ("non_positive_price", p <= 0),
            ("absurd_price", p > schemas.MAX_PRICE),
            ("unknown_currency", ~F.coalesce(e["currency"], F.lit("")).isin(*schemas.CURRENCIES)),
        ]
    if event_type == "listing_created":
        checks += [
            ("missing_seller_id", e["seller_id"].isNull()),
            ("unknown_condition", ~F.coalesce(e["condition"], F.lit("")).isin(*schemas.CONDITIONS)),
            ("oversized_text", (F.length(e["title"]) > 500) | (F.length(e["description"]) > schemas.MAX_TEXT)),
        ]
    # JSON NaN / Infinity (and numbers beyond a double's range) parse as non-finite doubles: a price is caught
    # above (absurd or non-positive), any other number (a seller rating, an old price) here.
    doubles = _double_fields(schemas.LANDING[event_type], e)
    if doubles:
        non_finite = F.lit(False)
        for c in doubles:
            non_finite = non_finite | F.isnan(c) | (F.abs(c) == F.lit(float("inf")))
        checks.append(("non_finite_number", non_finite))
    return checks


def _double_fields(schema: T.StructType, parent: Column) -> list[Column]:
    out: list[Column] = []
    for f in schema.fields:
        if isinstance(f.dataType, T.DoubleType):
            out.append(parent[f.name])
        elif isinstance(f.dataType, T.StructType):
            out += _double_fields(f.dataType, parent[f.name])
    return out


def parse(event_type: str) -> Callable[[DataFrame], DataFrame]:
    """``(raw_payload, source_file, ingested_at)`` -> adds ``e`` (parsed struct), ``event_ts`` and ``reason``."""
    schema = schemas.LANDING[event_type]

    def step(df: DataFrame) -> DataFrame:
        parsed = df.withColumn("e", F.from_json("raw_payload", schema, {"mode": "PERMISSIVE"}))
        # from_json yields a struct of nulls (not null) for some malformed lines; treat "nothing parsed" as malformed.
        any_field = F.coalesce(*[F.col("e")[f.name].cast("string") for f in schema.fields])
        parsed = parsed.withColumn("e", F.when(any_field.isNotNull(), F.col("e")))
        parsed = parsed.withColumn("event_ts", F.try_to_timestamp(F.col("e")["event_time"], F.lit(TIMESTAMP_FORMAT)))
        reason: Column = F.lit(None).cast(T.StringType())
        for code, bad in reversed(_reasons(event_type)):
            reason = F.when(F.coalesce(bad, F.lit(False)), F.lit(code)).otherwise(reason)
        return parsed.withColumn("reason", reason)

    return step


def to_bronze(event_type: str) -> Callable[[DataFrame], DataFrame]:
    """Good parsed records -> the bronze row (flat, typed, with lineage columns)."""

    def step(df: DataFrame) -> DataFrame:
        fields = [f.name for f in schemas.LANDING[event_type].fields if f.name not in ("event_time", "seller")]
        cols = [F.col("e")[f].alias(f) for f in fields]
        if event_type == "listing_created":
            cols += [F.col("e")["seller"][f].alias(f"seller_{f}") for f in ("rating", "experience_years", "is_shop")]
        return df.select(*cols, F.col("event_ts").alias("event_time"), "source_file", "ingested_at")

    return step


def bronze_schema(spark: SparkSession, event_type: str) -> T.StructType:
    """The bronze table's schema for an event type (what :func:`to_bronze` produces)."""
    empty = spark.createDataFrame([], "raw_payload string, source_file string, ingested_at timestamp")
    return empty.transform(parse(event_type)).transform(to_bronze(event_type)).schema


def to_quarantine(event_type: str) -> Callable[[DataFrame], DataFrame]:
    def step(df: DataFrame) -> DataFrame:
        return df.select(
            F.lit(event_type).alias("event_type"), "source_file", "raw_payload", "reason",
            F.sha2(F.concat_ws("|", "source_file", "raw_payload"), 256).alias("payload_hash"), "ingested_at",
        )

    return step
