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

from pricing.platform.errors import ConfigError

ENVIRONMENTS = ("local", "dev", "prod")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def project_root() -> Path:
    """The folder holding ``conf/``: ``PRICING_HOME``, else the source checkout, else the cwd."""
    env = os.environ.get("PRICING_HOME")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[2]
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

    @field_validator("root")
    @classmethod
    def _root_ok(cls, v: str) -> str:
        # Local tables are addressed in SQL as delta.`<path>`: a back-quote would end the quoting.
        bad = [c for c in ("`", "\n", "\r", "\0") if c in v]
        if not v.strip() or bad:
            raise ValueError(f"storage.root {v!r} must be a non-empty path without back-quotes or control characters")
        return v

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
    """Share of landing events damaged with one fault kind each (see ``pricing.world.export.FAULTS``)."""
    export_through: date | None = None
    """Last day of the landing export; ``None`` = the whole simulated period.  Raising it later adds
    the new days' files only, the way an app's daily export arrives."""
    price_nudge_share: float = Field(0.1, ge=0.0, le=1.0)
    """Price exploration: the share of listings (hashed, random) whose asking price the marketplace multiplies
    by ``exp(U(-price_nudge_max, price_nudge_max))``, as an exploration experiment would; 0 turns it off.  The
    demand model learns price response from these nudges (``pricing.demand_model.estimator``)."""
    price_nudge_max: float = Field(0.3, ge=0.0, le=1.0)
    """Largest nudge, on the log scale (0.3: prices times 0.74 .. 1.35)."""
    product_share: float = Field(0.35, ge=0.0, le=1.0)
    """Share of branded listings that are instances of a canonical product (brand, model line, colourway,
    type), titled differently by each seller; the product id is kept in ``truth.listings`` only."""
    listings_per_product: float = Field(25.0, ge=1.0)
    """Average instances per canonical product: the number of products grows with ``n_listings``."""


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
    lock_timeout_s: float = Field(600.0, ge=0)
    """Two ingests must not overlap (they share the streams' checkpoints): a second run waits this long for
    the first one's lock under ``storage.root``, then fails before reading or writing anything."""

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
    comparables: bool = True
    """Comparable-sales features (``features.comparable_sales``, from ``pricing match``'s product matches)
    are built, joined into the training set and used by the price model; false leaves them out of all three."""
    comparables_k: int = Field(10, ge=1, le=100)
    """Nearest comparables per listing: the k best-ranked matches sold before its listing time."""


class MatchConfig(_Section):
    """Product matching (``pricing match``, ``pricing.matching.products``): MinHash LSH on title shingles within
    brand x category blocks, a scored pairwise decision, and product clusters."""

    method: Literal["banded", "spark_ml"] = "banded"
    """banded: MinHash signatures in ``num_bands`` bands of ``rows_per_band`` (AND within a band, OR across);
    spark_ml: Spark ML ``MinHashLSH.approxSimilarityJoin`` (one min-hash per table, OR-ed).  Measured side by
    side in ``bench/matching.py``."""
    num_bands: int = Field(16, ge=1, le=200)
    rows_per_band: int = Field(3, ge=1, le=20)
    seed: int = 13
    """Seeds the MinHash functions: the same seed gives the same pairs on every run and cluster."""
    threshold: float = Field(0.6, gt=0, le=1)
    """Same product: the model words' shingle Jaccard at least this (plus the same type and agreeing colours)."""
    min_similarity: float = Field(0.3, gt=0, le=1)
    """Candidate pairs at or above this similarity are kept as comparables."""
    max_cluster_iterations: int = Field(30, ge=1)
    """Rounds of label propagation allowed for the product clusters before the job fails."""

    @model_validator(mode="after")
    def _thresholds_ok(self) -> MatchConfig:
        if self.min_similarity > self.threshold:
            raise ValueError(f"min_similarity {self.min_similarity} must not exceed threshold {self.threshold}: "
                             "every same-product pair is also a comparable")
        return self


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


