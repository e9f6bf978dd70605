"""Silver: typed, deduplicated current state from bronze events.  Latest wins by event time, then id."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from pricing.platform import catalog


def latest_by(keys: list[str], df: DataFrame) -> DataFrame:
    """One row per key: the latest by ``event_time``, ties broken by ``event_id`` (deterministic)."""
    w = Window.partitionBy(*keys).orderBy(F.col("event_time").desc(), F.col("event_id").desc())
    return df.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def build_listings(created: DataFrame, changes: DataFrame, sold: DataFrame, removed: DataFrame) -> DataFrame:
    """Current state per listing: attributes, first and current price, status, sale."""
    base = latest_by(["listing_id"], created).select(
        "listing_id", "seller_id", "seller_rating", "seller_experience_years", "seller_is_shop",
        "title", "description", "brand",
        F.split("category_path", "/").getItem(0).alias("department"),
        F.split("category_path", "/").getItem(1).alias("category"),
        F.split("category_path", "/").getItem(2).alias("subcategory"),
        "condition", "size", "colour", "material", "style_tags", "shipping_paid_by",
        F.col("price").alias("list_price"), F.col("event_time").alias("created_at"),
    )
    price = latest_by(["listing_id"], changes).select(
        "listing_id", F.col("new_price").alias("changed_price"), F.col("event_time").alias("price_changed_at"))
    n_changes = changes.groupBy("listing_id").agg(F.countDistinct("event_id").alias("n_price_changes"))
    sale = latest_by(["listing_id"], sold).select(
        "listing_id", F.col("price").alias("sold_price"), F.col("event_time").alias("sold_at"))
    gone = latest_by(["listing_id"], removed).select("listing_id", F.col("event_time").alias("removed_at"))
    return (
        base.join(price, "listing_id", "left")
        .join(n_changes, "listing_id", "left")
        .join(sale, "listing_id", "left")
        .join(gone, "listing_id", "left")
        .select(
            *base.columns[:-2],
            "list_price",
            F.coalesce("changed_price", "list_price").alias("current_price"),
            F.coalesce("n_price_changes", F.lit(0)).alias("n_price_changes"),
            "created_at", "price_changed_at", "sold_at", "sold_price", "removed_at",
            F.when(F.col("sold_at").isNotNull(), "sold").when(F.col("removed_at").isNotNull(), "removed")
            .otherwise("active").alias("status"),
        )
    )


def build_sales(created: DataFrame, sold: DataFrame) -> DataFrame:
    """One row per sold listing (latest sale event wins), with the listing's seller and creation time."""
    sale = latest_by(["listing_id"], sold)
    listing = latest_by(["listing_id"], created).select("listing_id", "seller_id", F.col("event_time").alias("created_at"))
    return sale.join(listing, "listing_id", "inner").select(
        "listing_id", "seller_id", F.col("price").alias("sold_price"), "currency",
        F.col("event_time").alias("sold_at"), "created_at", F.col("event_id").alias("sale_event_id"),
    )


# ---- column comments (``delta_io`` writes them as Delta column comments) ---------------------------------------
LISTINGS_DOCS = {
    "listing_id": "Marketplace listing: one row each.",
    "seller_id": "Seller who created the listing.",
    "seller_rating": "Seller's rating when the listing was created.",
    "seller_experience_years": "Seller's years on the marketplace when the listing was created.",
    "seller_is_shop": "Whether the seller is a professional shop.",
    "title": "Listing title (latest listing_created event).",
    "description": "Listing description.",
    "brand": "Brand as the seller entered it (null when none).",
    "department": "First level of the category path.",
    "category": "Second level of the category path.",
    "subcategory": "Third level of the category path.",
    "condition": "Item condition (new_with_tags, like_new, good, used, fair).",
    "size": "Size label.",
    "colour": "Colour.",
    "material": "Material.",
    "style_tags": "Style tags the seller chose.",
    "shipping_paid_by": "Who pays shipping (buyer or seller).",
    "list_price": "Asking price when the listing was created.",
    "current_price": "Asking price now: the latest price change's new price, else list_price.",
    "n_price_changes": "Number of distinct price-change events.",
    "created_at": "When the listing was created (UTC).",
    "price_changed_at": "When the price last changed (UTC); null if never.",
    "sold_at": "When the listing sold (UTC); null if not sold.",
    "sold_price": "Price it sold for; null if not sold.",
    "removed_at": "When the seller removed the listing (UTC); null if not removed.",
    "status": "sold, removed or active (sold wins over removed).",
}
"""Column -> description of ``silver.listings`` (what :func:`build_listings` produces)."""

SALES_DOCS = {
    "listing_id": "Sold listing: one row each (the latest sale event wins).",
    "seller_id": "Seller of the listing.",
    "sold_price": "Price it sold for.",
    "currency": "ISO currency code of sold_price.",
    "sold_at": "When it sold (UTC).",
    "created_at": "When the listing was created (UTC).",
    "sale_event_id": "event_id of the sale event in bronze.sales_raw.",
}
"""Column -> description of ``silver.sales`` (what :func:`build_sales` produces)."""

COLUMN_DOCS: dict[catalog.Table, dict[str, str]] = {catalog.SILVER_LISTINGS: LISTINGS_DOCS,
                                                   catalog.SILVER_SALES: SALES_DOCS}
"""Silver table -> its column descriptions."""
