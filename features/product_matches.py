"""product_matches and product_clusters: what ``pricing match`` writes (``pricing.matching.products`` does the work).

``product_matches`` holds every candidate pair in a brand x category block at or above ``match.min_similarity``,
in both directions, with the same-product decision.  A pair's similarity and decision depend only on
listings created no later than the later of its two listings (the generic words are learned as of then), so a
pair is knowable from that time (``known_at``) and the table can feed point-in-time features.  ``product_clusters`` are connected components of the same-product pairs:
built from every listing (a later listing can join two earlier ones), they are for browsing "the same item"
and for evaluation, never for features.
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from features.spec import FeatureSpec
from features.store import ingested_through
from pricing.platform import catalog, delta_io
from pricing.platform.config import Config, MatchConfig
from pricing.platform.tables import table

_match_cols: list[tuple[str, T.DataType, str]] = [
    ("listing_id", T.LongType(), "Listing id."),
    ("matched_listing_id", T.LongType(), "A listing in the same brand x category block whose title is similar."),
    ("similarity", T.DoubleType(), "Jaccard index of the two titles' model-word character bigrams (1: the same "
                                   "model words)."),
    ("same_product", T.BooleanType(), "True when the pair is judged the same product: similarity >= "
                                      "match.threshold, the same model numbers, type and colour."),
    ("known_at", T.TimestampType(), "The later of the two listing times: when the pair became knowable."),
]

MATCHES_SPEC = FeatureSpec(
    table=catalog.PRODUCT_MATCHES,
    primary_keys=("listing_id", "matched_listing_id"),
    timestamp_key="known_at",
    schema=T.StructType([T.StructField(n, t, True) for n, t, _ in _match_cols]),
    column_docs={n: d for n, _, d in _match_cols},
)

_cluster_cols: list[tuple[str, T.DataType, str]] = [
    ("listing_id", T.LongType(), "Listing id (listings without a same-product match are in no cluster)."),
    ("cluster_id", T.LongType(), "The smallest listing id of the connected component of same-product pairs."),
    ("cluster_size", T.LongType(), "Listings in the cluster."),
    ("as_of", T.TimestampType(), "The latest listing time in the cluster: the cluster as stored exists from then "
                                 "on (built from every listing: never a point-in-time feature)."),
]

CLUSTERS_SPEC = FeatureSpec(
    table=catalog.PRODUCT_CLUSTERS,
    primary_keys=("listing_id",),
    timestamp_key="as_of",
    schema=T.StructType([T.StructField(n, t, True) for n, t, _ in _cluster_cols]),
    column_docs={n: d for n, _, d in _cluster_cols},
)


def params(cfg: MatchConfig) -> dict[str, object]:
    """What the pairs depend on besides the listings (part of both tables' fingerprints, and of the
    comparable-sales table's): a changed setting rebuilds them in full."""
    return {"match": cfg.model_dump(mode="json", exclude={"max_cluster_iterations", "local_components_max_edges"})}

def listings_watermark(spark: SparkSession, cfg: Config) -> str:
    """The latest ``bronze.listings_raw`` ingestion time: what silver's listings (and so the matches) reflect."""
    return ingested_through(delta_io.read(spark, table(cfg, catalog.BRONZE_LISTINGS_RAW))) or "1970-01-01 00:00:00.000000"
