"""Typed configuration: ``conf/base.yml`` overridden by ``conf/<env>.yml``, parsed once.

Every section is a frozen pydantic model that rejects unknown keys and wrong types.  An error names
the dotted key and the file that set it, so a typo in ``prod.yml`` is reported as such, before any
job touches a table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pricing.errors import ConfigError

ENVIRONMENTS = ("local", "dev", "prod")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def project_root() -> Path:
    """The folder holding ``conf/``: ``PRICING_HOME``, else the source checkout, else the cwd."""
    env = os.environ.get("PRICING_HOME")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[1]
    if (here / "conf" / "base.yml").exists():
        return here
    return Path.cwd().resolve()


def check_identifier(value: str, what: str) -> str:
    """Catalog, schema and table names are validated, never pasted into SQL unchecked."""
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid identifier (letters, digits and _, not starting with a digit)"
        )
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class StorageConfig(_Section):
    root: str = ".pricing"
    """Local state root, relative to the project root unless absolute."""
    catalog: str | None = None
    """Unity Catalog catalog.  Set on Databricks: tables then resolve to ``catalog.schema.table``."""
    schemas: dict[str, str] = Field(
        default_factory=lambda: {
            "bronze": "bronze",
            "silver": "silver",
            "features": "features",
            "ml": "ml",
            "truth": "truth",
        }
    )

    @field_validator("catalog")
    @classmethod
    def _catalog_ok(cls, v: str | None) -> str | None:
        return None if v is None else check_identifier(v, "catalog")

    @field_validator("schemas")
    @classmethod
    def _schemas_ok(cls, v: dict[str, str]) -> dict[str, str]:
        for layer, schema in v.items():
            check_identifier(layer, "layer")
            check_identifier(schema, f"schema for layer {layer!r}")
        return v


class SparkConfig(_Section):
    app_name: str = "marketplace-pricing"
    master: str = "local[*]"
    shuffle_partitions: int = Field(8, ge=1)
    driver_memory: str = "4g"
    jars_dir: str = ".cache/delta-jars"
    ui: bool = True
    conf: dict[str, str] = Field(default_factory=dict)


class SimulatorConfig(_Section):
    seed: int = 42
    n_listings: int = Field(200_000, ge=100)
    n_sellers: int = Field(20_000, ge=10)
    n_brands: int = Field(3_000, ge=10)
    start_date: date = date(2024, 11, 1)
    days: int = Field(730, ge=30)
    partitions: int = Field(8, ge=1)
    bad_record_rate: float = Field(0.01, ge=0.0, le=0.5)
    """Share of landing events damaged with one fault kind each (see ``pricing.landing.FAULTS``)."""
    export_through: date | None = None
    """Last day of the landing export; ``None`` = the whole simulated period.  Raising it later adds
    the new days' files only, the way an app's daily export arrives."""


class MercariConfig(_Section):
    """The public Mercari Price Suggestion format has no timestamps: listings are spread over a
    synthetic period in ``train_id`` order (see ``pricing.sources.mercari``)."""

    currency: str = "USD"
    start_date: date = date(2018, 1, 1)
    days: int = Field(365, ge=30)


class IngestConfig(_Section):
    source: Literal["simulator", "mercari"] = "simulator"
    """simulator: the landing JSON files ``generate`` writes; mercari: a Mercari-format TSV at ``path``."""
    landing_dir: str = "landing"
    """Relative to ``storage.root`` unless absolute."""
    path: str | None = None
    """Input file for file-based sources (mercari); relative to the project root unless absolute."""
    mercari: MercariConfig = Field(default_factory=MercariConfig)

    @model_validator(mode="after")
    def _path_for_files(self) -> IngestConfig:
        if self.source == "mercari" and not self.path:
            raise ValueError("ingest.source 'mercari' needs ingest.path (the .tsv file to load)")
        return self


class FeaturesConfig(_Section):
    sold_within_days: int = Field(30, ge=1)
    shrinkage_k: float = Field(20.0, ge=0)
    """market_stats: pseudo-sales of the parent segment mixed into each segment's statistics."""
    incremental: bool = True
    """Process only data ingested since each table's watermark; false rebuilds every table in full."""


class ValidateConfig(_Section):
    suites_dir: str = "conf/expectations"
    """The Great Expectations suites, one YAML file per table; relative to the project root unless absolute."""
    data_docs_dir: str = "data_docs"
    """Where GX Data Docs HTML is written; relative to ``storage.root`` unless absolute."""
    gx_dir: str = "gx"
    """The GX file context (suites, validation results behind the Data Docs); relative to ``storage.root``."""
    reference_time: datetime | None = None
    """The "now" of freshness checks (``max_age_hours``), UTC unless a zone is given.  ``None``: the end
    of the simulated period for ``ingest.source`` simulator and mercari, whose timelines are fixed
    (see ``jobs.validate.reference_time``), else the current time."""

    @field_validator("reference_time")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return None
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


