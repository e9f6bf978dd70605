"""Landing export: simulated events -> JSON lines, one file per event type and day, with the bad
records a real app export carries.

A share of events (``simulator.bad_record_rate``, about 1% by default) is damaged, each with one
fault kind.  Every damaged line is also recorded in ``truth.landing_faults`` with the outcome ingest
must give it (a quarantine reason code, ``duplicate`` or ``bronze``), so tests can check ingestion
against what was really injected.  Like the simulator, every choice is a hash of (seed, event id):
the same seed gives the same lines whatever the partition count.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pricing.sources.landing import TIMESTAMP_FORMAT
from pricing.world.simulator import pick, uniform

# fault kind -> (outcome ingest must give it, relative weight, event types it applies to or None for all)
FAULTS: dict[str, tuple[str, float, tuple[str, ...] | None]] = {
    "truncated_line": ("malformed_json", 2.0, None),
    "not_json": ("malformed_json", 1.0, None),
    "price_as_text": ("wrong_type", 1.0, ("listing_created", "listing_sold", "price_changed")),
    "listing_id_as_text": ("wrong_type", 0.5, None),
    "missing_event_id": ("missing_event_id", 1.0, None),
    "missing_listing_id": ("missing_listing_id", 1.0, None),
    "unparseable_timestamp": ("unparseable_timestamp", 1.0, None),
    "future_timestamp": ("future_timestamp", 1.0, None),
    "zero_price": ("non_positive_price", 1.0, ("listing_created", "listing_sold", "price_changed")),
    "negative_price": ("non_positive_price", 0.5, ("listing_created", "listing_sold", "price_changed")),
    "absurd_price": ("absurd_price", 0.5, ("listing_created", "listing_sold", "price_changed")),
    "missing_price": ("missing_price", 0.5, ("listing_created", "listing_sold", "price_changed")),
    "unknown_currency": ("unknown_currency", 1.0, ("listing_created", "listing_sold", "price_changed")),
    "unknown_condition": ("unknown_condition", 1.0, ("listing_created",)),
    "missing_seller_id": ("missing_seller_id", 0.5, ("listing_created",)),
    "oversized_text": ("oversized_text", 0.5, ("listing_created",)),
    "oversized_record": ("oversized_record", 0.3, ("listing_created",)),
    # Valid events delivered twice (the copy in a later day's file) or late (in a later day's file).
    "duplicate": ("duplicate", 3.0, None),
    "late_arrival": ("bronze", 2.0, None),
}
LATE_DAYS_MAX = 3

_PRICE = {"listing_created": "price", "listing_sold": "price", "price_changed": "new_price"}

FAULTS_DOCS = {
    "event_type": "Event type of the damaged line (listing_created, price_changed, listing_sold, listing_removed).",
    "event_id": "The simulated event's id (the damaged line itself may lack it or not parse).",
    "fault": "Fault kind injected (a key of pricing.world.export.FAULTS, e.g. truncated_line, zero_price, "
             "duplicate, late_arrival).",
    "expected": "Outcome ingest must give the line: a quarantine reason code, duplicate (dropped as a repeat) or "
                "bronze (accepted: a late arrival).",
    "raw_payload": "The landing line exactly as exported (for a duplicate, the repeated copy).",
    "landing_date": "Day whose file the line lands in (after the event's day for late arrivals and duplicate "
                    "copies).",
}
"""Column -> description of ``truth.landing_faults`` (the faults frame of :func:`export_lines`)."""


def kinds_for(event_type: str) -> list[str]:
    return [k for k, (_, _, types) in FAULTS.items() if types is None or event_type in types]


def _fault_column(seed: int, event_type: str, rate: float) -> Column:
    kinds = kinds_for(event_type)
    chosen = pick(kinds, [FAULTS[k][1] for k in kinds], uniform(seed, "fault_kind", "event_id"))
    return F.when(uniform(seed, "fault", "event_id") < rate, chosen)


def _damage_fields(event_type: str, fault: Column, payload_cols: list[str]) -> list[Column]:
    """Field-level faults, applied before serialisation (``to_json`` leaves out null fields)."""
    price = _PRICE.get(event_type)
    out = []
    for name in payload_cols:
        c = F.col(name)
        if name == "event_id":
            c = F.when(fault == "missing_event_id", F.lit(None)).otherwise(c)
        elif name == "listing_id":
            c = F.when(fault == "missing_listing_id", F.lit(None)).otherwise(c)
        elif name == "event_time":
            c = (F.when(fault == "unparseable_timestamp", F.lit("31/02/2025 25:61"))
                 .when(fault == "future_timestamp", F.date_format(
                     F.to_timestamp(c, TIMESTAMP_FORMAT) + F.expr("INTERVAL 75 YEARS"), TIMESTAMP_FORMAT))
                 .otherwise(c))
        elif name == price:
            c = (F.when(fault == "zero_price", F.lit(0.0)).when(fault == "negative_price", -c)
                 .when(fault == "absurd_price", F.lit(2.5e6)).when(fault == "missing_price", F.lit(None))
                 .otherwise(c))
        elif name == "currency":
            c = F.when(fault == "unknown_currency", F.lit("XBT")).otherwise(c)
        elif name == "condition":
            c = F.when(fault == "unknown_condition", F.lit("mint-ish")).otherwise(c)
        elif name == "seller_id":
            c = F.when(fault == "missing_seller_id", F.lit(None)).otherwise(c)
        elif name == "description":
            c = F.when(fault == "oversized_text", F.rpad(F.coalesce(c, F.lit("")), 6_000, " and more")).otherwise(c)
        elif name == "title":
            c = F.when(fault == "oversized_record", F.repeat(F.lit("spam "), 5000)).otherwise(c)
        out.append(c.alias(name))
    return out


def _damage_line(event_type: str, fault: Column, line: Column) -> Column:
    """Line-level faults, applied to the serialised JSON."""
    price = _PRICE.get(event_type, "price")
    return (
        F.when(fault == "truncated_line", F.substring(line, 1, F.greatest(F.lit(5), F.floor(F.length(line) / 2))))
        .when(fault == "not_json", F.concat(F.lit("<html>502 Bad Gateway</html> "), F.col("event_id")))
        .when(fault == "price_as_text", F.regexp_replace(line, f'"{price}":([-0-9.eE]+)', f'"{price}":"£$1"'))
        .when(fault == "listing_id_as_text", F.regexp_replace(line, '"listing_id":([0-9]+)', '"listing_id":"L$1"'))
        .otherwise(line)
    )


def export_lines(events: DataFrame, event_type: str, seed: int, rate: float) -> tuple[DataFrame, DataFrame]:
    """Events (with ``event_id``, ``event_time``, ``event_date``) -> (landing lines, injected faults).

    Lines have ``landing_date`` (the day's file they arrive in), ``event_id`` and ``fault`` (for
    evaluation only) and ``value`` (the JSON line: all that is written).  The faults frame has ``event_type, event_id, fault, expected, raw_payload, landing_date``.
    """
    payload_cols = [c for c in events.columns if c != "event_date"]
    fault = _fault_column(seed, event_type, rate) if rate > 0 else F.lit(None).cast("string")
    lag = (1 + F.floor(uniform(seed, "late", "event_id") * LATE_DAYS_MAX)).cast("int")
    df = events.withColumn("_fault", fault)
    line = F.to_json(F.struct(*_damage_fields(event_type, F.col("_fault"), payload_cols)))
    df = df.select(
        "event_id", "_fault",
        F.when(F.col("_fault") == "late_arrival", F.date_add(F.to_date("event_date"), lag))
        .otherwise(F.to_date("event_date")).alias("landing_date"),
        _damage_line(event_type, F.col("_fault"), line).alias("value"),
    )
    # The duplicate copy is re-sent in a later day's file, byte for byte.
    copies = df.where(F.col("_fault") == "duplicate").withColumn("landing_date", F.date_add("landing_date", lag))
    lines = df.unionByName(copies)
    expected = F.element_at(F.create_map(*[x for k, v in FAULTS.items() for x in (F.lit(k), F.lit(v[0]))]),
                            F.col("_fault"))
    faults = copies.unionByName(df.where(F.col("_fault").isNotNull() & (F.col("_fault") != "duplicate"))).select(
        F.lit(event_type).alias("event_type"), "event_id", F.col("_fault").alias("fault"),
        expected.alias("expected"), F.col("value").alias("raw_payload"), "landing_date",
    )
    return lines.select("landing_date", "event_id", F.col("_fault").alias("fault"), "value"), faults
