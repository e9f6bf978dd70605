"""Delta reads and atomic writes by logical table.  Every write is one Delta transaction.

Writers race: two jobs (or a job and its retry) may commit to one table at once.  Delta's optimistic
concurrency lets one win and fails the other with a commit conflict (``ConcurrentAppendException`` and
friends, :data:`CONFLICTS`), having committed nothing of it.  Every write here is safe to
repeat as a whole (an overwrite or replaceWhere replaces, an append adds once, a MERGE re-matches against the
table as it now is), so a lost race is retried a few times with backoff, then reported as a
:class:`ConcurrentWriteError` naming the table.

Documentation travels with every write: the table comment is its catalog entry's description
(:mod:`pricing.platform.catalog`), and ``docs`` (column -> description, kept next to the code that defines the
table's columns) become column comments, so ``DESCRIBE TABLE`` and Unity Catalog Explorer document every
column.  A write that creates or replaces a table carries the comments in its schema; after any write,
:func:`document` sets whatever the table still lacks (an existing table, a MERGE, a replaceWhere) in one
metadata commit per change, and nothing once it is documented.  :func:`read` returns rows without the
comments: they are catalog documentation, not data, and frames compare by content.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
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

from pricing.platform import catalog, columns
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
    return DeltaTable.isDeltaTable(spark, ref.local_path)


def require(spark: SparkSession, ref: TableRef) -> None:
    """Fail with a message naming the table when it does not exist (instead of Spark's path error)."""
    if not exists(spark, ref):
        raise MissingTableError(f"table {ref.logical} does not exist ({ref}): run the job that writes it first "
                                "(`pricing run` runs them all in order)")


def _raw(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.table(ref.full_name) if ref.full_name is not None else reader.load(ref.path)


def read(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    """The table's rows (at ``version``), without its column comments (see the module docstring)."""
    require(spark, ref)
    return without_comments(_raw(spark, ref, version))


def without_comments(df: DataFrame) -> DataFrame:
    """``df`` with no column ``comment`` metadata (other metadata kept): one same-type cast of every column, which
    hides its metadata (:func:`columns.cast_to`), and the rest of the metadata set again where there was any."""
    schema = df.schema
    if not any("comment" in f.metadata for f in schema.fields):
        return df
    rest = {f.name: {k: v for k, v in f.metadata.items() if k != "comment"} for f in schema.fields}
    out = columns.cast_to(df, schema)
    return columns.with_metadata(out, {n: m for n, m in rest.items() if m})


def documented(df: DataFrame, docs: Mapping[str, str] | None) -> DataFrame:
    """``df`` with each column named in ``docs`` carrying its description as ``comment`` metadata (Delta keeps
    it as the column comment); other columns as they are."""
    if not docs:
        return df
    return columns.with_metadata(df, {name: {"comment": text} for name, text in docs.items()})


def description(spark: SparkSession, ref: TableRef) -> str | None:
    """The table's comment (Delta's description), None when it has none.  ``DESCRIBE TABLE EXTENDED`` reads it
    from the table's metadata; ``DESCRIBE DETAIL`` would also total the sizes of all its files, which costs a
    Spark job of about a second on every new version (measured on 2 cores)."""
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {ref.sql}").collect()
    # The columns come first; the table's own details follow a "# Detailed Table Information" header.
    header = next((i for i, r in enumerate(rows) if r["col_name"] == "# Detailed Table Information"), len(rows))
    return next((r["data_type"] or None for r in rows[header:] if r["col_name"] == "Comment"), None)


def properties(spark: SparkSession, ref: TableRef) -> dict[str, str]:
    """The table's properties (``SHOW TBLPROPERTIES``: from its metadata, without ``DESCRIBE DETAIL``'s file
    totals)."""
    return {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {ref.sql}").collect()}


def document(spark: SparkSession, ref: TableRef, docs: Mapping[str, str] | None = None) -> None:
    """Give ``ref`` its catalog entry's description as table comment and ``docs`` as column comments, where it
    does not have them yet (columns the table lacks are skipped).  Each change is one metadata commit, retried
    on a commit race like any write; a documented table gets none."""
    entry = catalog.TABLES.get(ref.logical)
    if entry is None and not docs:
        return

    def once() -> None:
        if entry is not None and description(spark, ref) != entry.description:
            spark.sql(f"COMMENT ON TABLE {ref.sql} IS {columns.sql_string(entry.description)}")
        if docs:
            comments = {f.name: f.metadata.get("comment") for f in _raw(spark, ref).schema.fields}
            for name, text in docs.items():
                if name in comments and comments[name] != text:
                    column = name.replace("`", "``")
                    spark.sql(f"ALTER TABLE {ref.sql} ALTER COLUMN `{column}` COMMENT {columns.sql_string(text)}")

    with_retries(ref, "documentation", once)


def _delta(spark: SparkSession, ref: TableRef) -> DeltaTable:
    return DeltaTable.forName(spark, ref.full_name) if ref.full_name is not None else DeltaTable.forPath(spark, ref.local_path)


def version(spark: SparkSession, ref: TableRef) -> int:
    """The table's latest Delta version."""
    require(spark, ref)
    return int(_delta(spark, ref).history(1).collect()[0]["version"])


def overwrite(df: DataFrame, ref: TableRef, replace_where: str | None = None,
              docs: Mapping[str, str] | None = None) -> None:
    """Replace the table (or, with ``replace_where``, just the rows matching it) atomically; then
    :func:`document` it (``docs``: column -> description).

    ``replace_where`` also creates a missing table: two first-ever writers of different slices racing to
    create it cannot wipe each other's slice (a plain overwrite, retried after losing the race, would); jobs
    that own a slice of a table (a date, an experiment) always pass it, existing table or not."""
    rows = documented(df, docs)
    with_retries(ref, "overwrite", lambda: _overwrite_once(rows, ref, replace_where))
    document(df.sparkSession, ref, docs)


def _overwrite_once(df: DataFrame, ref: TableRef, replace_where: str | None = None) -> None:
    writer = df.write.format("delta").mode("overwrite")
    if replace_where is None:
        writer = writer.option("overwriteSchema", "true")
    else:
        # A slice written by a newer version may carry new columns (added to the table); never drops one.
        writer = writer.option("replaceWhere", replace_where).option("mergeSchema", "true")
    if ref.full_name is not None:
        writer.saveAsTable(ref.full_name)
    else:
        writer.save(ref.path)


def append(df: DataFrame, ref: TableRef, merge_schema: bool = False, docs: Mapping[str, str] | None = None) -> None:
    """Append atomically; ``merge_schema`` lets the rows add new columns to the table.  Then :func:`document`."""
    _append_once(documented(df, docs), ref, merge_schema)
    document(df.sparkSession, ref, docs)


def _append_once(df: DataFrame, ref: TableRef, merge_schema: bool) -> None:
    writer = df.write.format("delta").mode("append")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    name = ref.full_name
    if name is not None:
        with_retries(ref, "append", lambda: writer.saveAsTable(name))
    else:
        with_retries(ref, "append", lambda: writer.save(ref.path))


@dataclass(frozen=True)
class MergeResult:
    inserted: int
    updated: int


def merge(spark: SparkSession, df: DataFrame, ref: TableRef, keys: Sequence[str],
          update: bool = True, delete_unmatched_where: str | None = None,
          docs: Mapping[str, str] | None = None) -> MergeResult:
    """Upsert ``df`` into ``ref`` on ``keys``; create the table if needed; then :func:`document` it.  Returns
    Delta's own row counts for the transaction (not a before/after count, which a concurrent writer would skew).

    With ``update=False`` matched rows are left alone (insert-only: exactly-once event ingestion).
    With ``delete_unmatched_where`` (a SQL condition on the target's columns), target rows in that slice
    that ``df`` no longer has are deleted in the same transaction: ``df`` *replaces* the slice.
    """
    for k in keys:
        if "`" in k:
            raise ValueError(f"merge key {k!r} may not contain a back-quote")
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    df = documented(df, docs)

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

    result = with_retries(ref, "merge", attempt)
    document(spark, ref, docs)
    return result
