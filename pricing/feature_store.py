"""The one generic writer: MERGE any feature spec's rows into its Delta table, keyed by its primary keys."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from features.spec import FeatureSpec
from pricing import delta_io
from pricing.config import Config
from pricing.tables import table


def write_features(spark: SparkSession, cfg: Config, spec: FeatureSpec, df: DataFrame) -> int:
    """Upsert ``df`` (conformed to ``spec``) and return the table's new Delta version."""
    ref = table(cfg, spec.name)
    delta_io.merge(spark, spec.conform(df), ref, list(spec.primary_keys))
    return delta_io.version(spark, ref)
