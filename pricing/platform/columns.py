"""Whole-frame column operations in a handful of driver-to-JVM calls.

Building a projection one ``Column`` at a time (``F.col(...).cast(...).alias(...)`` for each of 70 columns)
costs about ten Python-to-JVM (py4j) calls a column, 700 for one ``select``.  A call takes 0.1 ms on an idle
driver and about 1 ms on a busy one (measured on a 2-core machine running two Spark applications), so the
projections a job applies to every table it reads and writes cost it seconds of driver time while its
executors wait.  The functions here give the same plans from one SQL string or one schema:

- :func:`cast_to`: select ``schema``'s columns by name, cast to its types, with no column metadata (one
  ``SELECT CAST(...) AS ...`` over the frame);
- :func:`with_metadata`: the same columns and types, with column metadata set (``DataFrame.to``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T


def quote(name: str) -> str:
    """``name`` as a SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def sql_string(s: str) -> str:
    """``s`` as a SQL string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_type(dt: T.DataType) -> str:
    """``dt`` as SQL writes it (a struct's field names quoted)."""
    if isinstance(dt, T.StructType):
        return "struct<" + ",".join(f"{quote(f.name)}:{sql_type(f.dataType)}" for f in dt.fields) + ">"
    if isinstance(dt, T.ArrayType):
        return f"array<{sql_type(dt.elementType)}>"
    if isinstance(dt, T.MapType):
        return f"map<{sql_type(dt.keyType)},{sql_type(dt.valueType)}>"
    return dt.simpleString()


def _select(df: DataFrame, expressions: list[str]) -> DataFrame:
    # The frame is bound as a temporary view for the one statement (pyspark's SQL formatter drops it again);
    # braces are the formatter's, so any in the expressions are doubled.
    sql = "SELECT " + ", ".join(expressions).replace("{", "{{").replace("}", "}}") + " FROM {frame}"
    return df.sparkSession.sql(sql, frame=df)


def cast_to(df: DataFrame, schema: T.StructType) -> DataFrame:
    """``schema``'s columns of ``df`` in its order, each cast to its type, with no column metadata: what
    ``df.select([F.col(f.name).cast(f.dataType) for f in schema])`` gives, in one statement (a cast also hides
    an attribute's metadata; the optimizer removes a same-type cast again, so it costs nothing at run time).  A
    column ``df`` lacks fails analysis, naming it."""
    return _select(df, [f"CAST({quote(f.name)} AS {sql_type(f.dataType)}) AS {quote(f.name)}" for f in schema])


def _atomic(dt: T.DataType) -> bool:
    return not isinstance(dt, T.StructType | T.ArrayType | T.MapType)


def with_metadata(df: DataFrame, metadata: Mapping[str, Mapping[str, Any]],
                  schema: T.StructType | None = None) -> DataFrame:
    """``df`` with ``metadata[name]`` merged into the metadata of each column it names (same columns, types
    and rows).  ``schema`` is ``df.schema`` when the caller has it already."""
    if not metadata:
        return df
    schema = schema or df.schema
    if not any(f.name in metadata for f in schema):
        return df
    target = T.StructType([T.StructField(f.name, f.dataType, f.nullable, {**f.metadata, **metadata.get(f.name, {})})
                           for f in schema])
    if all(_atomic(f.dataType) for f in schema):
        return df.to(target)  # one call; for atomic columns it only re-labels them
    # ``to`` rebuilds nested columns element by element (an identity ``transform`` over every array): alias them.
    return df.select(*[F.col(quote(f.name)).alias(f.name, metadata=f.metadata) for f in target])