class TuningConfig(_Section):
    """Optional hyperparameter search (Optuna TPE); each trial is a nested MLflow run scored on the
    validation weeks, never on the test weeks."""

    enabled: bool = False
    n_trials: int = Field(12, ge=1)
    timeout_s: float = Field(1800.0, gt=0)
    """Stop starting new trials after this many seconds."""


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
    colsample_bytree: float = Field(1.0, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    seed: int = 7
    intervals: Literal["conformal", "quantile"] = "conformal"
    """How p10/p90 are made: split-conformal offsets around the median (per ``interval_segment``), or two
    more boosters with ``reg:quantileerror``.  Measured side by side in ``bench/intervals.py``."""
    interval_segment: str = "category_code"
    """Model feature whose value selects the conformal offsets (``none``: one global range)."""
    interval_min_rows: int = Field(200, ge=10)
    """A segment needs this many validation rows for offsets of its own; the rest use the global ones."""
    brand_tier_min_sales: int = Field(20, ge=1)
    """Evaluation: brands with fewer training sales are reported as "rare brand", not in a price tier."""
    tuning: TuningConfig = Field(default_factory=TuningConfig)

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
    max_segment_regression: float = Field(0.02, ge=0)
    """A challenger may be worse than the champion by at most this relative RMSLE on any major segment."""
    min_segment_rows: int = Field(200, ge=1)
    """A segment is major when the holdout has at least this many of its rows."""
    challenger_version: int | None = None
    """Set by the workflow from the train task's value: promote refuses if alias `challenger` has moved."""


class ScoreConfig(_Section):
    price_points: tuple[float, ...] = (0.0, 0.5, 0.99)
    """Price endings sellers use; suggestions are rounded to the nearest one."""
    min_price: float = Field(1.0, gt=0)
    """Floor of every suggestion (unless ``category_bounds`` sets the category's own)."""
    max_price: float = Field(5000.0, gt=0)
    """Ceiling of every suggestion (unless ``category_bounds`` sets the category's own)."""
    category_bounds: dict[str, tuple[float, float]] = Field(default_factory=dict)
    """category -> [floor, ceiling] for suggestions in that category."""
    review_max_range_ratio: float = Field(4.0, gt=1)
    """Flag ``needs_review`` when p90 / p10 exceeds this (the model is unsure)."""
    review_min_support: int = Field(5, ge=0)
    """Flag ``needs_review`` when the brand x category sold fewer items in the 90 days before listing."""
    scoring_date: date | None = None
    """The date the rows are written under; None = today (UTC).  Rerunning a date replaces its rows."""
    champion_version: int | None = None
    """Set by the workflow from the promote task's value: score refuses if alias `champion` has moved."""

    @model_validator(mode="after")
    def _bounds_ok(self) -> ScoreConfig:
        if self.min_price >= self.max_price:
            raise ValueError(f"min_price {self.min_price} must be below max_price {self.max_price}")
        for cat, (lo, hi) in self.category_bounds.items():
            if not 0 < lo < hi:
                raise ValueError(f"category_bounds[{cat!r}] must be [floor, ceiling] with 0 < floor < ceiling")
        return self


ExperimentPolicy = Literal["own_price", "champion", "challenger", "multiplier"]
ExperimentMetric = Literal["sell_through", "gmv_per_listing", "days_on_market", "price_accepted"]
_EXPERIMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ExperimentConfig(_Section):
    """Pricing-policy experiments (``pricing experiment simulate | analyse | design``)."""

    experiment_id: str = "exp_001"
    """Names the experiment's rows in every experiment table; rerunning an id replaces its rows."""
    control_policy: ExperimentPolicy = "own_price"
    """What control sellers see: own_price (no suggestion), champion, challenger (a model's p50) or multiplier."""
    treatment_policy: ExperimentPolicy = "challenger"
    """What treatment sellers see; the same policy in both arms is a deliberate A/A test."""
    price_multiplier: float = Field(0.95, gt=0, le=10)
    """The multiplier policy suggests the seller's own price times this."""
    treatment_share: float = Field(0.5, gt=0, lt=1)
    """Designed share of sellers in treatment."""
    adoption_rate: float = Field(0.6, ge=0, le=1)
    """Probability that a seller takes the suggested price for a listing."""
    horizon_days: int = Field(30, ge=1, le=60)
    """Outcomes within this many days of listing (the simulator sells nothing after day 60)."""
    start_date: date | None = None
    """First listing day of the experiment; None: the last ``days`` days of listings in silver."""
    days: int = Field(28, ge=1)
    """Listings created in [start_date, start_date + days) are in the experiment."""
    pre_period_days: int = Field(56, ge=1)
    """CUPED covariates: the sellers' listings created in the ``pre_period_days`` before
    ``start_date - horizon_days`` (so their outcomes are known before the experiment starts)."""
    seed: int = 11
    alpha: float = Field(0.05, gt=0, lt=0.5)
    power: float = Field(0.8, gt=0, lt=1)
    correction: Literal["holm", "bh"] = "holm"
    """Multiple-metric guard: holm (family-wise error rate, the default) or bh (false-discovery rate)."""
    srm_alpha: float = Field(0.001, gt=0, lt=0.5)
    """The sample-ratio-mismatch check fails below this p-value."""
    balance_alpha: float = Field(0.01, gt=0, lt=0.5)
    """Pre-period balance is flagged below this Holm-adjusted p-value."""
    fail_on_srm: bool = True
    """``analyse`` records its results and then exits non-zero when the SRM check fails."""
    mde_relative: tuple[float, ...] = (0.02, 0.05, 0.10)
    """``design``: minimum detectable effects relative to each metric's baseline."""
    mde_absolute: dict[ExperimentMetric, float] = Field(default_factory=dict)
    """``design``: absolute minimum detectable effects per metric, e.g. {sell_through: 0.01}."""
    lost_treatment_share: float = Field(0.0, ge=0, lt=1)
    """Fault injection for ``simulate``: lose this share of treatment sellers (an SRM the check must catch)."""

    @field_validator("experiment_id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        if not _EXPERIMENT_ID.match(v):
            raise ValueError(f"experiment_id {v!r} must be 1-64 letters, digits, _ or -")
        return v

    @field_validator("mde_relative")
    @classmethod
    def _mde_ok(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not 0 < x < 10 for x in v):
            raise ValueError("mde_relative must be a non-empty list of positive shares, e.g. [0.02, 0.05]")
        return v

    @field_validator("mde_absolute")
    @classmethod
    def _abs_ok(cls, v: dict[str, float]) -> dict[str, float]:
        if any(x == 0 for x in v.values()):
            raise ValueError("mde_absolute values must not be 0")
        return v


class DemandConfig(_Section):
    """The demand model (``pricing demand``): P(sold within ``features.sold_within_days`` | features, price).

    A classifier gives the sale probability at the seller's own price; how it moves with the price comes from
    the randomised price nudges (``identification: exploration``), never from the observational price slope,
    which is confounded (sellers who know their item is worth more ask more).  See ``pricing.demand_model.estimator``."""

    identification: Literal["exploration", "naive"] = "exploration"
    """exploration: price response (elasticity) from the price-exploration experiment's nudges; naive: the
    classifier's own slope in price (confounded; for sources without an experiment)."""
    elasticity_segment: tuple[str, ...] = ("department", "category", "subcategory")
    """training_set columns whose values get an elasticity of their own (shrunk toward the overall one)."""
    elasticity_prior_sd: float = Field(0.5, gt=0)
    """Shrinkage: prior sd of a segment's elasticity around the overall elasticity."""
    validation_days: int = Field(28, ge=1)
    """Latest labelled listing days before the test days: early stopping."""
    test_days: int = Field(28, ge=1)
    """Latest labelled listing days: metrics only (log loss, AUC, calibration, monotonicity)."""
    max_depth: int = Field(6, ge=1, le=16)
    learning_rate: float = Field(0.1, gt=0, le=1)
    n_estimators: int = Field(400, ge=1)
    early_stopping_rounds: int = Field(20, ge=1)
    min_child_weight: float = Field(5.0, ge=0)
    seed: int = 13


class RecommendConfig(_Section):
    """Price recommendations (``pricing recommend``) -> ``ml.price_recommendations``."""

    objective: Literal["revenue", "sell_through"] = "revenue"
    """revenue: the price with the highest expected revenue within the horizon; sell_through: the highest
    sale probability among prices keeping at least ``min_revenue_share`` of that best expected revenue."""
    min_revenue_share: float = Field(0.9, gt=0, le=1)
    max_change: float = Field(0.3, gt=0, lt=1)
    """Guardrail: the recommendation stays within current price x [1 - max_change, 1 + max_change]."""
    grid_size: int = Field(41, ge=3, le=401)
    """Candidate prices per listing, log-spaced over the allowed range, then rounded to ``score.price_points``."""
    reason_tolerance: float = Field(0.05, ge=0, lt=1)
    """Within this relative distance of the current price a listing is "well priced"."""
    compare_naive: bool = True
    """Evaluation: also optimise with the naive (observational) price response, to show what confounding costs."""
    evaluate: bool = True
    """When the simulator's ``truth.listings`` exists: evaluate the policies against the true demand."""
    scoring_date: date | None = None
    """The date the rows are written under; None = today (UTC).  Rerunning a date replaces its rows."""
    demand_version: int | None = None
    """Set by the workflow from the demand task's value: recommend refuses if alias `champion` has moved."""


class MlflowConfig(_Section):
    tracking_uri: str | None = None
    """None: ``sqlite:///<storage.root>/mlflow.db``."""
    registry_uri: str | None = None
    """None: same as the tracking store.  ``databricks-uc`` on Databricks."""
    artifact_root: str | None = None
    """None: ``<storage.root>/mlartifacts``."""
    experiment: str = "pricing-local"
    model_name: str = "marketplace_price"
    demand_model_name: str = "marketplace_demand"
    """Registered name of the demand model (``pricing demand``); aliases as for the price model."""

    @field_validator("model_name", "demand_model_name")
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
    match: MatchConfig = Field(default_factory=MatchConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    train: TrainConfig = Field(default_factory=TrainConfig)
    promote: PromoteConfig = Field(default_factory=PromoteConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)
    demand: DemandConfig = Field(default_factory=DemandConfig)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    project_dir: str = ""
    """Filled in by :func:`load_config`; relative paths resolve against it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _uc_model_name(self) -> Config:
        if self.mlflow.registry_uri == "databricks-uc" and self.mlflow.model_name.count(".") != 2:
            raise ValueError("mlflow.model_name must be catalog.schema.model when registry_uri is databricks-uc")
        if self.mlflow.registry_uri == "databricks-uc" and self.mlflow.demand_model_name.count(".") != 2:
            raise ValueError("mlflow.demand_model_name must be catalog.schema.model when registry_uri is "
                             "databricks-uc")
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
    def landing_dir(self) -> Path:
        """Where landing files arrive (``ingest.landing_dir`` under the state root unless absolute)."""
        return self.state_path(self.ingest.landing_dir)

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
