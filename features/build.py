"""What a feature build must recompute: the bronze rows ingested since a table's watermark, and the earliest event
time they touch.  Every row stamped on or after that day is recomputed (from all the data it needs), so an
incremental build equals a full rebuild (``tests/jobs/test_generate_ingest.py::
test_incremental_feature_build_equals_a_full_rebuild`` proves it)."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features import product_matches
from features.store import WATERMARK_FORMAT, watermark
from pricing.platform import catalog, delta_io
from pricing.platform.config import Config
from pricing.platform.errors import PricingError
from pricing.platform.rows import first_value
from pricing.platform.tables import table

"""Timestamps cross into Python as strings in the session time zone (UTC), never as naive datetimes."""


@dataclass(frozen=True)
class Changes:
    since: str | None
    """Start of the earliest day touched by data ingested after the watermark; None = full build."""
    touched: DataFrame | None
    """listing_id of every event ingested after the watermark."""


def bronze_events(spark: SparkSession, cfg: Config) -> DataFrame:
    frames = [delta_io.read(spark, table(cfg, t)).select("listing_id", "event_time", "ingested_at")
              for t in catalog.BRONZE_EVENT_TABLES.values()]
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


def changes_since(bronze: DataFrame, mark: str | None) -> Changes | None:
    """What to rebuild for a table built through ``mark``; None when nothing new arrived."""
    if mark is None:
        return Changes(None, None)
    new = bronze.where(F.col("ingested_at") > F.lit(mark).cast("timestamp"))
    earliest = first_value(new.agg(F.date_format(F.date_trunc("day", F.min("event_time")), WATERMARK_FORMAT)))
    if earliest is None:
        return None
    return Changes(earliest, new.select("listing_id").distinct())


def fresh_matches(spark: SparkSession, cfg: Config) -> DataFrame:
    """``features.product_matches``, refused unless built with the current match settings through the latest
    listings: comparables from stale matches would miss new listings' pairs for good (an incremental build
    never revisits them)."""
    ref = table(cfg, product_matches.MATCHES_SPEC.name)
    fix = "run `pricing match` first (or set features.comparables=false)"
    if not delta_io.exists(spark, ref):
        raise PricingError(f"features.comparables is on but {ref} does not exist: {fix}")
    built = watermark(spark, cfg, product_matches.MATCHES_SPEC, product_matches.params(cfg.match))
    if built is None:
        raise PricingError(f"{ref} was built with other match settings than the current config: {fix}")
    need = product_matches.listings_watermark(spark, cfg)
    if built < need:
        raise PricingError(f"{ref} is stale: built from listings ingested through {built}, but listings were "
                           f"ingested through {need}: {fix}")
    return delta_io.read(spark, ref)
