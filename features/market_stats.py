"""market_stats: rolling sold-price quantiles and sell-through per market segment, stamped daily.

A row stamped ``stat_date = D`` (``as_of = D 00:00 UTC``) summarises the ``w`` days before it:
sales with ``sold_at`` in ``[D - w days, D)`` and listings created in the same span, for w in 7, 30, 90.
A sale at exactly ``D 00:00`` belongs to day D and is excluded (the window ends strictly before the stamp).

Levels form a tree, and each segment is shrunk toward its parent on the same day, so that a segment
with few sales borrows strength from the wider market (empirical-Bayes style, ``k`` pseudo-sales):

    global -> category -> brand x category
                       -> category x condition

Stamps are written where they are needed: for each segment, every day on which a listing of that
segment was created (the moment its features are taken), so the table never grows with empty days.
Quantiles are exact (linear interpolation, numpy's default) over the window's sales, in price units;
shrinkage mixes them on the log scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features.asof import MICROS_PER_DAY
from features.spec import FeatureSpec
from pricing.platform import catalog

WINDOWS = (7, 30, 90)
QUANTILES = {"p25": 0.25, "p50": 0.5, "p75": 0.75}
NO_BRAND = "(none)"
LEVELS: dict[str, tuple[str, ...]] = {
    "global": (),
    "category": ("category",),
    "brand_category": ("brand", "category"),
    "category_condition": ("category", "condition"),
}
PARENT = {"category": "global", "brand_category": "category", "category_condition": "category"}
KEY_COLS = ("brand", "category", "condition")
BUCKETS = 64
"""Segments are processed in this many pandas batches."""

_cols: list[tuple[str, T.DataType, str]] = [
    ("level", T.StringType(), "Segment level: global, category, brand_category or category_condition."),
    ("brand", T.StringType(), f"Brand for level brand_category ('{NO_BRAND}' for unbranded items), else null."),
    ("category", T.StringType(), "Category for every level but global, else null."),
    ("condition", T.StringType(), "Condition for level category_condition, else null."),
    ("stat_date", T.DateType(), "Stamp day D; the row uses only events strictly before D 00:00 UTC."),
    ("as_of", T.TimestampType(), "D 00:00 UTC: when the row became knowable (timestamp key)."),
]
for _w in WINDOWS:
    _cols += [
        (f"n_sales_{_w}d", T.LongType(), f"Sales of the segment in the {_w} days before stat_date."),
        (f"n_listed_{_w}d", T.LongType(), f"Listings of the segment created in the {_w} days before stat_date."),
        *[(f"{q}_{_w}d", T.DoubleType(),
           f"{int(v * 100)}th percentile of sold price over {_w} days, shrunk toward the parent segment.")
          for q, v in QUANTILES.items()],
        (f"sell_through_{_w}d", T.DoubleType(),
         f"Sales / listings created over {_w} days (capped at 1), shrunk toward the parent segment."),
    ]

SPEC = FeatureSpec(
    table=catalog.MARKET_STATS,
    primary_keys=("level", "brand", "category", "condition", "stat_date"),
    timestamp_key="as_of",
    schema=T.StructType([T.StructField(n, t, True) for n, t, _ in _cols]),
    column_docs={n: d for n, _, d in _cols},
)


OUT_SCHEMA = T.StructType([f for f in SPEC.schema.fields if f.name != "as_of"])


def _segment_keys(df: DataFrame) -> DataFrame:
    return df.withColumn("brand", F.coalesce(F.col("brand"), F.lit(NO_BRAND)))


def _segment_stats(t: np.ndarray, kind: np.ndarray, price: np.ndarray) -> dict[str, np.ndarray]:
    """Every stamp of one segment (t in epoch microseconds; stamps at midnight)."""
    sale = kind == "sale"
    order = np.argsort(t[sale], kind="stable")
    sale_t, sale_p = t[sale][order], price[sale][order]
    list_t = np.sort(t[kind == "listing"])
    stamps = np.unique(t[kind == "stamp"])
    probs = np.array(list(QUANTILES.values()))
    cols: dict[str, np.ndarray] = {"t": stamps}
    for w in WINDOWS:
        start = stamps - w * MICROS_PER_DAY
        lo, hi = np.searchsorted(sale_t, start, "left"), np.searchsorted(sale_t, stamps, "left")
        n_sales = hi - lo
        n_listed = np.searchsorted(list_t, stamps, "left") - np.searchsorted(list_t, start, "left")
        qs = np.full((len(stamps), len(probs)), np.nan)
        for i in np.flatnonzero(n_sales):
            x = np.sort(sale_p[lo[i]:hi[i]])
            pos = (len(x) - 1) * probs  # numpy's "linear" quantile, without np.quantile's per-call overhead
            f = np.floor(pos).astype(int)
            c = np.minimum(f + 1, len(x) - 1)
            qs[i] = x[f] + (x[c] - x[f]) * (pos - f)
        cols[f"n_sales_{w}d"] = n_sales
        cols[f"n_listed_{w}d"] = n_listed
        for j, q in enumerate(QUANTILES):
            cols[f"{q}_{w}d"] = qs[:, j]
        cols[f"sell_through_{w}d"] = np.where(n_listed > 0, np.minimum(n_sales / np.maximum(n_listed, 1), 1.0), np.nan)
    return cols


def window_stats(pdf: pd.DataFrame) -> pd.DataFrame:
    """All stamps of the segments in one hash bucket.  Rows: ``kind`` ``sale`` (t, price), ``listing``
    (t) or ``stamp`` (t = the stamp day's midnight), t in epoch microseconds.  Windows are
    ``[D - w days, D)``: sorted times and binary search, so each window costs a slice, not a rescan."""
    t, kind, price = pdf["t"].to_numpy(), pdf["kind"].to_numpy(), pdf["price"].to_numpy(dtype=float)
    keys = pdf[["level", *KEY_COLS]].to_numpy(dtype=object)
    parts: dict[str, list[np.ndarray]] = {}
    for _, idx in pdf.groupby("_seg", sort=False).indices.items():
        cols = _segment_stats(t[idx], kind[idx], price[idx])
        n = len(cols["t"])
        for j, c in enumerate(("level", *KEY_COLS)):  # plain arrays: one DataFrame at the end, not per segment
            cols[c] = np.full(n, keys[idx[0], j], dtype=object)
        for c, v in cols.items():
            parts.setdefault(c, []).append(v)
    if not parts:
        return pd.DataFrame({f.name: [] for f in OUT_SCHEMA.fields})
    out = pd.DataFrame({c: np.concatenate(v) for c, v in parts.items()})
    out["stat_date"] = pd.to_datetime(out["t"], unit="us").dt.date
    return out[[f.name for f in OUT_SCHEMA.fields]]


def rolling(sales: DataFrame, listings: DataFrame, stamps: DataFrame) -> DataFrame:
    """Unshrunk window statistics of every level at its requested stamps, one pandas call per segment.

    ``sales``: segment columns, ``sold_at``, ``sold_price``; ``listings``: segment columns, ``created_at``;
    ``stamps``: ``level``, segment columns, ``stat_date``.  A segment's rows arrive sorted by nothing in
    particular; ``window_stats`` sorts and binary-searches each window (no per-window rescans).
    """
    def per_level(df: DataFrame, kind: str, ts: Column, price: Column) -> DataFrame:
        out = None
        for level, keys in LEVELS.items():
            rows = df.select(F.lit(level).alias("level"),
                             *[F.col(c) if c in keys else F.lit(None).cast("string").alias(c) for c in KEY_COLS],
                             F.lit(kind).alias("kind"), F.unix_micros(ts).alias("t"), price.alias("price"))
            out = rows if out is None else out.unionByName(rows)
        assert out is not None
        return out

    s = per_level(sales, "sale", F.col("sold_at"), F.col("sold_price").cast("double"))
    li = per_level(listings, "listing", F.col("created_at"), F.lit(None).cast("double"))
    st = stamps.select("level", *KEY_COLS, F.lit("stamp").alias("kind"),
                       F.unix_micros(F.col("stat_date").cast("timestamp")).alias("t"), F.lit(None).cast("double").alias("price"))
    # key columns are null where a level does not use them: group on a null-free segment id
    return (s.unionByName(li).unionByName(st)
            .withColumn("_seg", F.concat_ws("\u0001", "level", *[F.coalesce(F.col(c), F.lit("")) for c in KEY_COLS]))
            # One pandas call per hash bucket of segments, not per segment (thousands of tiny groups).
            .groupBy(F.pmod(F.xxhash64("_seg"), F.lit(BUCKETS)).alias("_bucket"))
            .applyInPandas(window_stats, OUT_SCHEMA))


def shrink(child: DataFrame, parent: DataFrame, parent_keys: list[str], k: float) -> DataFrame:
    """Mix each child statistic with its parent's on the same day: (n * child + k * parent) / (n + k).

    Quantiles mix on the log scale (prices are multiplicative); a child with no sales takes the parent's.
    """
    p = parent.select(*parent_keys, "stat_date", *[F.col(c).alias(f"parent_{c}") for c in parent.columns
                                                    if c not in (*parent_keys, "stat_date")])
    df = child.join(p, [*parent_keys, "stat_date"], "left")
    mixed: dict[str, Column] = {}  # one projection (a withColumn per statistic re-analyses the plan each time)
    for w in WINDOWS:
        n, m = F.col(f"n_sales_{w}d"), F.col(f"n_listed_{w}d")
        for q in QUANTILES:
            c, pc = F.col(f"{q}_{w}d"), F.col(f"parent_{q}_{w}d")
            log_mix = F.expm1((n * F.log1p(c) + F.lit(k) * F.log1p(pc)) / (n + F.lit(k)))
            mixed[f"{q}_{w}d"] = F.when(c.isNull(), pc).when(pc.isNull(), c).otherwise(log_mix)
        st, pst = F.col(f"sell_through_{w}d"), F.col(f"parent_sell_through_{w}d")
        mixed[f"sell_through_{w}d"] = (F.when(st.isNull(), pst).when(pst.isNull(), st)
                                       .otherwise((m * st + F.lit(k) * pst) / (m + F.lit(k))))
    df = df.withColumns(mixed)
    return df.drop(*[c for c in df.columns if c.startswith("parent_")])


def stamps_for(listings: DataFrame) -> DataFrame:
    """Where stamps are needed: each level's segment on each day one of its listings was created."""
    out = None
    for level, keys in LEVELS.items():
        rows = listings.select(F.lit(level).alias("level"),
                               *[F.col(c) if c in keys else F.lit(None).cast("string").alias(c) for c in KEY_COLS],
                               F.to_date("created_at").alias("stat_date"))
        out = rows if out is None else out.unionByName(rows)
    assert out is not None
    return out.distinct()


def compute(listings: DataFrame, sales: DataFrame, shrinkage_k: float, since: Column | None = None) -> DataFrame:
    """``silver.listings`` (+ its sales) -> market_stats rows; with ``since`` (a date), only stamps on or after it.

    ``sales`` are ``silver.sales`` rows; their segment comes from the listing they sold.
    """
    seg = _segment_keys(listings).select("listing_id", *KEY_COLS, "created_at")
    sold = sales.select("listing_id", "sold_at", "sold_price").join(seg.drop("created_at"), "listing_id")
    stamp_src = seg if since is None else seg.where(F.to_date("created_at") >= since)
    if since is not None:  # a stamp on day D reads at most 90 days back
        start = F.date_sub(since, max(WINDOWS))
        sold = sold.where(F.to_date("sold_at") >= start)
        seg = seg.where(F.to_date("created_at") >= start)
    # Materialised once (each level is read again as a parent): localCheckpoint computes eagerly and
    # frees its blocks when the frame is garbage-collected.
    raw = rolling(sold, seg, stamps_for(stamp_src)).localCheckpoint()
    by_level = {lv: raw.where(F.col("level") == lv).drop("level") for lv in LEVELS}
    shrunk = {"global": by_level["global"]}
    shrunk["category"] = shrink(by_level["category"], shrunk["global"], [], shrinkage_k)
    for lv in ("brand_category", "category_condition"):
        shrunk[lv] = shrink(by_level[lv], shrunk["category"], ["category"], shrinkage_k)
    out = None
    for lv, df in shrunk.items():
        df = df.withColumn("level", F.lit(lv)).withColumn("as_of", F.col("stat_date").cast("timestamp"))
        out = df if out is None else out.unionByName(df)
    assert out is not None
    return SPEC.conform(out)
