"""match: product matching: the same and comparable items across listings (MinHash LSH on title shingles, blocked
by brand x category, a scored pairwise decision, product clusters), with precision and recall against the
simulator's truth in MLflow.

Reads ``silver.listings``; writes ``features.product_matches`` and ``features.product_clusters``, each replaced
in one transaction (a rerun rewrites the same rows).  Each table records the ``bronze.listings_raw`` ingestion
time it is built through and a fingerprint of the match settings; when both are current the job writes
nothing.  ``pricing features`` refuses product matches that are older than the listings (run this job first).
"""

from __future__ import annotations

import mlflow
from pyspark.sql import SparkSession

from features.product_matches import CLUSTERS_SPEC, MATCHES_SPEC, listings_watermark, params
from features.store import watermark
from pricing.matching.build import RECALL_AT, build, curve_figure, curve_table, evaluate, truth_of
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("match")
    listings = delta_io.read(spark, table(cfg, catalog.SILVER_LISTINGS))
    mark = listings_watermark(spark, cfg)
    p = params(cfg.match)
    if all(watermark(spark, cfg, spec, p) == mark for spec in (MATCHES_SPEC, CLUSTERS_SPEC)):
        summary.info["product matches"] = f"up to date (listings ingested through {mark})"
        return summary.finish()
    summary.rows_in[catalog.SILVER_LISTINGS.logical] = listings.count()
    truth = truth_of(spark, cfg)
    built = build(spark, cfg, listings, mark, truth)
    summary.tables.update(built.versions)
    summary.rows_out.update({"listings matched": built.keyed, "brands inferred": built.brands_inferred,
                             MATCHES_SPEC.name: built.pairs,
                             "same-product pairs": built.same_product_pairs // 2,
                             CLUSTERS_SPEC.name: built.clustered_listings, "clusters": built.clusters})
    summary.info["match_seconds"] = round(built.seconds, 1)
    scores = evaluate(spark, cfg, truth)
    tracking.setup(cfg)
    with mlflow.start_run(run_name=f"match-{cfg.env}") as active:
        mlflow.set_tags({"job": "match", "env": cfg.env})
        mlflow.log_params({f"match.{k}": v for k, v in cfg.match.model_dump(mode="json").items()})
        mlflow.log_params({"listings": summary.rows_in[catalog.SILVER_LISTINGS.logical], "built_through": mark,
                           "simulator.world": cfg.simulator.world, "simulator.seed": cfg.simulator.seed})
        mlflow.log_metrics({"listings_matched": built.keyed, "brands_inferred": built.brands_inferred,
                            "groups": built.groups, "pairs": built.pairs,
                            "same_product_pairs": built.same_product_pairs / 2, "clusters": built.clusters,
                            "clustered_listings": built.clustered_listings, "match_seconds": built.seconds})
        if scores:
            mlflow.log_metrics(scores)
        if built.curve:
            # The precision-recall curve over the threshold: metrics stepped by the threshold in hundredths,
            # and the table and plot as artifacts.
            for c in built.curve:
                step = round(c["threshold"] * 100)
                mlflow.log_metrics({k: c[k.removeprefix("curve_")] for k in ("curve_precision", "curve_recall")
                                    if c[k.removeprefix("curve_")] == c[k.removeprefix("curve_")]}, step=step)
            mlflow.log_text(curve_table(built.curve), "pr_curve.md")
            fig = curve_figure({f"{cfg.simulator.world} world": built.curve}, cfg.match.threshold)
            mlflow.log_figure(fig, "pr_curve.png")
            summary.info["pr curve"] = "pr_curve.md, pr_curve.png"
        summary.info["mlflow_run_id"] = active.info.run_id
    if scores:
        summary.info["same product (pairs)"] = (f"precision {scores['pair_precision']:.4f}, "
                                                f"recall {scores['pair_recall']:.4f}")
        summary.info["same product (clusters)"] = (f"precision {scores['cluster_precision']:.4f}, "
                                                   f"recall {scores['cluster_recall']:.4f}")
        summary.info["comparables"] = ", ".join(f"recall@{k} {scores[f'recall_at_{k}']:.4f}" for k in RECALL_AT)
    return summary.finish()
