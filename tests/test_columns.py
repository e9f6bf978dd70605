"""Whole-frame projections (pricing.platform.columns) and the comment handling delta_io builds on them: the same
rows, types and metadata as the one-column-at-a-time selects they replace."""

from __future__ import annotations

from datetime import date

import pytest
from chispa import assert_df_equality
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.platform import columns, delta_io

SCHEMA = T.StructType([
    T.StructField("listing_id", T.LongType()),
    T.StructField("odd name {x}", T.StringType()),
    T.StructField("tokens", T.ArrayType(T.StringType())),
    T.StructField("price", T.DoubleType()),
    T.StructField("day", T.DateType()),
    T.StructField("nested", T.StructType([T.StructField("a b", T.IntegerType())])),
])
ROWS = [(1, "x", ["a", "b"], 10.5, date(2025, 3, 1), (1,)), (2, None, [], None, None, None)]


def _metadata(df):
    return {f.name: f.metadata for f in df.schema.fields}


def test_cast_to_selects_and_casts_by_name_like_a_column_select(spark: SparkSession) -> None:
    df = spark.createDataFrame(ROWS, SCHEMA).select(
        "day", F.col("price").alias("price", metadata={"comment": "the price"}), "listing_id", "odd name {x}",
        "tokens", "nested", F.lit(1).alias("unused"))
    target = T.StructType([
        T.StructField("listing_id", T.IntegerType()), T.StructField("price", T.FloatType()),
        T.StructField("odd name {x}", T.StringType()), T.StructField("tokens", T.ArrayType(T.StringType())),
        T.StructField("day", T.StringType()), T.StructField("nested", T.StructType([T.StructField("a b", T.LongType())])),
    ])
    views = {t.name for t in spark.catalog.listTables() if t.isTemporary}
    out = columns.cast_to(df, target)
    assert {t.name for t in spark.catalog.listTables() if t.isTemporary} == views, "the statement's view was left"
    expected = df.select(*[df[f.name].cast(f.dataType).alias(f.name) for f in target])
    assert_df_equality(out, expected, ignore_nullable=True)
    assert [(f.name, f.dataType) for f in out.schema] == [(f.name, f.dataType) for f in target]
    assert all(m == {} for m in _metadata(out).values())


def test_cast_to_a_column_the_frame_lacks_fails_naming_it(spark: SparkSession) -> None:
    df = spark.createDataFrame(ROWS, SCHEMA)
    with pytest.raises(AnalysisException, match="missing_col"):
        columns.cast_to(df, T.StructType([T.StructField("missing_col", T.LongType())]))


@pytest.mark.parametrize("nested", [False, True], ids=["atomic columns", "nested columns"])
def test_with_metadata_merges_into_the_named_columns_only(spark: SparkSession, nested: bool) -> None:
    df = spark.createDataFrame(ROWS, SCHEMA)
    if not nested:
        df = df.drop("tokens", "nested")
    df = df.select(*[df[c].alias(c, metadata={"kept": 1} if c == "price" else {}) for c in df.columns])
    out = columns.with_metadata(df, {"price": {"comment": "the price"}, "listing_id": {"comment": "the id"},
                                     "not a column": {"comment": "ignored"}})
    assert_df_equality(out, df, ignore_metadata=True)
    assert out.schema.fieldNames() == df.schema.fieldNames()
    meta = _metadata(out)
    assert meta["price"] == {"kept": 1, "comment": "the price"}
    assert meta["listing_id"] == {"comment": "the id"}
    assert all(m == {} for n, m in meta.items() if n not in ("price", "listing_id"))
    assert columns.with_metadata(df, {}) is df


def test_without_comments_drops_only_comments_and_documented_sets_them(spark: SparkSession) -> None:
    df = spark.createDataFrame(ROWS, SCHEMA).select(
        F.col("listing_id").alias("listing_id", metadata={"comment": "id", "other": "x"}),
        F.col("price").alias("price", metadata={"comment": "price"}), "tokens")
    out = delta_io.without_comments(df)
    assert _metadata(out) == {"listing_id": {"other": "x"}, "price": {}, "tokens": {}}
    assert_df_equality(out, df, ignore_metadata=True)
    documented = delta_io.documented(out, {"price": "the price", "tokens": "words"})
    assert _metadata(documented) == {"listing_id": {"other": "x"}, "price": {"comment": "the price"},
                                     "tokens": {"comment": "words"}}