class TrainConfig(_Section):
    num_workers: int = Field(2, ge=1)
    device: Literal["cpu", "cuda"] = "cpu"
    quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)
    test_days: int = Field(28, ge=1)
    validation_days: int = Field(28, ge=1)
    max_depth: int = Field(8, ge=1, le=16)
    learning_rate: float = Field(0.1, gt=0, le=1)
    n_estimators: int = Field(300, ge=1)
    early_stopping_rounds: int = Field(20, ge=1)
    min_child_weight: float = Field(1.0, ge=0)
    subsample: float = Field(1.0, gt=0, le=1)
    seed: int = 7

    @field_validator("quantiles")
    @classmethod
    def _quantiles_ok(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not (0 < v[0] < v[1] < v[2] < 1):
            raise ValueError("quantiles must be increasing and inside (0, 1), e.g. [0.1, 0.5, 0.9]")
        return v


class PromoteConfig(_Section):
    min_improvement: float = Field(0.0, ge=0)
    """Relative RMSLE improvement the challenger needs over the champion."""
    max_coverage_error: float = Field(0.1, ge=0, le=1)
    """Largest |80% interval coverage - 0.80| a model may have and still be sane."""


class ScoreConfig(_Section):
    price_points: tuple[float, ...] = (0.0, 0.5, 0.99)
    """Price endings sellers use; suggestions are rounded to the nearest one."""
    min_price: float = Field(1.0, gt=0)
    max_price: float = Field(5000.0, gt=0)


class MlflowConfig(_Section):
    tracking_uri: str | None = None
    """None: ``sqlite:///<storage.root>/mlflow.db``."""
    registry_uri: str | None = None
    """None: same as the tracking store.  ``databricks-uc`` on Databricks."""
    artifact_root: str | None = None
    """None: ``<storage.root>/mlartifacts``."""
    experiment: str = "pricing-local"
    model_name: str = "marketplace_price"

    @field_validator("model_name")
    @classmethod
    def _model_name_ok(cls, v: str) -> str:
        parts = v.split(".")
        if len(parts) not in (1, 3):
            raise ValueError("model_name is either a plain name or catalog.schema.model for Unity Catalog")
        for p in parts:
            check_identifier(p, "model_name part")
        return v


class Config(_Section):
    env: Literal["local", "dev", "prod"] = "local"
    storage: StorageConfig = Field(default_factory=StorageConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    train: TrainConfig = Field(default_factory=TrainConfig)
    promote: PromoteConfig = Field(default_factory=PromoteConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    project_dir: str = ""
    """Filled in by :func:`load_config`; relative paths resolve against it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _uc_model_name(self) -> Config:
        if self.mlflow.registry_uri == "databricks-uc" and self.mlflow.model_name.count(".") != 2:
            raise ValueError("mlflow.model_name must be catalog.schema.model when registry_uri is databricks-uc")
        return self

    # ---- derived locations -------------------------------------------------------------------
    def path(self, p: str) -> Path:
        """Resolve a configured path against the project directory."""
        q = Path(p)
        return q if q.is_absolute() else Path(self.project_dir) / q

    @property
    def state_dir(self) -> Path:
        return self.path(self.storage.root)

    def state_path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else self.state_dir / q

    @property
    def on_databricks(self) -> bool:
        return self.storage.catalog is not None

    def with_overrides(self, overrides: list[str]) -> Config:
        """This config with ``section.key=value`` overrides applied and re-validated."""
        if not overrides:
            return self
        data = self.model_dump(by_alias=True)
        for item in overrides:
            keys, value = _parse_override(item)
            cur = data
            for k in keys[:-1]:
                if not isinstance(cur.get(k), dict):
                    raise ConfigError(f"override {item!r}: {k!r} is not a config section")
                cur = cur[k]
            cur[keys[-1]] = value
        try:
            return Config.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid override(s) {overrides}: {exc}") from None


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any], origin: dict[tuple[str, ...], str],
                source: str, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value, origin, source, path)
        else:
            out[key] = value
            origin[path] = source
            if isinstance(value, Mapping):
                for sub in _leaf_paths(value, path):
                    origin[sub] = source
    return out


def _leaf_paths(d: Mapping[str, Any], prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    paths = []
    for k, v in d.items():
        p = (*prefix, str(k))
        paths.append(p)
        if isinstance(v, Mapping):
            paths.extend(_leaf_paths(v, p))
    return paths


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def load_config(env: str | None = None, overrides: Mapping[str, Any] | list[str] | None = None,
                conf_dir: Path | None = None, project_dir: Path | None = None) -> Config:
    """Load ``base.yml`` + ``<env>.yml`` (+ overrides) into a validated :class:`Config`.

    ``overrides`` is either a nested mapping or ``["section.key=value", ...]`` (as ``--set`` gives).
    """
    env = env or os.environ.get("PRICING_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {env!r}; choose one of {', '.join(ENVIRONMENTS)}")
    project = (project_dir or project_root()).resolve()
    conf = conf_dir or project / "conf"
    base_file = conf / "base.yml"
    if not base_file.exists():
        raise ConfigError(f"{base_file} not found; run from the project folder or set PRICING_HOME")
    origin: dict[tuple[str, ...], str] = {}
    merged = _deep_merge({}, _read_yaml(base_file), origin, str(base_file))
    env_file = conf / f"{env}.yml"
    if env_file.exists():
        merged = _deep_merge(merged, _read_yaml(env_file), origin, str(env_file))
    if overrides:
        if isinstance(overrides, list):
            nested: dict[str, Any] = {}
            for item in overrides:
                keys, value = _parse_override(item)
                cur = nested
                for k in keys[:-1]:
                    cur = cur.setdefault(k, {})
                cur[keys[-1]] = value
            overrides = nested
        merged = _deep_merge(merged, overrides, origin, "overrides")
    merged["env"] = env
    merged["project_dir"] = str(project)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            where = next((origin[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in origin), str(base_file))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            lines.append(f"  {'.'.join(loc)}: {msg} (in {where})")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
