"""Point-in-time primitives shared by every feature table.

Two rules keep features honest:

* a feature stamped at ``t`` is computed from events strictly before ``t`` (``window_before``);
* a row at time ``t`` is joined to the latest feature row stamped at or before ``t`` (``as_of_join``),
  never to a later one.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window, WindowSpec

MICROS_PER_DAY = 86_400 * 1_000_000


def micros(ts: str | Column) -> Column:
    """Microseconds since the epoch: an exact integer ordering key for range frames."""
    return F.unix_micros(F.col(ts) if isinstance(ts, str) else ts)


def window_before(keys: Sequence[str], ts: str, lookback_micros: int | None = None) -> WindowSpec:
    """Frame over the same ``keys`` covering ``[t - lookback, t)``: ties at ``t`` itself are excluded."""
    start = Window.unboundedPreceding if lookback_micros is None else -lookback_micros
    return Window.partitionBy(*keys).orderBy(micros(ts)).rangeBetween(start, -1)


def as_of_join(left: DataFrame, right: DataFrame, on: Sequence[str], left_ts: str, right_ts: str,
               left_keys: Sequence[str], lookback_days: int | None = None, prefix: str = "") -> DataFrame:
    """Each ``left`` row with the latest ``right`` row (same ``on`` keys) stamped at or before ``left_ts``.

    ``right``'s columns other than ``on`` come back prefixed with ``prefix``; a left row with no such
    right row keeps nulls (left join).  ``lookback_days`` bounds the search so that the join stays an
    equi-join on (keys, day) instead of pairing every left row with every earlier right row.
    ``left_keys`` identify a left row (its primary key).
    """
    right_cols = [c for c in right.columns if c not in on]
    r = right.select(*on, *[F.col(c).alias(f"__r_{c}") for c in right_cols])
    rts = F.col(f"__r_{right_ts}")
    lid = "__left_row"
    base = left.withColumn(lid, F.struct(*[F.col(k) for k in left_keys]))
    if lookback_days is None:
        cand = base.join(r, list(on), "inner").where(rts <= F.col(left_ts))
    else:
        days = F.sequence(F.date_sub(F.to_date(left_ts), lookback_days), F.to_date(left_ts))
        exploded = base.select(lid, *on, left_ts, F.explode(days).alias("__day"))
        cand = exploded.join(r.withColumn("__day", F.to_date(rts)), [*on, "__day"], "inner").where(
            rts <= F.col(left_ts))
    latest = Window.partitionBy(lid).orderBy(rts.desc())
    picked = (cand.withColumn("__rn", F.row_number().over(latest)).where("__rn = 1")
              .select(lid, *[F.col(f"__r_{c}").alias(f"{prefix}{c}") for c in right_cols]))
    return base.join(picked, lid, "left").drop(lid)


def rows_to_rebuild(df: DataFrame, ts: str, since: Column | None, touched: DataFrame | None = None) -> DataFrame:
    """The slice an incremental build recomputes: rows stamped at or after ``since``, plus every row of the
    listings in ``touched`` (``listing_id``).  ``since`` None: everything (a full build)."""
    if since is None:
        return df
    keep = F.col(ts) >= since
    if touched is not None:
        df = df.join(touched.select("listing_id").distinct().withColumn("_touched", F.lit(True)), "listing_id", "left")
        keep = keep | F.col("_touched").isNotNull()
    return df.where(keep).drop("_touched")
