"""Delta reads and atomic writes by logical table.  Every write is one Delta transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from pricing.tables import TableRef


def exists(spark: SparkSession, ref: TableRef) -> bool:
    if ref.full_name is not None:
        return bool(spark.catalog.tableExists(ref.full_name))
    return DeltaTable.isDeltaTable(spark, ref.path)


def read(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.table(ref.full_name) if ref.full_name is not None else reader.load(ref.path)


def _delta(spark: SparkSession, ref: TableRef) -> DeltaTable:
    return DeltaTable.forName(spark, ref.full_name) if ref.full_name is not None else DeltaTable.forPath(spark, ref.path)


def version(spark: SparkSession, ref: TableRef) -> int:
    """The table's latest Delta version."""
    return int(_delta(spark, ref).history(1).collect()[0]["version"])


def overwrite(df: DataFrame, ref: TableRef, replace_where: str | None = None) -> None:
    """Replace the table (or, with ``replace_where``, just the rows matching it) atomically."""
    writer = df.write.format("delta").mode("overwrite")
    if replace_where is None:
        writer = writer.option("overwriteSchema", "true")
    else:
        writer = writer.option("replaceWhere", replace_where)
    if ref.full_name is not None:
        writer.saveAsTable(ref.full_name)
    else:
        writer.save(ref.path)


def append(df: DataFrame, ref: TableRef, merge_schema: bool = False) -> None:
    """Append atomically; ``merge_schema`` lets the rows add new columns to the table."""
    writer = df.write.format("delta").mode("append")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    if ref.full_name is not None:
        writer.saveAsTable(ref.full_name)
    else:
        writer.save(ref.path)


@dataclass(frozen=True)
class MergeResult:
    inserted: int
    updated: int


def merge(spark: SparkSession, df: DataFrame, ref: TableRef, keys: Sequence[str],
          update: bool = True, delete_unmatched_where: str | None = None) -> MergeResult:
    """Upsert ``df`` into ``ref`` on ``keys``; create the table if needed.  Returns Delta's own row
    counts for the transaction (not a before/after count, which a concurrent writer would skew).

    With ``update=False`` matched rows are left alone (insert-only: exactly-once event ingestion).
    With ``delete_unmatched_where`` (a SQL condition on the target's columns), target rows in that slice
    that ``df`` no longer has are deleted in the same transaction: ``df`` *replaces* the slice.
    """
    if not exists(spark, ref):
        overwrite(df, ref)
        metrics = _delta(spark, ref).history(1).collect()[0]["operationMetrics"] or {}
        return MergeResult(int(metrics.get("numOutputRows", 0)), 0)
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    builder = _delta(spark, ref).alias("t").merge(df.alias("s"), cond)
    if update:
        builder = builder.whenMatchedUpdateAll()
    builder = builder.whenNotMatchedInsertAll()
    if delete_unmatched_where is not None:
        builder = builder.whenNotMatchedBySourceDelete(delete_unmatched_where)
    row = builder.execute().collect()[0]
    return MergeResult(int(row["num_inserted_rows"]), int(row["num_updated_rows"]))
