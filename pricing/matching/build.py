"""Building the product-match tables from silver listings, and scoring them against the simulator's truth
(evaluation only): precision, recall and recall@k."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

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
CURVE_THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(15))
"""Similarity thresholds of the precision-recall curve (from the comparables' default ``min_similarity``)."""


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
    brands_inferred: int = 0
    """Listings without a brand attribute that matching gave one (``match.infer_brand``)."""
    curve: list[dict[str, float]] = field(default_factory=list)
    """Precision and recall of the same-product pairs per similarity threshold (:func:`matching.pr_curve`);
    empty without the truth."""


def build(spark: SparkSession, cfg: Config, listings: DataFrame, built_through: str,
          truth: DataFrame | None = None) -> Built:
    """Match ``listings`` and replace both tables (each one transaction); what ``run`` and the benchmark time.
    With ``truth`` (``listing_id, product_id``; evaluation only), also the precision-recall curve over the
    same-product threshold, after the timed work."""
    t0 = time.time()
    result = matching.match(listings, cfg.match)
    p = params(cfg.match)
    versions = {MATCHES_SPEC.name: write_features(spark, cfg, MATCHES_SPEC, result.pairs, built_through, None, p)}
    clusters = matching.clusters(result, cfg.match.max_cluster_iterations,
                                cfg.match.local_components_max_edges)
    versions[CLUSTERS_SPEC.name] = write_features(spark, cfg, CLUSTERS_SPEC, clusters, built_through, None, p)
    seconds = time.time() - t0
    curve = matching.pr_curve(result.decided, truth, CURVE_THRESHOLDS) if truth is not None else []
    result.release()
    m = first_row(delta_io.read(spark, table(cfg, MATCHES_SPEC.name)).agg(
        F.count("*").alias("pairs"), F.count_if("same_product").alias("same")))
    c = first_row(delta_io.read(spark, table(cfg, CLUSTERS_SPEC.name)).agg(
        F.countDistinct("cluster_id").alias("clusters"), F.count("*").alias("listings")))
    return Built(int(m["pairs"]), int(m["same"]), int(c["clusters"]), int(c["listings"]), result.keyed,
                 result.groups, seconds, versions, result.brands_inferred, curve)


def truth_of(spark: SparkSession, cfg: Config) -> DataFrame | None:
    """``listing_id, product_id`` of the silver listings from ``truth.listings`` (simulator only; None without
    the truth).  Only listings that reached silver are the job's to find."""
    ref = table(cfg, catalog.TRUTH_LISTINGS)
    if not delta_io.exists(spark, ref) or "product_id" not in delta_io.read(spark, ref).columns:
        return None
    truth = delta_io.read(spark, ref).select("listing_id", "product_id")
    return truth.join(delta_io.read(spark, table(cfg, catalog.SILVER_LISTINGS)).select("listing_id"), "listing_id")


def evaluate(spark: SparkSession, cfg: Config, truth: DataFrame | None = None) -> dict[str, float] | None:
    """Pairwise precision and recall of the same-product pairs and of the clusters, and recall@k of the
    ranked comparables, against ``truth.listings.product_id`` (simulator only; None without the truth)."""
    truth = truth if truth is not None else truth_of(spark, cfg)
    return None if truth is None else scores_against(spark, cfg, truth)


def curve_table(curve: list[dict[str, float]]) -> str:
    """The precision-recall curve as a Markdown table."""
    lines = ["| threshold | precision | recall | predicted pairs | true positive pairs |", "|---|---|---|---|---|"]
    lines += [f"| {c['threshold']:.2f} | {c['precision']:.4f} | {c['recall']:.4f} | {int(c['predicted_pairs']):,} | "
              f"{int(c['true_positive_pairs']):,} |" for c in curve]
    return "\n".join(lines) + "\n"


def curve_figure(curves: dict[str, list[dict[str, float]]], threshold: float | None = None) -> Any:
    """A matplotlib figure of precision against recall, one line per named curve, each point a threshold;
    ``threshold`` (the configured one) is marked."""
    from matplotlib.figure import Figure  # no pyplot: no global figure registry, no GUI backend

    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for name, curve in curves.items():
        pts = [c for c in curve if c["predicted_pairs"] > 0]
        line, = ax.plot([c["recall"] for c in pts], [c["precision"] for c in pts], marker=".", label=name)
        for c in pts:
            if threshold is not None and abs(c["threshold"] - threshold) < 1e-9:
                ax.plot([c["recall"]], [c["precision"]], "o", ms=9, mfc="none", color=line.get_color())
    ax.set_xlabel("pairwise recall")
    ax.set_ylabel("pairwise precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(min(0.5, *[c["precision"] for cs in curves.values() for c in cs if c["predicted_pairs"] > 0]), 1.01)
    ax.grid(alpha=0.3)
    ax.set_title("Same-product pairs over the similarity threshold" + (f" (o: {threshold})" if threshold else ""))
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def scores_against(spark: SparkSession, cfg: Config, truth: DataFrame) -> dict[str, float]:
    """The written pairs and clusters scored against ``truth`` (``listing_id, product_id``)."""
    pairs = delta_io.read(spark, table(cfg, MATCHES_SPEC.name))
    out = {f"pair_{k}": v for k, v in matching.pair_scores(pairs, truth).items()}
    out.update({f"cluster_{k}": v for k, v in
                matching.cluster_scores(delta_io.read(spark, table(cfg, CLUSTERS_SPEC.name)), truth).items()})
    out.update({f"recall_at_{k}": v for k, v in matching.recall_at_k(pairs, truth, RECALL_AT).items()})
    return out
