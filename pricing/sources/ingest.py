"""Landing JSON lines -> bronze Delta tables, exactly once, plus ``bronze.quarantine``.

Each event type is a Structured Streaming query with ``trigger(availableNow=True)`` and a checkpoint, so only
files not seen before are read.  Each micro-batch is MERGEd on ``event_id`` (insert-only), so a retried batch or
a re-exported file adds nothing.  :class:`Tally` counts per run so that records read = inserted into bronze +
quarantined + duplicates dropped, exactly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from functools import partial

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from pricing.platform import catalog, delta_io, faults
from pricing.platform.config import Config
from pricing.platform.tables import TableRef, table
from pricing.sources import schemas
from pricing.sources.landing import parse, to_bronze, to_quarantine

LOCK = "ingest.lock"
PARALLEL_LISTING = "spark.sql.sources.parallelPartitionDiscovery.threshold"
DRIVER_LISTING_FOLDERS = 4096
"""The ``files`` reader lists up to this many landing folders on the driver (see :func:`stream_landing`)."""


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
    qref, ref = table(cfg, catalog.BRONZE_QUARANTINE), table(cfg, catalog.BRONZE_EVENT_TABLES[event_type])
    # Keep the first copy of an event id, deterministically: by file, then event time, then payload.
    tie_break = F.xxhash64(*[c for c in good.columns if c != "ingested_at"])
    unique, n_unique = _new_rows(spark, good, "event_id", [F.col("source_file"), F.col("event_time"), tie_break], ref)
    bad_new, n_bad_new = _new_rows(spark, bad, "payload_hash", [F.col("source_file")], qref)
    tally = Tally(read=read)
    tally.reasons = {r["reason"]: r["count"] for r in bad_new.groupBy("reason").count().collect()}
    tally.inserted = delta_io.merge(spark, unique, ref, ["event_id"], update=False,
                                    docs=schemas.BRONZE_DOCS[event_type]).inserted if n_unique else 0
    faults.point("ingest.after_bronze_merge")
    tally.quarantined = delta_io.merge(spark, bad_new, qref, ["payload_hash"], update=False,
                                       docs=schemas.QUARANTINE_DOCS).inserted if n_bad_new else 0
    n_good = parsed.where(F.col("reason").isNull()).count()
    n_bad = read - n_good
    tally.duplicates = (n_good - n_unique) + (n_bad - n_bad_new)
    for df in (parsed, unique, bad_new):
        df.unpersist()
    return tally


@dataclass(frozen=True)
class LandingReader:
    """How one event type's landing files are streamed: ``spark.readStream.format(format).options(**options)
    .load(path)``, checkpointed in ``checkpoint``."""

    format: str
    options: dict[str, str]
    path: str
    checkpoint: str


def landing_reader(cfg: Config, event_type: str, landing: str) -> LandingReader:
    """The stream source ``ingest.reader`` chooses for ``event_type`` (pure: tested without Databricks).

    Both read each landing line as text (``parse`` checks the JSON itself, so a bad line is quarantined, not
    dropped) from every ``*.json`` file below ``<landing>/<event_type>``, and keep their state under
    ``storage.root``: ``files`` (Spark's file source, local) its checkpoint, ``autoloader`` (Databricks Auto
    Loader) its checkpoint and its schema location, each reader its own checkpoint.  Auto Loader finds files in
    nested folders by itself (the file source needs ``recursiveFileLookup``); a ``landing_date`` column it may
    infer from the folder names is not selected."""
    path = f"{landing}/{event_type}"
    if cfg.ingest.reader == "autoloader":
        return LandingReader("cloudFiles", {
            "cloudFiles.format": "text",
            "cloudFiles.schemaLocation": str(cfg.state_path(f"schemas/ingest-autoloader/{event_type}")),
            "cloudFiles.includeExistingFiles": "true",
            "pathGlobFilter": "*.json",
        }, path, str(cfg.state_path(f"checkpoints/ingest-autoloader/{event_type}")))
    return LandingReader("text", {"recursiveFileLookup": "true", "pathGlobFilter": "*.json"}, path,
                         str(cfg.state_path(f"checkpoints/ingest/{event_type}")))


def stream_landing(spark: SparkSession, cfg: Config, event_type: str, landing: str) -> Tally:
    """New landing files of one event type, exactly once (checkpointed ``availableNow`` stream)."""
    tally = Tally()
    reader = landing_reader(cfg, event_type, landing)
    stream = (
        spark.readStream.format(reader.format)
        .options(**reader.options)
        .load(reader.path)
        .select(
            F.col("value").alias("raw_payload"),
            F.col("_metadata.file_path").alias("source_file"),
            F.current_timestamp().alias("ingested_at"),
        )
    )
    # The file source lists the whole landing tree (a folder per day) a few times per run.  Above 32 folders Spark
    # lists them with a Spark job of a task per folder, which on a small cluster costs seconds a listing while the
    # driver lists a few thousand folders of a local disk or a Volume in milliseconds: list them on the driver
    # for this stream (the session's setting is restored after).  Auto Loader lists its own way.
    listing = spark.conf.get(PARALLEL_LISTING) or "32"  # Spark's default
    if reader.format == "text":
        spark.conf.set(PARALLEL_LISTING, str(max(int(listing), DRIVER_LISTING_FOLDERS)))
    try:
        query = (
            stream.writeStream.trigger(availableNow=True)
            .option("checkpointLocation", reader.checkpoint)
            .foreachBatch(lambda df, _id: tally.add(_process_batch(spark, cfg, event_type, df)))
            .start()
        )
        query.awaitTermination()
    finally:
        spark.conf.set(PARALLEL_LISTING, listing)
    return tally


def source_batches(spark: SparkSession, cfg: Config) -> list[tuple[str, Callable[[], Tally]]]:
    """(event type, thunk that ingests it) for the configured source."""
    if cfg.ingest.source == "mercari":
        from pricing.sources.mercari import mercari_landing

        m = cfg.ingest.mercari
        assert cfg.ingest.path is not None  # the config requires ingest.path for the mercari source
        frames = mercari_landing(spark, str(cfg.path(cfg.ingest.path)), currency=m.currency,
                                 start=datetime.combine(m.start_date, time(), tzinfo=UTC), days=m.days)
        return [(et, partial(_process_batch, spark, cfg, et, df)) for et, df in frames.items()]
    if cfg.ingest.source == "tables":
        from pricing.sources.tables import tables_landing

        # Every table opened and every mapping analysed here, before the first batch writes anything.
        frames = tables_landing(spark, cfg)
        return [(et, partial(_process_batch, spark, cfg, et, df)) for et, df in frames.items()]

    landing = str(cfg.landing_dir)
    return [(et, partial(stream_landing, spark, cfg, et, landing)) for et in schemas.LANDING]
