"""Logical table names and where they live.

Jobs name tables logically (``catalog.BRONZE_LISTINGS_RAW``).  Locally a name resolves to a Delta path
under ``<storage.root>/warehouse/``; on Databricks (``storage.catalog`` set) to the Unity Catalog
name ``catalog.schema.table``.  Every part is validated as an identifier and back-quoted when used
in SQL, so a name carrying quotes or semicolons fails before any write.
"""

from __future__ import annotations

from dataclasses import dataclass

from pricing.platform.catalog import Table
from pricing.platform.config import Config, check_identifier
from pricing.platform.errors import ConfigError


@dataclass(frozen=True)
class TableRef:
    logical: str
    path: str | None = None
    """Local Delta path; None on Unity Catalog."""
    full_name: str | None = None
    """``catalog.schema.table``; None locally."""

    @property
    def sql(self) -> str:
        """A SQL-safe reference: ``delta.`path``` or a back-quoted three-level name."""
        if self.full_name is not None:
            return ".".join(f"`{p}`" for p in self.full_name.split("."))
        assert self.path is not None
        if "`" in self.path:
            raise ConfigError(f"table path {self.path!r} may not contain a back-quote")
        return f"delta.`{self.path}`"

    @property
    def local_path(self) -> str:
        """The local Delta path, for a table that is not in Unity Catalog."""
        if self.path is None:
            raise ValueError(f"table {self.logical} ({self.full_name}) has no local path: it is in Unity Catalog")
        return self.path

    def __str__(self) -> str:
        return self.full_name or str(self.path)


def table(cfg: Config, entry: Table | str) -> TableRef:
    """Resolve a catalog entry (or a ``layer.name`` string, for ad-hoc tables) through config."""
    logical = entry.logical if isinstance(entry, Table) else entry
    try:
        layer, name = logical.split(".")
        check_identifier(layer, "layer")
        check_identifier(name, "table name")
    except ValueError as exc:
        raise ConfigError(f"table name {logical!r} must be layer.table with identifier parts: {exc}") from None
    schema = cfg.storage.schemas.get(layer)
    if schema is None:
        raise ConfigError(f"table {logical!r}: layer {layer!r} is not in storage.schemas")
    if cfg.storage.catalog:
        return TableRef(logical, full_name=f"{cfg.storage.catalog}.{schema}.{name}")
    return TableRef(logical, path=str(cfg.state_dir / "warehouse" / schema / name))
