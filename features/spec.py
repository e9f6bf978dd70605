"""What a feature table declares about itself (Feast/mlops-stacks style): keys, timestamp, schema, docs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from pricing.platform import columns
from pricing.platform.catalog import Table


@dataclass(frozen=True)
class FeatureSpec:
    table: Table
    """The catalog entry: logical name and description (the Delta table comment)."""
    primary_keys: tuple[str, ...]
    timestamp_key: str
    """When each row became knowable; features use only data strictly before it."""
    schema: T.StructType
    column_docs: dict[str, str]
    version: int = 1
    """Bump when ``compute`` changes meaning without a schema change: existing tables are then rebuilt."""

    @property
    def name(self) -> str:
        return self.table.logical

    @property
    def description(self) -> str:
        return self.table.description

    def __post_init__(self) -> None:
        names = [f.name for f in self.schema.fields]
        undocumented = [n for n in names if not self.column_docs.get(n)]
        missing_keys = [k for k in (*self.primary_keys, self.timestamp_key) if k not in names]
        if undocumented or missing_keys:
            raise ValueError(f"{self.name}: undocumented columns {undocumented}; keys not in schema {missing_keys}")

    def conform(self, df: DataFrame, with_comments: bool = False) -> DataFrame:
        """Select and cast to the declared schema (fails loudly on a missing column).

        ``with_comments`` attaches each column's description as its ``comment`` (Delta keeps it).
        """
        missing = [f.name for f in self.schema.fields if f.name not in df.columns]
        if missing:
            raise ValueError(f"{self.name}: compute() did not produce columns {missing}")
        out = columns.cast_to(df, self.schema)
        if not with_comments:
            return out
        return columns.with_metadata(out, {f.name: {"comment": self.column_docs[f.name]} for f in self.schema.fields})

    def fingerprint(self, params: dict | None = None) -> str:
        """Changes with the schema, keys, docs, version or build ``params`` (config the rows depend on):
        a table built for another fingerprint is rebuilt in full rather than patched."""
        blob = json.dumps([self.schema.jsonValue(), self.primary_keys, self.timestamp_key, self.description,
                           self.column_docs, self.version, params or {}], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
