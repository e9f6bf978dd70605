"""ingest: landing JSON lines -> bronze Delta tables (exactly once) + bronze.quarantine, then silver.

Each event type is a Structured Streaming query with ``trigger(availableNow=True)`` and a checkpoint,
so only files not seen before are read.  Each micro-batch is MERGEd on ``event_id`` (insert-only), so
a retried batch or a re-exported file adds nothing.  Counts reconcile exactly, per run:
records read = inserted into bronze + quarantined + duplicates dropped.
"""

from __future__ import annotations

import json

from pyspark.sql import SparkSession

from pricing.platform import catalog, columns, delta_io, faults
from pricing.platform.config import Config
from pricing.platform.errors import DataQualityError
from pricing.platform.locks import job_lock
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.sources import schemas
from pricing.sources.ingest import LOCK, SILVER_SOURCE, Tally, source_batches
from pricing.sources.landing import bronze_schema
from pricing.sources.silver import COLUMN_DOCS as SILVER_DOCS
from pricing.sources.silver import build_listings, build_sales


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    # One ingest at a time per storage root: the streams' checkpoints take one writer each.
    with job_lock(spark, cfg, LOCK, "pricing ingest", cfg.ingest.lock_timeout_s):
        return _ingest(spark, cfg)


def _ingest(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("ingest")
    totals = Tally()
    for event_type, ingest in source_batches(spark, cfg):
        t = ingest()
        if not t.reconciles:
            raise DataQualityError(
                f"ingest of {event_type} does not reconcile: read {t.read:,} != bronze {t.inserted:,} + "
                f"quarantine {t.quarantined:,} + duplicates {t.duplicates:,}. Nothing was lost from the "
                "landing files; inspect bronze and bronze.quarantine before re-running."
            )
        summary.rows_in[event_type] = t.read
        summary.rows_out[catalog.BRONZE_EVENT_TABLES[event_type].logical] = t.inserted
        totals.add(t)
    summary.info["source"] = cfg.ingest.source
    summary.info["reconcile"] = (f"read {totals.read:,} = bronze {totals.inserted:,} + quarantine "
                                 f"{totals.quarantined:,} + duplicates {totals.duplicates:,}")
    summary.info["counts"] = {"read": totals.read, "inserted": totals.inserted, "quarantined": totals.quarantined,
                      "duplicates": totals.duplicates}
    if totals.reasons:
        summary.info["quarantine"] = dict(sorted(totals.reasons.items()))
    bronze = {et: table(cfg, t) for et, t in catalog.BRONZE_EVENT_TABLES.items()}
    for et, ref in bronze.items():
        if not delta_io.exists(spark, ref):  # no file of this type yet: an empty table keeps silver simple
            delta_io.overwrite(spark.createDataFrame([], bronze_schema(spark, et)), ref, docs=schemas.BRONZE_DOCS[et])
    faults.point("ingest.before_silver")
    silver = (catalog.SILVER_LISTINGS, catalog.SILVER_SALES)
    # Silver is a pure function of bronze: rebuild it only when bronze changed (a no-op run writes nothing).
    # "Changed" is judged against the bronze versions each silver table records having been built from, not
    # only this run's inserts: a run killed after its bronze commits but before silver leaves bronze ahead of
    # silver, and the re-run (which inserts nothing new) must still rebuild silver.
    built_from = json.dumps({catalog.BRONZE_EVENT_TABLES[et].logical: delta_io.version(spark, ref) for et, ref in bronze.items()},
                            sort_keys=True)
    stale = [t for t in silver if not delta_io.exists(spark, table(cfg, t))
             or delta_io.properties(spark, table(cfg, t)).get(SILVER_SOURCE) != built_from]
    if totals.inserted or stale:
        created, changes, sold, removed = (delta_io.read(spark, bronze[et]) for et in schemas.LANDING)
        for logical, df in zip(silver, (build_listings(created, changes, sold, removed), build_sales(created, sold)),
                               strict=True):
            ref = table(cfg, logical)
            delta_io.overwrite(df, ref, docs=SILVER_DOCS[logical])
            # Recorded after the data commit: a crash in between only makes the next run rebuild again.
            spark.sql(f"ALTER TABLE {ref.sql} SET TBLPROPERTIES ({columns.sql_string(SILVER_SOURCE)} = "
                      f"{columns.sql_string(built_from)})")
    for logical in silver:
        ref = table(cfg, logical)
        summary.rows_out[logical.logical] = delta_io.read(spark, ref).count()
        summary.tables[logical.logical] = delta_io.version(spark, ref)
    for et, ref in bronze.items():
        summary.tables[catalog.BRONZE_EVENT_TABLES[et].logical] = delta_io.version(spark, ref)
    qref = table(cfg, catalog.BRONZE_QUARANTINE)
    if delta_io.exists(spark, qref):
        summary.tables[catalog.BRONZE_QUARANTINE.logical] = delta_io.version(spark, qref)
    return summary.finish()
