"""ingest: landing JSON lines -> bronze Delta tables (exactly once) + bronze.quarantine, then silver.

Each event type is a Structured Streaming query with ``trigger(availableNow=True)`` and a checkpoint,
so only files not seen before are read.  Each micro-batch is MERGEd on ``event_id`` (insert-only), so
a retried batch or a re-exported file adds nothing.  Counts reconcile exactly, per run:
records read = inserted into bronze + quarantined + duplicates dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from pricing import delta_io, schemas
from pricing.config import Config
from pricing.errors import DataQualityError
from pricing.ingest import bronze_schema, parse, to_bronze, to_quarantine
from pricing.silver import build_listings, build_sales
from pricing.summary import JobSummary
from pricing.tables import table


@dataclass
class Tally:
    read: int = 0
    inserted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def _process_batch(spark: SparkSession, cfg: Config, event_type: str, batch: DataFrame, tally: Tally) -> None:
    batch = batch.persist()
    parsed = batch.transform(parse(event_type)).persist()
    read = parsed.count()
    good = parsed.where(F.col("reason").isNull())
    bad = parsed.where(F.col("reason").isNotNull()).transform(to_quarantine(event_type))
    # Within one batch keep the first copy of an event id (deterministically: by file, then payload).
    w = Window.partitionBy("event_id").orderBy("source_file", "event_time")
    rows = good.transform(to_bronze(event_type)).withColumn("_n", F.row_number().over(w))
    unique = rows.where("_n = 1").drop("_n").persist()
    unique.count()
    ref = table(cfg, schemas.BRONZE_TABLE[event_type])
    before = delta_io.read(spark, ref).count() if delta_io.exists(spark, ref) else 0
    delta_io.merge(spark, unique, ref, ["event_id"], update=False)
    inserted = delta_io.read(spark, ref).count() - before
    bad = bad.persist()
    reasons = {r["reason"]: r["count"] for r in bad.groupBy("reason").count().collect()}
    n_bad = sum(reasons.values())
    if n_bad:
        delta_io.merge(spark, bad, table(cfg, "bronze.quarantine"), ["payload_hash"], update=False)
    tally.read += read
    tally.inserted += inserted
    tally.quarantined += n_bad
    tally.duplicates += read - n_bad - inserted
    for k, v in reasons.items():
        tally.reasons[k] = tally.reasons.get(k, 0) + v
    for df in (batch, parsed, unique, bad):
        df.unpersist()


def ingest_events(spark: SparkSession, cfg: Config, event_type: str, landing: str) -> Tally:
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
        .foreachBatch(lambda df, _id: _process_batch(spark, cfg, event_type, df, tally))
        .start()
    )
    query.awaitTermination()
    return tally


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    from jobs.generate import landing_dir

    summary = JobSummary("ingest")
    landing = landing_dir(cfg)
    totals = Tally()
    for event_type in schemas.LANDING:
        t = ingest_events(spark, cfg, event_type, landing)
        summary.rows_in[event_type] = t.read
        summary.rows_out[schemas.BRONZE_TABLE[event_type]] = t.inserted
        for k in ("read", "inserted", "quarantined", "duplicates"):
            setattr(totals, k, getattr(totals, k) + getattr(t, k))
        for k, v in t.reasons.items():
            totals.reasons[k] = totals.reasons.get(k, 0) + v
    if totals.read != totals.inserted + totals.quarantined + totals.duplicates:
        raise DataQualityError(
            f"ingest counts do not reconcile: read {totals.read} != bronze {totals.inserted} + "
            f"quarantine {totals.quarantined} + duplicates {totals.duplicates}"
        )
    summary.info["reconcile"] = (f"read {totals.read:,} = bronze {totals.inserted:,} + quarantine "
                                 f"{totals.quarantined:,} + duplicates {totals.duplicates:,}")
    if totals.reasons:
        summary.info["quarantine"] = totals.reasons
    bronze = {et: table(cfg, t) for et, t in schemas.BRONZE_TABLE.items()}
    for et, ref in bronze.items():
        if not delta_io.exists(spark, ref):  # no file of this type yet: an empty table keeps silver simple
            delta_io.overwrite(spark.createDataFrame([], bronze_schema(spark, et)), ref)
    created, changes, sold, removed = (delta_io.read(spark, bronze[et]) for et in schemas.LANDING)
    for logical, df in (("silver.listings", build_listings(created, changes, sold, removed)),
                        ("silver.sales", build_sales(created, sold))):
        ref = table(cfg, logical)
        delta_io.overwrite(df, ref)
        summary.rows_out[logical] = delta_io.read(spark, ref).count()
        summary.tables[logical] = delta_io.version(spark, ref)
    for et, ref in bronze.items():
        summary.tables[schemas.BRONZE_TABLE[et]] = delta_io.version(spark, ref)
    qref = table(cfg, "bronze.quarantine")
    if delta_io.exists(spark, qref):
        summary.tables["bronze.quarantine"] = delta_io.version(spark, qref)
    return summary.finish()


def main(argv: list[str] | None = None) -> int:
    from pricing.cli import main as cli_main

    return cli_main(["ingest", *(argv or [])])
