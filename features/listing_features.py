"""listing_features: one row per listing and (re)price time, every feature as of that instant (``as_of``).

A listing gets a ``listed`` row at ``created_at`` and a ``repriced`` row at each later price change while it
was still on sale.  Seller history counts only listings and sales strictly before ``as_of``.  Text becomes
normalised tokens, a hashed term-frequency vector (stateless, so it needs no vocabulary that could leak
later listings' words) and flags for strong phrases.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from features.asof import rows_to_rebuild, window_before
from features.spec import FeatureSpec
from pricing.platform import catalog

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
STOPWORDS = ("a", "an", "and", "the", "in", "on", "of", "for", "to", "with", "is", "it", "size", "no", "yet",
             "description")
TEXT_HASH_DIM = 1 << 12
"""Buckets of the hashed term-frequency vector (``text_hash_indices`` / ``text_hash_values``)."""

_cols: list[tuple[str, T.DataType, str]] = [
    ("listing_id", T.LongType(), "Listing id."),
    ("as_of", T.TimestampType(), "When this row's features were taken: created_at, or a later price change."),
    ("snapshot", T.StringType(), "listed (at created_at) or repriced (at a price change)."),
    ("created_at", T.TimestampType(), "When the listing was created."),
    ("seller_id", T.LongType(), "Seller id (negative: source without sellers)."),
    *[(c, T.StringType(), f"Listing attribute `{c}` as the seller entered it.") for c in CATEGORICALS],
    *[(f"{c}_code", T.IntegerType(), f"Stable integer code of `{c}` (hash bucket) for the model.")
      for c in CATEGORICALS],
    ("asking_price", T.DoubleType(), "The seller's asking price at as_of."),
    ("n_price_changes", T.IntegerType(), "Price changes up to and including as_of."),
    ("days_since_listing", T.DoubleType(), "Days from created_at to as_of (0 for the listed row)."),
    ("month", T.IntegerType(), "Calendar month of as_of."),
    ("season", T.IntegerType(), "Season of as_of: 1 winter (Dec-Feb), 2 spring, 3 summer, 4 autumn."),
    ("weekday", T.IntegerType(), "Day of week of as_of, 1 = Sunday."),
    ("seller_rating", T.DoubleType(), "Seller rating shown at listing time."),
    ("seller_experience_years", T.DoubleType(), "Seller account age in years at listing time."),
    ("seller_is_shop", T.IntegerType(), "1 if the seller is a shop."),
    ("seller_prior_listings", T.LongType(), "Listings the seller created strictly before as_of."),
    ("seller_prior_sales", T.LongType(), "Sales the seller made strictly before as_of."),
    ("seller_sell_through", T.DoubleType(), "prior sales / prior listings (null with no history)."),
    ("title_length", T.IntegerType(), "Characters in the title."),
    ("description_length", T.IntegerType(), "Characters in the description."),
    ("text_tokens", T.ArrayType(T.StringType()), "Normalised title + description tokens (lower case, "
                                                  "letters and digits, stopwords removed)."),
    ("text_hash_indices", T.ArrayType(T.IntegerType()),
     f"Sparse hashed term frequency: sorted bucket indices in [0, {TEXT_HASH_DIM})."),
    ("text_hash_values", T.ArrayType(T.DoubleType()), "Sparse hashed term frequency: count per index."),
    *[(f, T.IntegerType(), f"1 if title or description matches /{p}/.") for f, p in TEXT_FLAGS.items()],
]

TEXT_COLUMNS = ("text_tokens", "text_hash_indices", "text_hash_values")
"""The text as arrays, for text models and matching: no input of the price or the demand model, whose jobs leave
them out of the rows they cache or send to Python (about a sixth of the training table's bytes at 1M listings)."""

SPEC = FeatureSpec(
    table=catalog.LISTING_FEATURES,
    primary_keys=("listing_id", "as_of"),
    timestamp_key="as_of",
    schema=T.StructType([T.StructField(n, t, True) for n, t, _ in _cols]),
    column_docs={n: d for n, _, d in _cols},
)

MODEL_FEATURES: tuple[str, ...] = tuple(
    [f"{c}_code" for c in CATEGORICALS]
    + ["month", "weekday", "seller_rating", "seller_experience_years", "seller_is_shop", "seller_prior_listings",
       "seller_prior_sales", "seller_sell_through", "title_length", "description_length", *TEXT_FLAGS]
)
"""Model inputs taken from this table (the training set adds market features)."""


def code(col: str) -> Column:
    """A stable, vocabulary-free integer code (the same on every cluster and every run)."""
    return F.when(F.col(col).isNotNull(), F.pmod(F.xxhash64(F.lower(F.trim(F.col(col)))), F.lit(1 << 20))).cast("int")


def with_seller_history(listings: DataFrame, sales: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Adds the seller's listings and sales strictly before each row's ``as_of``.

    ``listings`` (all of them, with ``seller_id`` and ``created_at``) and ``sales`` (``seller_id``,
    ``sold_at``) are the seller's history; the frame's rows are the queries.  Sources without sellers use
    a negative ``seller_id`` (e.g. -1 for Mercari): those rows get no history (null), rather than one giant
    pseudo-seller that would also skew a single window partition.
    """

    def step(rows: DataFrame) -> DataFrame:
        known = F.col("seller_id") >= 0
        q = rows.where(known).select("seller_id", "listing_id", F.col("as_of").alias("ts"), F.lit(0).alias("is_listing"),
                                     F.lit(0).alias("is_sale"), F.lit(True).alias("is_query"))
        sellers = q.select("seller_id").distinct()
        hist = (listings.join(sellers, "seller_id", "left_semi")
                .select("seller_id", F.lit(None).cast("long").alias("listing_id"), F.col("created_at").alias("ts"),
                        F.lit(1).alias("is_listing"), F.lit(0).alias("is_sale"), F.lit(False).alias("is_query"))
                .unionByName(sales.join(sellers, "seller_id", "left_semi").select(
                    "seller_id", F.lit(None).cast("long").alias("listing_id"), F.col("sold_at").alias("ts"),
                    F.lit(0).alias("is_listing"), F.lit(1).alias("is_sale"), F.lit(False).alias("is_query"))))
        w = window_before(["seller_id"], "ts")
        counted = (q.unionByName(hist)
                   .withColumn("seller_prior_listings", F.coalesce(F.sum("is_listing").over(w), F.lit(0)).cast("long"))
                   .withColumn("seller_prior_sales", F.coalesce(F.sum("is_sale").over(w), F.lit(0)).cast("long"))
                   .where("is_query")
                   .select("listing_id", F.col("ts").alias("as_of"), "seller_prior_listings", "seller_prior_sales"))
        return rows.join(counted, ["listing_id", "as_of"], "left")

    return step


def _run_lengths(sorted_ids: Column) -> Column:
    """``struct(i, v)``: the distinct values of a sorted int array and how often each occurs, in one pass.

    A fold over the array (``aggregate``) that extends the last count or starts a new one: per-row work, no
    shuffle.  (An explode + groupBy per token shuffled every token of the catalogue: 2x slower at 300k listings
    and worse beyond.)"""
    init = F.struct(F.array().cast("array<int>").alias("i"), F.array().cast("array<double>").alias("v"))

    def step(acc: Column, x: Column) -> Column:
        n = F.size(acc["i"])
        last = F.greatest(n, F.lit(1))
        repeat = (n > 0) & (F.element_at(acc["i"], last) == x)
        bumped = F.concat(F.slice(acc["v"], 1, n - 1), F.array(F.element_at(acc["v"], last) + 1.0))
        return F.when(repeat, F.struct(acc["i"].alias("i"), bumped.alias("v"))).otherwise(
            F.struct(F.concat(acc["i"], F.array(x)).alias("i"), F.concat(acc["v"], F.array(F.lit(1.0))).alias("v")))

    return F.aggregate(sorted_ids, init, step)


def with_text_features(df: DataFrame) -> DataFrame:
    """Flags, lengths, normalised tokens and the hashed term-frequency vector of title + description.

    The tokens are materialised as a column first, then hashed, sorted and run-length counted per row
    (:func:`_run_lengths`), so no lambda re-evaluates the tokenisation per element.
    """
    text = F.lower(F.concat_ws(" ", F.col("title"), F.col("description")))
    for name, pattern in TEXT_FLAGS.items():
        df = df.withColumn(name, F.when(text.rlike(pattern), 1).otherwise(0))
    words = F.split(F.trim(F.regexp_replace(text, r"[^\p{L}\p{N}]+", " ")), " ")
    stop = F.array(*[F.lit(w) for w in STOPWORDS])
    buckets = F.array_sort(F.transform("text_tokens", lambda t: F.pmod(F.xxhash64(t), F.lit(TEXT_HASH_DIM)).cast("int")))
    return (df.withColumn("title_length", F.length("title"))
            .withColumn("description_length", F.length("description"))
            .withColumn("text_tokens", F.filter(words, lambda t: (F.length(t) >= 2) & ~F.array_contains(stop, t)))
            .withColumn("_tf", _run_lengths(buckets))
            .withColumn("text_hash_indices", F.col("_tf.i"))
            .withColumn("text_hash_values", F.col("_tf.v"))
            .drop("_tf"))


def snapshots(listings: DataFrame, price_changes: DataFrame) -> DataFrame:
    """(listing_id, as_of, snapshot, asking_price, n_price_changes): the listed row and one per reprice.

    A price change counts only while the listing was on sale (after creation, before a sale or removal).
    """
    listed = listings.select("listing_id", F.col("created_at").alias("as_of"), F.lit("listed").alias("snapshot"),
                             F.col("list_price").alias("asking_price"), F.lit(0).alias("n_price_changes"))
    life = listings.select("listing_id", "created_at", "sold_at", "removed_at")
    order = F.row_number().over(
        Window.partitionBy("listing_id")
        .orderBy("event_time", "event_id"))
    changes = (
        price_changes.join(life, "listing_id")
        .where((F.col("event_time") > F.col("created_at"))
               & (F.col("sold_at").isNull() | (F.col("event_time") < F.col("sold_at")))
               & (F.col("removed_at").isNull() | (F.col("event_time") < F.col("removed_at"))))
        .withColumn("n_price_changes", order)
        # Two changes at the same instant: the later one (by event id) is the price at that instant.
        .withColumn("_last", F.row_number().over(
            Window.partitionBy("listing_id", "event_time")
            .orderBy(F.col("event_id").desc())))
        .where("_last = 1")
        .select("listing_id", F.col("event_time").alias("as_of"), F.lit("repriced").alias("snapshot"),
                F.col("new_price").alias("asking_price"), "n_price_changes")
    )
    return listed.unionByName(changes)


def season(ts: Column) -> Column:
    return (F.floor((F.month(ts) % 12) / 3) + 1).cast("int")


def compute(listings: DataFrame, sales: DataFrame, price_changes: DataFrame,
            since: Column | None = None) -> DataFrame:
    """``silver.listings`` + ``silver.sales`` + price change events -> one row per listing and (re)price time.

    Incremental: with ``since`` (a timestamp), only rows with ``as_of >= since`` are produced (history still
    comes from all the data).  Every input a row depends on (its listing, its price changes, its sale or
    removal ending the reprice rows, its seller's events) happens at or before ``as_of``, so the time slice
    alone covers all the rows that new data can change.
    """
    snaps = rows_to_rebuild(snapshots(listings, price_changes), "as_of", since)
    text = listings.select("listing_id", "title", "description").join(
        snaps.select("listing_id").distinct(), "listing_id", "left_semi").transform(with_text_features)
    df = (
        snaps.join(listings.drop("current_price", "n_price_changes", "title", "description"), "listing_id")
        .withColumn("style", F.try_element_at("style_tags", F.lit(1)))
        .transform(with_seller_history(listings, sales))
        .join(text, "listing_id")
        .withColumn("days_since_listing",
                    (F.unix_micros("as_of") - F.unix_micros("created_at")) / F.lit(86_400 * 1_000_000))
        .withColumn("month", F.month("as_of"))
        .withColumn("season", season(F.col("as_of")))
        .withColumn("weekday", F.dayofweek("as_of"))
        .withColumn("seller_is_shop", F.col("seller_is_shop").cast("int"))
        .withColumn("seller_sell_through", F.when(F.col("seller_prior_listings") > 0,
                                                  F.col("seller_prior_sales") / F.col("seller_prior_listings")))
    )
    for c in CATEGORICALS:
        df = df.withColumn(f"{c}_code", code(c))
    return SPEC.conform(df)
