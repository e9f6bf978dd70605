"""features: silver -> point-in-time-correct feature tables (listing_features, training_set), MERGEd by key."""

from __future__ import annotations

from pyspark.sql import SparkSession

from features import listing_features, training_set
from pricing import delta_io
from pricing.config import Config
from pricing.feature_store import write_features
from pricing.summary import JobSummary
from pricing.tables import table


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("features")
    listings = delta_io.read(spark, table(cfg, "silver.listings"))
    sales = delta_io.read(spark, table(cfg, "silver.sales"))
    summary.rows_in = {"silver.listings": listings.count(), "silver.sales": sales.count()}
    feats = listing_features.compute(listings, sales)
    summary.tables[listing_features.SPEC.name] = write_features(spark, cfg, listing_features.SPEC, feats)
    stored = delta_io.read(spark, table(cfg, listing_features.SPEC.name))
    ts = training_set.compute(stored, listings, cfg.features.sold_within_days)
    summary.tables[training_set.SPEC.name] = write_features(spark, cfg, training_set.SPEC, ts)
    for name in summary.tables:
        summary.rows_out[name] = delta_io.read(spark, table(cfg, name)).count()
    return summary.finish()


def main(argv: list[str] | None = None) -> int:
    from pricing.cli import main as cli_main

    return cli_main(["features", *(argv or [])])
