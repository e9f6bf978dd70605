"""training_set: one row per listing, with the features known at its listing time and the labels after it.

``as_of`` is the listing's ``created_at``: the moment a price suggestion is made.  Each feature table is
joined *as of* that instant (the latest row stamped at or before it, never a later one):

* ``listing_features`` -> the listing's own ``listed`` row;
* ``market_stats`` -> the brand x category and category x condition segments' stamp of that day, which
  summarises only sales strictly before the day began;
* ``comparable_sales`` (when ``features.comparables``) -> the listing's row stamped at that instant: sold
  prices of its same-product matches and nearest comparables, strictly before it.

Beside them, the **brand premium** (:func:`brand_premium`): how far above or below its segment the brand
sells, from its sales in every category strictly before ``as_of``.  The brand x category statistics alone
shrink a rare brand's few sales in one category toward the category, and so lose what its sales in other
categories say about it.

Labels (what it sold for, and whether it sold within N days) come strictly after ``as_of``.  Active
listings are kept too (labels null): batch scoring reads them from here, so training and serving share
one feature assembly.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features import comparables as comparables_spec
from features import market_stats
from features.asof import as_of_join, rows_to_rebuild, window_before
from features.listing_features import MODEL_FEATURES as LISTING_MODEL_FEATURES
from features.listing_features import SPEC as LISTING_SPEC
from features.spec import FeatureSpec
from pricing.platform import catalog

SEGMENTS = {"bc": "brand_category", "cc": "category_condition"}
"""Column prefix -> market_stats level joined for each listing."""
_STATS = [f for f in market_stats.SPEC.schema.fields
          if f.name.startswith(("n_sales_", "p25_", "p50_", "p75_", "sell_through_"))]
_market = [(f"mkt_{p}_{f.name}", f.dataType, f"{market_stats.SPEC.column_docs[f.name]} Segment: {lv}, as of as_of.")
           for p, lv in SEGMENTS.items() for f in _STATS]
_brand = [
    ("mkt_brand_premium", T.DoubleType(),
     "The brand's price premium, as of as_of: the mean log ratio of its sold prices to their category x condition's "
     "90-day median sold price (as of each sold listing's own listing time), over the brand's sales in the "
     "features.brand_window_days days strictly before as_of, shrunk toward 0 by features.shrinkage_k pseudo-sales "
     f"(sum / (n + k)); 0 with no such sales. Unbranded listings form the brand '{market_stats.NO_BRAND}'."),
    ("mkt_brand_sales", T.LongType(), "The brand's sales counted in mkt_brand_premium (n)."),
]
_labels = [
    ("sold_price", T.DoubleType(), "Label: price the listing sold for (null if unsold)."),
    ("sold_at", T.TimestampType(), "When it sold (null if unsold); always after as_of."),
    ("sold_within_days", T.IntegerType(), "Label: 1 if it sold within features.sold_within_days of as_of."),
    ("status", T.StringType(), "Current status: active, sold or removed (for selecting rows, never a feature)."),
]

_comparable = [(f.name, f.dataType, f"{comparables_spec.SPEC.column_docs[f.name]} Null when features.comparables "
                                  "is off.") for f in comparables_spec.SPEC.schema.fields if f.name.startswith("cmp_")]

SPEC = FeatureSpec(
    table=catalog.TRAINING_SET,
    primary_keys=("listing_id",),
    timestamp_key="as_of",
    schema=T.StructType([*LISTING_SPEC.schema.fields,
                         *[T.StructField(n, t, True) for n, t, _ in _market + _brand + _comparable + _labels]]),
    column_docs={**LISTING_SPEC.column_docs, **{n: d for n, _, d in _market + _brand + _comparable + _labels}},
)

MODEL_FEATURES: tuple[str, ...] = (
    *LISTING_MODEL_FEATURES,
    *[f"mkt_{p}_{q}_{w}d" for p in SEGMENTS for w in (30, 90) for q in ("p25", "p50", "p75")],
    *[f"mkt_{p}_{s}_{w}d" for p in SEGMENTS for w in (7, 30, 90) for s in ("n_sales", "sell_through")],
    "mkt_bc_p50_7d", "mkt_cc_p50_7d",
    *[n for n, _, _ in _brand],
    *comparables_spec.MODEL_FEATURES,
)
"""What the price model reads from a training_set row (see :func:`model_features`)."""
COMPARABLE_FEATURES: tuple[str, ...] = comparables_spec.MODEL_FEATURES
BRAND_FEATURES: tuple[str, ...] = tuple(n for n, _, _ in _brand)
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {"brand_premium": BRAND_FEATURES, "comparables": COMPARABLE_FEATURES}
"""Groups of model features whose worth the training ablation measures (``train.ablation``), by refitting without
each."""


def model_features(comparables: bool) -> tuple[str, ...]:
    """The model's inputs: every :data:`MODEL_FEATURES`, less the comparable-sales ones when ``comparables``
    is off (``features.comparables``), so that one training table trains either model on the same split."""
    return MODEL_FEATURES if comparables else tuple(f for f in MODEL_FEATURES if f not in COMPARABLE_FEATURES)


def brand_premium(queries: DataFrame, listings: DataFrame, stats: DataFrame, shrinkage_k: float,
                  window_days: int) -> DataFrame:
    """``mkt_brand_premium`` and ``mkt_brand_sales`` for each ``queries`` row (``listing_id, as_of, _brand``).

    Each sale of ``listings`` (``silver.listings``: sold price and time) gives its brand one ratio, known from its
    ``sold_at`` on: log1p(sold price) - log1p(the category x condition's ``p50_90d`` in ``stats``, stamped on the
    sold listing's own listing day, so itself known before the sale).  A query sums the ratios of its brand's sales
    in ``[as_of - window_days, as_of)`` (a sale at ``as_of`` itself does not count) and divides by n + k: a brand
    with few sales is shrunk toward the segment (premium 0), as the market statistics are.  A category's mix of
    brands is what the brand x category statistics already see; this is the brand's effect across categories.
    """
    sold = listings.where(F.col("sold_at").isNotNull() & (F.col("sold_price") > 0)).select(
        "listing_id", F.coalesce("brand", F.lit(market_stats.NO_BRAND)).alias("_brand"), "category", "condition",
        F.col("created_at").alias("as_of"), "sold_at", "sold_price")
    segment = stats.where(F.col("level") == "category_condition").select(
        "category", "condition", F.col("as_of").alias("stat_as_of"), F.col("p50_90d").alias("_ref"))
    ratios = (as_of_join(sold, segment, ["category", "condition"], "as_of", "stat_as_of", left_keys=["listing_id"],
                         lookback_days=1)
              .where(F.col("_ref") > 0)
              .select("_brand", F.col("sold_at").alias("_t"), F.lit(None).cast("long").alias("listing_id"),
                      (F.log1p("sold_price") - F.log1p("_ref")).alias("_ratio")))
    # A window's sum is the running sum at as_of less the running sum at as_of - window_days: running sums
    # (unbounded preceding) cost one pass per brand, where Spark's sliding range frame re-adds its whole frame for
    # every row (quadratic in a large brand's sales).
    start = F.col("as_of") - F.make_interval(days=F.lit(window_days))
    asks = [queries.select("_brand", t.alias("_t"), "listing_id", F.lit(None).cast("double").alias("_ratio"),
                           F.lit(sign).alias("_sign")) for t, sign in ((F.col("as_of"), 1), (start, -1))]
    w = window_before(["_brand"], "_t")
    running = (ratios.withColumn("_sign", F.lit(0)).unionByName(asks[0]).unionByName(asks[1])
               .withColumn("_n", F.count("_ratio").over(w))
               .withColumn("_s", F.coalesce(F.sum("_ratio").over(w), F.lit(0.0)))
               .where(F.col("listing_id").isNotNull()))
    n, total = F.sum(F.col("_sign") * F.col("_n")), F.sum(F.col("_sign") * F.col("_s"))
    return (running.groupBy("listing_id")
            .agg(n.alias("mkt_brand_sales"), F.when(n > 0, total / (n + F.lit(shrinkage_k))).otherwise(F.lit(0.0))
                 .alias("mkt_brand_premium"))
            .select("listing_id", "mkt_brand_premium", "mkt_brand_sales"))


def compute(features: DataFrame, stats: DataFrame, listings: DataFrame, sold_within_days: int, *,
            shrinkage_k: float, brand_window_days: int, since: Column | None = None,
            touched: DataFrame | None = None, comparables: DataFrame | None = None) -> DataFrame:
    """``listing_features`` + ``market_stats`` (+ ``comparable_sales``) + ``silver.listings`` (labels) ->
    training rows.  ``comparables`` None: the comparable-sales columns are null.  ``shrinkage_k`` and
    ``brand_window_days`` shape the brand premium (:func:`brand_premium`).

    Incremental: with ``since``, only listings created on or after it, plus those in ``touched``.  A row's brand
    premium reads only sales before its ``as_of``, and their segments' statistics stamped before those sales, so
    nothing ingested later than the rows left alone can change them.
    """
    base = rows_to_rebuild(listings.select("listing_id", F.col("created_at").alias("as_of"), "brand", "category",
                                           "condition", "sold_price", "sold_at", "status"), "as_of", since, touched
                           ).withColumn("_brand", F.coalesce("brand", F.lit(market_stats.NO_BRAND)))
    premium = brand_premium(base.select("listing_id", "as_of", "_brand"), listings, stats, shrinkage_k,
                            brand_window_days)
    feats = features.drop("brand", "category", "condition", "created_at").withColumnRenamed("as_of", "feature_as_of")
    df = as_of_join(base, feats, ["listing_id"], "as_of", "feature_as_of", left_keys=["listing_id"])
    for prefix, level in SEGMENTS.items():
        keys = list(market_stats.LEVELS[level])
        seg = stats.where(F.col("level") == level).select(
            *[F.col(k).alias(f"_{k}") if k == "brand" else F.col(k) for k in keys], "as_of",
            *[f.name for f in _STATS]).withColumnRenamed("as_of", "stat_as_of")
        on = ["_brand" if k == "brand" else k for k in keys]
        df = as_of_join(df, seg, on, "as_of", "stat_as_of", left_keys=["listing_id"], lookback_days=1,
                        prefix=f"mkt_{prefix}_")
    df = df.join(premium, "listing_id", "left")
    if comparables is not None:
        # The row stamped exactly at the listing's time (comparable_sales has one per listing, at created_at).
        cmp = comparables.select(F.col("listing_id").alias("_cmp_id"), F.col("as_of").alias("_cmp_as_of"),
                                 *[c for c, _, _ in _comparable])
        same = (F.col("listing_id") == F.col("_cmp_id")) & (F.col("as_of") == F.col("_cmp_as_of"))
        df = df.join(cmp, same, "left").drop("_cmp_id", "_cmp_as_of")
    else:
        df = df.select("*", *[F.lit(None).cast(t).alias(c) for c, t, _ in _comparable])
    df = (df.withColumn("created_at", F.col("as_of"))
          .withColumn("sold_within_days",
                      F.when(F.col("sold_at").isNotNull()
                             & (F.col("sold_at") < F.col("as_of") + F.make_interval(days=F.lit(sold_within_days))), 1)
                      .otherwise(0))
          # Defensive: a sale recorded at or before its listing is impossible; it must not become a label.
          .where(F.col("sold_at").isNull() | (F.col("sold_at") > F.col("as_of"))))
    return SPEC.conform(df)
