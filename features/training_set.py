"""training_set: labels joined to the features known at the listing's own time.

A row is one listing; its features are those of ``listing_features`` at ``created_at`` and its label
(what it sold for, and whether it sold within N days) comes strictly after.  Nothing after
``created_at`` feeds a feature.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features.listing_features import SPEC as LISTING_SPEC
from features.spec import FeatureSpec

_extra = [
    ("sold_price", T.DoubleType(), "Label: price the listing sold for (null if unsold)."),
    ("sold_at", T.TimestampType(), "When it sold (null if unsold)."),
    ("sold_within_days", T.IntegerType(), "Label: 1 if it sold within features.sold_within_days of created_at."),
    ("status", T.StringType(), "Current status: active, sold or removed."),
]

SPEC = FeatureSpec(
    name="features.training_set",
    primary_keys=("listing_id",),
    timestamp_key="created_at",
    schema=T.StructType(list(LISTING_SPEC.schema.fields) + [T.StructField(n, t, True) for n, t, _ in _extra]),
    description="listing_features as of created_at joined to the sale that followed (labels).",
    column_docs={**LISTING_SPEC.column_docs, **{n: d for n, _, d in _extra}},
)


def compute(features: DataFrame, listings: DataFrame, sold_within_days: int) -> DataFrame:
    labels = listings.select(
        "listing_id", "sold_price", "sold_at", "status",
        F.when(F.col("sold_at").isNotNull()
               & (F.col("sold_at") < F.col("created_at") + F.make_interval(days=F.lit(sold_within_days))), 1)
        .otherwise(0).alias("sold_within_days"),
    )
    # Defensive: a sale recorded before its listing is impossible; it must not become a label.
    joined = features.join(labels, "listing_id", "inner").where(
        F.col("sold_at").isNull() | (F.col("sold_at") > F.col("created_at")))
    return SPEC.conform(joined)
