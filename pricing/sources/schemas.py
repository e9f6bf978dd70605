"""Explicit schemas of the landing events and the bronze tables (never inferred)."""

from __future__ import annotations

from pyspark.sql import types as T

from pricing.platform import catalog

S, D, L, B, TS = T.StringType(), T.DoubleType(), T.LongType(), T.BooleanType(), T.TimestampType()


def _struct(*fields: tuple[str, T.DataType]) -> T.StructType:
    return T.StructType([T.StructField(n, t, True) for n, t in fields])


_ENVELOPE = (("event_id", S), ("event_type", S), ("event_time", S), ("listing_id", L))

LANDING = {
    "listing_created": _struct(
        *_ENVELOPE, ("seller_id", L),
        ("seller", _struct(("rating", D), ("experience_years", D), ("is_shop", B))),
        ("title", S), ("description", S), ("brand", S), ("category_path", S), ("condition", S), ("size", S),
        ("colour", S), ("material", S), ("style_tags", T.ArrayType(S)), ("price", D), ("currency", S),
        ("shipping_paid_by", S),
    ),
    "price_changed": _struct(*_ENVELOPE, ("old_price", D), ("new_price", D), ("currency", S)),
    "listing_sold": _struct(*_ENVELOPE, ("price", D), ("currency", S)),
    "listing_removed": _struct(*_ENVELOPE),
}

# event type -> bronze logical table
BRONZE_TABLE = {
    "listing_created": catalog.BRONZE_LISTINGS_RAW,
    "price_changed": catalog.BRONZE_PRICE_CHANGES_RAW,
    "listing_sold": catalog.BRONZE_SALES_RAW,
    "listing_removed": catalog.BRONZE_REMOVALS_RAW,
}

QUARANTINE = _struct(
    ("event_type", S), ("source_file", S), ("raw_payload", S), ("reason", S), ("payload_hash", S),
    ("ingested_at", TS),
)

CONDITIONS = ("new_with_tags", "like_new", "good", "used", "fair")
CURRENCIES = ("GBP", "EUR", "USD")
MAX_PRICE = 100_000.0
MAX_TEXT = 5_000
