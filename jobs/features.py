"""features: silver -> point-in-time-correct feature tables, built incrementally from a watermark.

Order: listing_features and market_stats (independent), comparable_sales (from ``pricing match``'s product
matches, when ``features.comparables``), then training_set (as-of joins of all of them).
Each table's watermark is the bronze ``ingested_at`` it was built through.  Rows ingested after it
give the earliest event time they touch; every row stamped on or after that day is recomputed (from
all the data it needs), and listings whose labels changed are re-joined.  The result equals a full
rebuild (``tests/jobs/test_generate_ingest.py::test_incremental_feature_build_equals_a_full_rebuild``).
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from features import comparables, listing_features, market_stats, product_matches, training_set
from features.build import bronze_events, changes_since, fresh_matches
from features.spec import FeatureSpec
from features.store import ingested_through, watermark, write_features
from pricing.platform import catalog, delta_io, faults
from pricing.platform.config import Config
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("features")
    listings = delta_io.read(spark, table(cfg, catalog.SILVER_LISTINGS))
    sales = delta_io.read(spark, table(cfg, catalog.SILVER_SALES))
    price_changes = delta_io.read(spark, table(cfg, catalog.BRONZE_PRICE_CHANGES_RAW))
    bronze = bronze_events(spark, cfg)
    built_through = ingested_through(bronze) or "1970-01-01 00:00:00"
    summary.rows_in = {catalog.SILVER_LISTINGS.logical: listings.count(), catalog.SILVER_SALES.logical: sales.count()}
    params = {"sold_within_days": cfg.features.sold_within_days, "shrinkage_k": cfg.features.shrinkage_k,
              # training_set is rebuilt in full when an upstream table's definition changes
              "upstream": [listing_features.SPEC.fingerprint(), market_stats.SPEC.fingerprint()]}
    # Checked before any write: comparables need current product matches.
    matches = fresh_matches(spark, cfg) if cfg.features.comparables else None
    cmp_params = None if matches is None else {
        "comparables_k": cfg.features.comparables_k, **product_matches.params(cfg.match),
        "comparables_spec": comparables.SPEC.fingerprint()}

    # make(since, touched): the spec's rows, from ``since`` on (None: all) and for the ``touched`` listings
    def build(spec: FeatureSpec, make: Callable[[Column | None, DataFrame | None], DataFrame],
              more: dict | None = None) -> None:
        params_ = {**params, **(more or {})}
        mark = watermark(spark, cfg, spec, params_) if cfg.features.incremental else None
        todo = changes_since(bronze, mark)
        if todo is None:
            summary.info[spec.name] = "up to date"
            return
        since = None if todo.since is None else F.lit(todo.since).cast("timestamp")
        df = make(since, todo.touched)
        where = None if todo.since is None else f"`{spec.timestamp_key}` >= timestamp'{todo.since}'"
        summary.tables[spec.name] = write_features(spark, cfg, spec, df, built_through, where, params_)
        summary.info[spec.name] = "full build" if todo.since is None else f"incremental from {todo.since[:10]}"

    build(listing_features.SPEC, lambda since, _t: listing_features.compute(listings, sales, price_changes, since))
    faults.point("features.after_first_table")
    build(market_stats.SPEC, lambda since, _t: market_stats.compute(
        listings, sales, cfg.features.shrinkage_k, None if since is None else F.to_date(since)))
    feats = delta_io.read(spark, table(cfg, listing_features.SPEC.name))
    stats = delta_io.read(spark, table(cfg, market_stats.SPEC.name))
    specs = [listing_features.SPEC, market_stats.SPEC]
    cmp = None
    if matches is not None:
        build(comparables.SPEC, lambda since, _t: comparables.compute(
            listings, sales, matches, cfg.features.comparables_k, since), cmp_params)
        cmp = delta_io.read(spark, table(cfg, comparables.SPEC.name))
        specs.append(comparables.SPEC)
    build(training_set.SPEC, lambda since, touched: training_set.compute(
        feats, stats, listings, cfg.features.sold_within_days, shrinkage_k=cfg.features.shrinkage_k,
        brand_window_days=cfg.features.brand_window_days, since=since, touched=touched, comparables=cmp),
        {"comparables": cmp_params, "brand_window_days": cfg.features.brand_window_days})
    for spec in (*specs, training_set.SPEC):
        ref = table(cfg, spec.name)
        summary.rows_out[spec.name] = delta_io.read(spark, ref).count()
        summary.tables[spec.name] = delta_io.version(spark, ref)
    return summary.finish()
