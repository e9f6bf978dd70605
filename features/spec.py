"""What a feature table declares about itself (Feast/mlops-stacks style): keys, timestamp, schema, docs."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    """Logical table name, e.g. ``features.listing_features``."""
    primary_keys: tuple[str, ...]
    timestamp_key: str
    """When each row became knowable; features use only data strictly before it."""
    schema: T.StructType
    description: str
    column_docs: dict[str, str]

    def conform(self, df):  # type: ignore[no-untyped-def]
        """Select and cast to the declared schema (fails loudly on a missing column)."""
        from pyspark.sql import functions as F

        missing = [f.name for f in self.schema.fields if f.name not in df.columns]
        if missing:
            raise ValueError(f"{self.name}: compute() did not produce columns {missing}")
        return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in self.schema.fields])
