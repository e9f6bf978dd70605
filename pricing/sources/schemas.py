"""Explicit schemas of the landing events and the bronze tables (never inferred)."""

from __future__ import annotations

from pyspark.sql import types as T

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


QUARANTINE = _struct(
    ("event_type", S), ("source_file", S), ("raw_payload", S), ("reason", S), ("payload_hash", S),
    ("ingested_at", TS),
)

CONDITIONS = ("new_with_tags", "like_new", "good", "used", "fair")
CURRENCIES = ("GBP", "EUR", "USD")
MAX_PRICE = 100_000.0
MAX_TEXT = 5_000

# ---- column comments of the bronze tables (``delta_io`` writes them as Delta column comments) -------------------
_LINEAGE_DOCS = {
    "event_id": "Unique id of the event in the app's export; the MERGE key: each event is inserted once.",
    "event_type": "Event type as exported (listing_created, price_changed, listing_sold, listing_removed).",
    "listing_id": "Marketplace listing the event is about.",
    "event_time": "When the event happened in the app (UTC), parsed from the export's ISO-8601 timestamp.",
    "source_file": "Landing file the event was read from (full path under the landing folder).",
    "ingested_at": "When this run's ingest read the event (UTC): the watermark of incremental feature builds.",
}
BRONZE_DOCS: dict[str, dict[str, str]] = {
    "listing_created": _LINEAGE_DOCS | {
        "seller_id": "Seller who created the listing.",
        "title": "Listing title as the seller wrote it.",
        "description": "Listing description as the seller wrote it.",
        "brand": "Brand as the seller entered it (free text; null when none).",
        "category_path": "Category as department/category/subcategory.",
        "condition": f"Item condition: one of {', '.join(CONDITIONS)}.",
        "size": "Size label as the seller entered it.",
        "colour": "Colour as the seller entered it.",
        "material": "Material as the seller entered it.",
        "style_tags": "Style tags the seller chose.",
        "price": "Asking price at creation, in currency.",
        "currency": f"ISO currency code of the price: one of {', '.join(CURRENCIES)}.",
        "shipping_paid_by": "Who pays shipping (buyer or seller).",
        "seller_rating": "Seller's rating when the listing was created.",
        "seller_experience_years": "Seller's years on the marketplace when the listing was created.",
        "seller_is_shop": "Whether the seller is a professional shop.",
    },
    "price_changed": _LINEAGE_DOCS | {
        "old_price": "Asking price before the change, in currency.",
        "new_price": "Asking price after the change, in currency.",
        "currency": f"ISO currency code of the prices: one of {', '.join(CURRENCIES)}.",
    },
    "listing_sold": _LINEAGE_DOCS | {
        "price": "Price the listing sold for, in currency.",
        "currency": f"ISO currency code of the price: one of {', '.join(CURRENCIES)}.",
    },
    "listing_removed": dict(_LINEAGE_DOCS),
}
"""Landing event type -> column -> description of its bronze table (what ``landing.to_bronze`` produces)."""

QUARANTINE_DOCS = {
    "event_type": "Event type of the landing folder the record came from.",
    "source_file": "Landing file the record was read from.",
    "raw_payload": "The record exactly as landed (one line of the landing file).",
    "reason": "Why it was quarantined: the first failed check's code (malformed_json, wrong_type, missing_price, ...).",
    "payload_hash": "SHA-256 of source_file and raw_payload: the MERGE key, so a record is quarantined once.",
    "ingested_at": "When the ingest run read the record (UTC).",
}
"""Column -> description of ``bronze.quarantine``."""
