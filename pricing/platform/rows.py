"""Typed access to the first row of a small result, typically a global aggregate.

PySpark's ``DataFrame.first()`` returns ``Row | None``: None when the frame is empty.  A global
aggregation (``df.agg(...)`` without ``groupBy``) always has exactly one row, so None there means a
bug; these helpers say so clearly instead of failing later with ``'NoneType' object is not subscriptable``.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, Row


def first_row(df: DataFrame) -> Row:
    """The first row of ``df``; raises ValueError when ``df`` has no rows."""
    row = df.first()
    if row is None:
        raise ValueError("expected at least one row, got an empty DataFrame")
    return row


def first_value(df: DataFrame) -> Any:
    """The first column of the first row of ``df`` (e.g. the value of a one-column aggregate)."""
    return first_row(df)[0]
