"""The one generic writer: any feature spec's rows go into its Delta table, keyed by its primary keys.

* Column descriptions become column comments and the spec's description the table comment, so the
  catalog (Unity Catalog Explorer, ``DESCRIBE TABLE``) documents every feature.
* A full build replaces the table in one transaction; an incremental build MERGEs the recomputed slice
  (upsert, and rows of the slice that no longer exist are deleted), so it converges to the full build.
* Each table keeps a watermark in its table properties: the bronze ``ingested_at`` it is built through.
  It is advanced only after the data commit, so a crash in between just recomputes the same slice.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.spec import FeatureSpec
from pricing.platform import columns, delta_io
from pricing.platform.config import Config
from pricing.platform.rows import first_value
from pricing.platform.tables import table

WATERMARK = "pricing.watermark"
WATERMARK_FORMAT = "yyyy-MM-dd HH:mm:ss.SSSSSS"
"""Watermarks are strings in this format, so that they compare in time order."""
SPEC_HASH = "pricing.spec_hash"


def ingested_through(df: DataFrame) -> str | None:
    """The latest ``ingested_at`` of ``df`` as a watermark string; None when ``df`` is empty."""
    return first_value(df.agg(F.date_format(F.max("ingested_at"), WATERMARK_FORMAT)))


def watermark(spark: SparkSession, cfg: Config, spec: FeatureSpec, params: dict | None = None) -> str | None:
    """The bronze ingestion time the table is built through; None when it must be (re)built in full:
    no table yet, no watermark, or a table written for a different spec (schema or docs changed)."""
    ref = table(cfg, spec.name)
    if not delta_io.exists(spark, ref):
        return None
    props = delta_io.properties(spark, ref)
    if props.get(SPEC_HASH) != spec.fingerprint(params) or WATERMARK not in props:
        return None
    return props[WATERMARK]


def write_features(spark: SparkSession, cfg: Config, spec: FeatureSpec, df: DataFrame, built_through: str,
                   replace_slice: str | None = None, params: dict | None = None) -> int:
    """Write ``df`` (conformed to ``spec``) and return the table's new Delta version.

    ``replace_slice`` None: ``df`` is the whole table (full build).  Otherwise a SQL condition on the
    table's columns naming the slice that ``df`` recomputes (incremental build).
    """
    ref = table(cfg, spec.name)
    rows = spec.conform(df, with_comments=True)
    if replace_slice is None or not delta_io.exists(spark, ref):
        delta_io.overwrite(rows, ref)
    else:
        delta_io.merge(spark, rows, ref, list(spec.primary_keys), delete_unmatched_where=replace_slice)
    props = {"comment": spec.description, SPEC_HASH: spec.fingerprint(params), WATERMARK: built_through}
    spark.sql(f"ALTER TABLE {ref.sql} SET TBLPROPERTIES ("
              + ", ".join(f"{columns.sql_string(k)} = {columns.sql_string(v)}" for k, v in props.items()) + ")")
    return delta_io.version(spark, ref)
