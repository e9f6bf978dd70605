"""listing_features: one row per listing, as of the moment it was listed (``created_at``).

Seller history counts only sales that happened strictly before the listing's own time.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from features.spec import FeatureSpec

CATEGORICALS = ("brand", "department", "category", "subcategory", "condition", "size", "colour", "material",
                "shipping_paid_by", "style")
TEXT_FLAGS = {
    "txt_deadstock": r"deadstock|bnwt|never worn",
    "txt_rare": r"\brare\b|hard to find",
    "txt_damage": r"stain|hole|ripped|damage|faded|bobbl",
    "txt_bundle": r"\bbundle\b|job lot",
    "txt_new_with_tags": r"new with tags|\bnwt\b|bnwt",
    "txt_vintage": r"vintage|retro|90s|80s",
}

_cols: list[tuple[str, T.DataType, str]] = [
    ("listing_id", T.LongType(), "Listing id (primary key)."),
    ("created_at", T.TimestampType(), "When the listing was created; every feature is as of this instant."),
    ("seller_id", T.LongType(), "Seller id."),
    *[(c, T.StringType(), f"Listing attribute `{c}` as the seller entered it.") for c in CATEGORICALS],
    *[(f"{c}_code", T.IntegerType(), f"Stable integer code of `{c}` (hash bucket) for the model.")
      for c in CATEGORICALS],
    ("month", T.IntegerType(), "Calendar month of created_at (season)."),
    ("weekday", T.IntegerType(), "Day of week of created_at, 1 = Sunday."),
    ("seller_rating", T.DoubleType(), "Seller rating shown at listing time."),
    ("seller_experience_years", T.DoubleType(), "Seller account age in years at listing time."),
    ("seller_is_shop", T.IntegerType(), "1 if the seller is a shop."),
    ("seller_prior_listings", T.LongType(), "Listings the seller created strictly before created_at."),
    ("seller_prior_sales", T.LongType(), "Sales the seller made strictly before created_at."),
    ("seller_sell_through", T.DoubleType(), "prior sales / prior listings (null with no history)."),
    ("title_length", T.IntegerType(), "Characters in the title."),
    ("description_length", T.IntegerType(), "Characters in the description."),
    *[(f, T.IntegerType(), f"1 if title or description matches /{p}/.") for f, p in TEXT_FLAGS.items()],
]

SPEC = FeatureSpec(
    name="features.listing_features",
    primary_keys=("listing_id",),
    timestamp_key="created_at",
    schema=T.StructType([T.StructField(n, t, True) for n, t, _ in _cols]),
    description="Listing attributes, seller history and text flags, point-in-time correct as of created_at.",
    column_docs={n: d for n, _, d in _cols},
)

MODEL_FEATURES: tuple[str, ...] = tuple(
    [f"{c}_code" for c in CATEGORICALS]
    + ["month", "weekday", "seller_rating", "seller_experience_years", "seller_is_shop", "seller_prior_listings",
       "seller_prior_sales", "seller_sell_through", "title_length", "description_length", *TEXT_FLAGS]
)


def code(col: str) -> Column:
    """A stable, vocabulary-free integer code (the same on every cluster and every run)."""
    return F.when(F.col(col).isNotNull(), F.pmod(F.xxhash64(F.lower(F.trim(F.col(col)))), F.lit(1 << 20))).cast("int")


def with_seller_history(sales: DataFrame):  # type: ignore[no-untyped-def]
    """Adds the seller's prior listings and sales strictly before each listing's ``created_at``.

    Sources without sellers use a negative ``seller_id`` (e.g. -1 for Mercari): those listings get no
    history (null), rather than one giant pseudo-seller that would also skew a single window partition.
    """

    def step(listings: DataFrame) -> DataFrame:
        known = F.col("seller_id") >= 0
        events = listings.where(known).select("seller_id", F.col("created_at").alias("ts"), F.lit(1).alias("is_listing"),
                                 F.lit(0).alias("is_sale"), "listing_id").unionByName(
            sales.where(known).select("seller_id", F.col("sold_at").alias("ts"), F.lit(0).alias("is_listing"),
                         F.lit(1).alias("is_sale"), F.lit(None).cast("long").alias("listing_id")))
        # A range frame ending at -1 microsecond: everything strictly before this instant, ties excluded.
        w = (Window.partitionBy("seller_id").orderBy(F.col("ts").cast("timestamp").cast("double") * 1_000_000)
             .rangeBetween(Window.unboundedPreceding, -1))
        hist = (events.withColumn("seller_prior_listings", F.sum("is_listing").over(w))
                .withColumn("seller_prior_sales", F.sum("is_sale").over(w))
                .where("is_listing = 1")
                .select("listing_id", F.coalesce("seller_prior_listings", F.lit(0)).alias("seller_prior_listings"),
                        F.coalesce("seller_prior_sales", F.lit(0)).alias("seller_prior_sales")))
        return listings.join(hist, "listing_id", "left")

    return step


def with_text_flags(df: DataFrame) -> DataFrame:
    text = F.lower(F.concat_ws(" ", F.col("title"), F.col("description")))
    for name, pattern in TEXT_FLAGS.items():
        df = df.withColumn(name, F.when(text.rlike(pattern), 1).otherwise(0))
    return df.withColumn("title_length", F.length("title")).withColumn("description_length", F.length("description"))


def compute(listings: DataFrame, sales: DataFrame) -> DataFrame:
    """``silver.listings`` + ``silver.sales`` -> listing features as of each listing's ``created_at``."""
    df = (
        listings.withColumn("style", F.try_element_at("style_tags", F.lit(1)))
        .transform(with_seller_history(sales))
        .transform(with_text_flags)
        .withColumn("month", F.month("created_at"))
        .withColumn("weekday", F.dayofweek("created_at"))
        .withColumn("seller_is_shop", F.col("seller_is_shop").cast("int"))
        .withColumn("seller_sell_through", F.when(F.col("seller_prior_listings") > 0,
                                                  F.col("seller_prior_sales") / F.col("seller_prior_listings")))
    )
    for c in CATEGORICALS:
        df = df.withColumn(f"{c}_code", code(c))
    return SPEC.conform(df)
