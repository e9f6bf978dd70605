"""comparable_sales: what the same and similar items sold for before a listing was listed.

One row per listing, as of its listing time (``as_of = created_at``, when a price suggestion is made), from
``features.product_matches`` (pairs in the listing's brand x category block) and ``silver.sales``:

* **same product**: its same-product matches listed strictly before ``as_of`` (supply), those sold strictly
  before ``as_of``, and the median of their sold prices;
* **nearest comparables**: of its matches sold strictly before ``as_of``, the ``k`` best ranked (same product
  first, then by similarity, then the most recent sale), their count, median sold price and mean similarity.

A sale at ``as_of`` itself, or after it, never counts.  A pair's similarity and decision depend only on
listings created no later than its ``known_at``, so no later listing changes a row; every listing has a row (zero counts, null medians when
nothing comparable sold before).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from features.asof import micros, rows_to_rebuild
from features.spec import FeatureSpec
from pricing.platform import catalog

_cols: list[tuple[str, T.DataType, str]] = [
    ("listing_id", T.LongType(), "Listing id."),
    ("as_of", T.TimestampType(), "The listing's created_at: every count uses only events strictly before it."),
    ("cmp_product_listed", T.LongType(), "Same-product matches listed strictly before as_of."),
    ("cmp_product_sold", T.LongType(), "Same-product matches sold strictly before as_of."),
    ("cmp_product_median_price", T.DoubleType(), "Median sold price of those sales (null when none)."),
    ("cmp_near_sold", T.LongType(), "Nearest comparables sold strictly before as_of (at most features.comparables_k: "
                                    "same product first, then by similarity, then the most recent)."),
    ("cmp_near_median_price", T.DoubleType(), "Median sold price of the nearest comparables (null when none)."),
    ("cmp_near_similarity", T.DoubleType(), "Mean title similarity of the nearest comparables (null when none)."),
]

SPEC = FeatureSpec(
    table=catalog.COMPARABLE_SALES,
    primary_keys=("listing_id",),
    timestamp_key="as_of",
    schema=T.StructType([T.StructField(n, t, True) for n, t, _ in _cols]),
    column_docs={n: d for n, _, d in _cols},
)

MODEL_FEATURES: tuple[str, ...] = tuple(n for n, _, _ in _cols if n.startswith("cmp_"))
"""Model inputs from this table (``features.comparables`` switches them on and off)."""


def _before(event: str, t: str) -> Column:
    """Strictly before, to the microsecond: an event at ``t`` itself is excluded."""
    return F.coalesce(micros(event) < micros(t), F.lit(False))


def compute(listings: DataFrame, sales: DataFrame, matches: DataFrame, k: int,
            since: Column | None = None) -> DataFrame:
    """``silver.listings`` + ``silver.sales`` + ``features.product_matches`` -> one row per listing.

    Incremental: with ``since``, only listings created on or after it.  Nothing a row depends on can
    arrive later than its own ``as_of`` and still count (sales strictly before it; pairs depend only on
    listings created no later than their ``known_at``), so the time slice covers every row new data can change.
    """
    queries = rows_to_rebuild(listings.select("listing_id", F.col("created_at").alias("as_of")), "as_of", since)
    other = listings.select(F.col("listing_id").alias("matched_listing_id"), F.col("created_at").alias("m_created_at"))
    sold = sales.select(F.col("listing_id").alias("matched_listing_id"), F.col("sold_at").alias("m_sold_at"),
                        F.col("sold_price").alias("m_price"))
    pairs = (queries.join(matches.select("listing_id", "matched_listing_id", "similarity", "same_product"), "listing_id")
             .join(other, "matched_listing_id").join(sold, "matched_listing_id", "left")
             .withColumn("sold_before", _before("m_sold_at", "as_of")))
    # One window and one aggregation per listing: sales before as_of rank first, the best k of them are the
    # nearest comparables.
    rank = F.row_number().over(Window.partitionBy("listing_id").orderBy(
        F.col("sold_before").desc(), F.col("same_product").desc(), F.col("similarity").desc(),
        F.col("m_sold_at").desc(), F.col("matched_listing_id")))
    pairs = pairs.withColumn("near", F.col("sold_before") & (rank <= k))
    same_sold = F.col("same_product") & F.col("sold_before")
    agg = pairs.groupBy("listing_id").agg(
        F.count_if(F.col("same_product") & _before("m_created_at", "as_of")).alias("cmp_product_listed"),
        F.count_if(same_sold).alias("cmp_product_sold"),
        F.median(F.when(same_sold, F.col("m_price"))).alias("cmp_product_median_price"),
        F.count_if("near").alias("cmp_near_sold"),
        F.median(F.when(F.col("near"), F.col("m_price"))).alias("cmp_near_median_price"),
        F.avg(F.when(F.col("near"), F.col("similarity"))).alias("cmp_near_similarity"))
    out = (queries.join(agg, "listing_id", "left")
           .fillna(0, subset=["cmp_product_listed", "cmp_product_sold", "cmp_near_sold"]))
    return SPEC.conform(out)
