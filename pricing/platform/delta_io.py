"""Delta reads and atomic writes by logical table.  Every write is one Delta transaction.

Writers race: two jobs (or a job and its retry) may commit to one table at once.  Delta's optimistic
concurrency lets one win and fails the other with a commit conflict (``ConcurrentAppendException`` and
friends, :data:`CONFLICTS`), having committed nothing of it.  Every write here is safe to
repeat as a whole (an overwrite or replaceWhere replaces, an append adds once, a MERGE re-matches against the
table as it now is), so a lost race is retried a few times with backoff, then reported as a
:class:`ConcurrentWriteError` naming the table.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from pricing.platform.errors import ConcurrentWriteError, MissingTableError
from pricing.platform.tables import TableRef

WRITE_ATTEMPTS = 4
"""Attempts in all for a write that keeps losing commit races to concurrent writers."""
RETRY_BACKOFF_S = 1.0
"""First wait before a retry; doubled for each later one, with jitter so that two losers do not collide again."""

CONFLICTS = (DeltaConcurrentModificationException, ConcurrentWriteException, MetadataChangedException,
             ProtocolChangedException, ConcurrentAppendException, ConcurrentDeleteReadException,
             ConcurrentDeleteDeleteException, ConcurrentTransactionException)
"""Delta's commit conflicts.  In delta-spark's Python API these are siblings, not subclasses of
``DeltaConcurrentModificationException`` (as they are in Java): catching that one alone misses them all."""

_T = TypeVar("_T")


def with_retries(ref: TableRef, what: str, write: Callable[[], _T], attempts: int = WRITE_ATTEMPTS,
                 backoff_s: float = RETRY_BACKOFF_S) -> _T:
    """Run ``write`` (one whole Delta transaction, safe to repeat) until it commits; a conflict with a
    concurrent commit is retried up to ``attempts`` times in all, then raised as :class:`ConcurrentWriteError`."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except CONFLICTS as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            if attempt == attempts:
                raise ConcurrentWriteError(
                    f"{what} of {ref.logical} ({ref}) lost {attempts} commit races in a row to concurrent writers "
                    f"({type(exc).__name__}: {first}); nothing of this write was committed. Another job is "
                    "writing the same table: re-run this one once it has finished.") from None
            time.sleep(backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def exists(spark: SparkSession, ref: TableRef) -> bool:
    if ref.full_name is not None:
        return bool(spark.catalog.tableExists(ref.full_name))
    return DeltaTable.isDeltaTable(spark, ref.path)


def require(spark: SparkSession, ref: TableRef) -> None:
    """Fail with a message naming the table when it does not exist (instead of Spark's path error)."""
    if not exists(spark, ref):
        raise MissingTableError(f"table {ref.logical} does not exist ({ref}): run the job that writes it first "
                                "(`pricing run` runs them all in order)")


def read(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    require(spark, ref)
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.table(ref.full_name) if ref.full_name is not None else reader.load(ref.path)


def _delta(spark: SparkSession, ref: TableRef) -> DeltaTable:
    return DeltaTable.forName(spark, ref.full_name) if ref.full_name is not None else DeltaTable.forPath(spark, ref.path)


def version(spark: SparkSession, ref: TableRef) -> int:
    """The table's latest Delta version."""
    require(spark, ref)
    return int(_delta(spark, ref).history(1).collect()[0]["version"])


def overwrite(df: DataFrame, ref: TableRef, replace_where: str | None = None) -> None:
    """Replace the table (or, with ``replace_where``, just the rows matching it) atomically.

    ``replace_where`` also creates a missing table: two first-ever writers of different slices racing to
    create it cannot wipe each other's slice (a plain overwrite, retried after losing the race, would); jobs
    that own a slice of a table (a date, an experiment) always pass it, existing table or not."""
    with_retries(ref, "overwrite", lambda: _overwrite_once(df, ref, replace_where))


def _overwrite_once(df: DataFrame, ref: TableRef, replace_where: str | None = None) -> None:
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
        with_retries(ref, "append", lambda: writer.saveAsTable(ref.full_name))
    else:
        with_retries(ref, "append", lambda: writer.save(ref.path))


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
    for k in keys:
        if "`" in k:
            raise ValueError(f"merge key {k!r} may not contain a back-quote")
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)

    def attempt() -> MergeResult:
        # Decided afresh on each attempt: a concurrent writer may have created the table meanwhile, and its
        # rows must then be merged with, never overwritten (so no retry of the overwrite on its own).
        if not exists(spark, ref):
            _overwrite_once(df, ref)
            metrics = _delta(spark, ref).history(1).collect()[0]["operationMetrics"] or {}
            return MergeResult(int(metrics.get("numOutputRows", 0)), 0)
        builder = _delta(spark, ref).alias("t").merge(df.alias("s"), cond)
        if update:
            builder = builder.whenMatchedUpdateAll()
        builder = builder.whenNotMatchedInsertAll()
        if delete_unmatched_where is not None:
            builder = builder.whenNotMatchedBySourceDelete(delete_unmatched_where)
        row = builder.execute().collect()[0]
        return MergeResult(int(row["num_inserted_rows"]), int(row["num_updated_rows"]))

    return with_retries(ref, "merge", attempt)
