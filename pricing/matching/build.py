"""Building the product-match tables from silver listings, and scoring them against the simulator's truth
(evaluation only): precision, recall and recall@k."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.product_matches import CLUSTERS_SPEC, MATCHES_SPEC, params
from features.store import write_features
from pricing.matching import products as matching
from pricing.platform import catalog, delta_io
from pricing.platform.config import Config
from pricing.platform.rows import first_row
from pricing.platform.tables import table

RECALL_AT = (1, 5, 10)



@dataclass(frozen=True)
class Built:
    pairs: int
    same_product_pairs: int
    clusters: int
    clustered_listings: int
    keyed: int
    groups: int
    seconds: float
    versions: dict[str, int]


def build(spark: SparkSession, cfg: Config, listings: DataFrame, built_through: str) -> Built:
    """Match ``listings`` and replace both tables (each one transaction); what ``run`` and the benchmark time."""
    t0 = time.time()
    result = matching.match(listings, cfg.match)
    p = params(cfg.match)
    versions = {MATCHES_SPEC.name: write_features(spark, cfg, MATCHES_SPEC, result.pairs, built_through, None, p)}
    clusters = matching.clusters(result, cfg.match.max_cluster_iterations)
    versions[CLUSTERS_SPEC.name] = write_features(spark, cfg, CLUSTERS_SPEC, clusters, built_through, None, p)
    result.release()
    seconds = time.time() - t0
    m = first_row(delta_io.read(spark, table(cfg, MATCHES_SPEC.name)).agg(
        F.count("*").alias("pairs"), F.count_if("same_product").alias("same")))
    c = first_row(delta_io.read(spark, table(cfg, CLUSTERS_SPEC.name)).agg(
        F.countDistinct("cluster_id").alias("clusters"), F.count("*").alias("listings")))
    return Built(int(m["pairs"]), int(m["same"]), int(c["clusters"]), int(c["listings"]), result.keyed,
                 result.groups, seconds, versions)


def evaluate(spark: SparkSession, cfg: Config) -> dict[str, float] | None:
    """Pairwise precision and recall of the same-product pairs and of the clusters, and recall@k of the
    ranked comparables, against ``truth.listings.product_id`` (simulator only; None without the truth)."""
    ref = table(cfg, catalog.TRUTH_LISTINGS)
    if not delta_io.exists(spark, ref) or "product_id" not in delta_io.read(spark, ref).columns:
        return None
    truth = delta_io.read(spark, ref).select("listing_id", "product_id")
    # Only listings that reached silver are the job's to find.
    truth = truth.join(delta_io.read(spark, table(cfg, catalog.SILVER_LISTINGS)).select("listing_id"), "listing_id")
    return scores_against(spark, cfg, truth)


def scores_against(spark: SparkSession, cfg: Config, truth: DataFrame) -> dict[str, float]:
    """The written pairs and clusters scored against ``truth`` (``listing_id, product_id``)."""
    pairs = delta_io.read(spark, table(cfg, MATCHES_SPEC.name))
    out = {f"pair_{k}": v for k, v in matching.pair_scores(pairs, truth).items()}
    out.update({f"cluster_{k}": v for k, v in
                matching.cluster_scores(delta_io.read(spark, table(cfg, CLUSTERS_SPEC.name)), truth).items()})
    out.update({f"recall_at_{k}": v for k, v in matching.recall_at_k(pairs, truth, RECALL_AT).items()})
    return out
