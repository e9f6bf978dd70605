"""Library half of the ``ingest`` job (moved out of ``jobs/ingest.py``).

ingest: landing JSON lines -> bronze Delta tables (exactly once) + bronze.quarantine, then silver.

Each event type is a Structured Streaming query with ``trigger(availableNow=True)`` and a checkpoint,
so only files not seen before are read.  Each micro-batch is MERGEd on ``event_id`` (insert-only), so
a retried batch or a re-exported file adds nothing.  Counts reconcile exactly, per run:
records read = inserted into bronze + quarantined + duplicates dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from pricing.platform import catalog, delta_io, faults
from pricing.platform.config import Config
from pricing.platform.tables import TableRef, table
from pricing.sources import schemas
from pricing.sources.landing import parse, to_bronze, to_quarantine

LOCK = "ingest.lock"


"""Held under ``<storage.root>/locks/`` while an ingest runs (:mod:`pricing.platform.locks`)."""


SILVER_SOURCE = "pricing.bronze_versions"


"""Silver table property: the bronze table versions it was last built from (JSON)."""


@dataclass
class Tally:
    read: int = 0
    inserted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        for k in ("read", "inserted", "quarantined", "duplicates"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k, v in other.reasons.items():
            self.reasons[k] = self.reasons.get(k, 0) + v

    @property
    def reconciles(self) -> bool:
        return self.read == self.inserted + self.quarantined + self.duplicates


def _new_rows(spark: SparkSession, df: DataFrame, key: str, order: list[Column], ref: TableRef) -> tuple[DataFrame, int]:
    """Rows of ``df`` whose ``key`` is neither repeated earlier in ``df`` nor already in ``ref``, and the
    number of duplicates left out.  Counted here, independently of what the MERGE reports inserting,
    so that the reconciliation below is a real check and not arithmetic."""
    w = Window.partitionBy(key).orderBy(*order)
    ranked = df.withColumn("_n", F.row_number().over(w))
    first = ranked.where("_n = 1").drop("_n")
    if delta_io.exists(spark, ref):
        first = first.join(delta_io.read(spark, ref).select(key), key, "left_anti")
    first = first.persist()
    return first, first.count()


def _process_batch(spark: SparkSession, cfg: Config, event_type: str, batch: DataFrame) -> Tally:
    """One micro-batch (or one batch file set): parse, quarantine the bad, MERGE the new, count all."""
    parsed = batch.transform(parse(event_type)).persist()
    read = parsed.count()
    bad = parsed.where(F.col("reason").isNotNull()).transform(to_quarantine(event_type))
    good = parsed.where(F.col("reason").isNull()).transform(to_bronze(event_type))
    qref, ref = table(cfg, catalog.BRONZE_QUARANTINE), table(cfg, schemas.BRONZE_TABLE[event_type])
    # Keep the first copy of an event id, deterministically: by file, then event time, then payload.
    tie_break = F.xxhash64(*[c for c in good.columns if c != "ingested_at"])
    unique, n_unique = _new_rows(spark, good, "event_id", [F.col("source_file"), F.col("event_time"), tie_break], ref)
    bad_new, n_bad_new = _new_rows(spark, bad, "payload_hash", [F.col("source_file")], qref)
    tally = Tally(read=read)
    tally.reasons = {r["reason"]: r["count"] for r in bad_new.groupBy("reason").count().collect()}
    tally.inserted = delta_io.merge(spark, unique, ref, ["event_id"], update=False).inserted \
        if n_unique else 0
    faults.point("ingest.after_bronze_merge")
    tally.quarantined = delta_io.merge(spark, bad_new, qref, ["payload_hash"], update=False).inserted \
        if n_bad_new else 0
    n_good = parsed.where(F.col("reason").isNull()).count()
    n_bad = read - n_good
    tally.duplicates = (n_good - n_unique) + (n_bad - n_bad_new)
    for df in (parsed, unique, bad_new):
        df.unpersist()
    return tally


def stream_landing(spark: SparkSession, cfg: Config, event_type: str, landing: str) -> Tally:
    """New landing files of one event type, exactly once (checkpointed ``availableNow`` stream)."""
    tally = Tally()
    stream = (
        spark.readStream.format("text")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.json")
        .load(f"{landing}/{event_type}")
        .select(
            F.col("value").alias("raw_payload"),
            F.col("_metadata.file_path").alias("source_file"),
            F.current_timestamp().alias("ingested_at"),
        )
    )
    checkpoint = cfg.state_path(f"checkpoints/ingest/{event_type}")
    query = (
        stream.writeStream.trigger(availableNow=True)
        .option("checkpointLocation", str(checkpoint))
        .foreachBatch(lambda df, _id: tally.add(_process_batch(spark, cfg, event_type, df)))
        .start()
    )
    query.awaitTermination()
    return tally


def source_batches(spark: SparkSession, cfg: Config) -> list[tuple[str, Callable[[], Tally]]]:
    """(event type, thunk that ingests it) for the configured source."""
    if cfg.ingest.source == "mercari":
        from pricing.sources.mercari import mercari_landing

        m = cfg.ingest.mercari
        frames = mercari_landing(spark, str(cfg.path(cfg.ingest.path)), currency=m.currency,
                                 start=datetime.combine(m.start_date, time(), tzinfo=UTC), days=m.days)
        return [(et, lambda df=df, et=et: _process_batch(spark, cfg, et, df)) for et, df in frames.items()]

    landing = str(cfg.landing_dir)
    return [(et, lambda et=et: stream_landing(spark, cfg, et, landing)) for et in schemas.LANDING]
