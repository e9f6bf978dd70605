"""Typed configuration, and the one home of every default: ``conf/base.yml`` (the project's own settings) is
overridden by ``conf/<env>.yml`` and then by ``--set`` overrides, parsed once into these models.

Each field's default and its docstring here are the only place a setting's default value and meaning are
written; ``pricing config`` prints the effective configuration with those docstrings.

Every section is a frozen pydantic model that rejects unknown keys and wrong types.  An error names
the dotted key and the file that set it, so a typo in ``prod.yml`` is reported as such, before any
job touches a table.

The ``conf/`` folder is found without a checkout or an environment variable (:func:`conf_home`): ``PRICING_HOME``
if set, else the source checkout's, else the copy the wheel ships as ``pricing.conf``; relative state paths resolve
against :func:`project_root` (the checkout, else the working directory).
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pricing.platform.errors import ConfigError
from pricing.platform.objective import VALUED, Objective

ENVIRONMENTS = ("local", "dev", "prod")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


PACKAGED_CONF = "pricing.conf"
"""The wheel ships the top-level ``conf/`` folder as this package (``pyproject.toml``)."""


def checkout_root() -> Path | None:
    """The source checkout this code runs from (a development or editable install) if it holds
    ``conf/base.yml``; None for an installed wheel."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "conf" / "base.yml").is_file() else None


def packaged_conf() -> Path | None:
    """The configuration packaged in the installed wheel (``pricing.conf``), if it is there on the file system."""
    try:
        folder = resources.files(PACKAGED_CONF)
    except ModuleNotFoundError:
        return None
    return folder if isinstance(folder, Path) and (folder / "base.yml").is_file() else None


def project_root() -> Path:
    """Where relative paths (``storage.root``, ``spark.jars_dir``, ``ingest.path``) resolve: ``PRICING_HOME``,
    else the source checkout, else the working directory (an installed wheel, e.g. a Databricks task)."""
    env = os.environ.get("PRICING_HOME")
    if env:
        return Path(env).resolve()
    return checkout_root() or Path.cwd().resolve()


def conf_home() -> Path:
    """The folder holding ``base.yml``, ``<env>.yml`` and ``expectations/``: ``$PRICING_HOME/conf`` if
    ``PRICING_HOME`` is set; else the source checkout's ``conf/`` (in development a checkout's conf wins); else
    the configuration packaged in the wheel, so an installed task needs no checkout and no environment variable."""
    env = os.environ.get("PRICING_HOME")
    if env:
        conf = Path(env).resolve() / "conf"
        if not (conf / "base.yml").is_file():
            raise ConfigError(f"{conf / 'base.yml'} not found: PRICING_HOME={env} must be a folder holding "
                              "conf/base.yml (unset it to use the configuration packaged with pricing)")
        return conf
    checkout = checkout_root()
    if checkout is not None:
        return checkout / "conf"
    packaged = packaged_conf()
    if packaged is None:
        raise ConfigError(
            f"no configuration found: looked for conf/base.yml in the source checkout "
            f"({Path(__file__).resolve().parents[2]}) and for base.yml in the installed package {PACKAGED_CONF} "
            f"({_package_location()}); rebuild and reinstall the wheel (it ships conf/ as {PACKAGED_CONF}) or set "
            "PRICING_HOME to a folder holding conf/base.yml")
    return packaged


def _package_location() -> str:
    try:
        return str(resources.files(PACKAGED_CONF))
    except ModuleNotFoundError:
        return "not installed"


def check_identifier(value: str, what: str) -> str:
    """Catalog, schema and table names are validated, never pasted into SQL unchecked."""
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid identifier (letters, digits and _, not starting with a digit)"
        )
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, use_attribute_docstrings=True)

SCHEMAS = {"bronze": "bronze", "silver": "silver", "features": "features", "ml": "ml", "truth": "truth"}
"""The layers and their default schema names."""


class StorageConfig(_Section):
    root: str = ".pricing"
    """The one root of all state that is not a table: landing files, stream checkpoints, the GX store and Data
    Docs, task values, locks (and, locally, the Delta warehouse and the MLflow store).  Relative to the project
    root unless absolute.  On Databricks (``catalog`` set) a Unity Catalog Volume,
    ``/Volumes/<catalog>/<schema>/<volume>``: executors and every cluster see it, never a driver's local disk."""
    catalog: str | None = None
    """Unity Catalog catalog.  Set on Databricks: tables then resolve to ``catalog.schema.table``."""
    lock: Literal["flock", "filesystem", "none"] = "flock"
    """How a job that must not overlap itself (``ingest``: its streams' checkpoints take one writer) is kept
    exclusive (``pricing.platform.locks``).  flock: an OS file lock under ``root``, released by the kernel when
    its process dies, but only seen by processes on the same machine (local runs).  filesystem: a lease file
    under ``root`` created through the Hadoop FileSystem only if absent, renewed while held and taken over once
    ``lock_ttl_s`` passes without renewal; it works across drivers and clusters on a Volume or cloud storage
    (Databricks).  none: no lock; the jobs' ``max_concurrent_runs: 1`` and Delta's optimistic concurrency (the
    ingest MERGEs are insert-only on event_id) are then the only guard."""
    lock_ttl_s: float = Field(default=120.0, ge=10)
    """filesystem lock: a holder renews its lease every third of this; a lease not renewed for this long (its
    driver died without releasing it) is taken over by the next run."""
    schemas: dict[str, str] = Field(default_factory=lambda: dict(SCHEMAS))
    """Schema of each layer.  A partial mapping (``--set storage.schemas.ml=x``, as every bundle task passes)
    renames those layers only: the others keep their default schema."""

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

    @field_validator("schemas", mode="before")
    @classmethod
    def _schemas_complete(cls, v: Any) -> Any:
        return {**SCHEMAS, **v} if isinstance(v, Mapping) else v

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
    shuffle_partitions: int = Field(default=8, ge=1)
    """Sized for a small machine; raise on a cluster."""
    driver_memory: str = "4g"
    jars_dir: str = ".cache/delta-jars"
    """Filled once by `make jars`."""
    ui: bool = True
    conf: dict[str, str] = Field(default_factory=dict)


class SimulatorConfig(_Section):
    seed: int = 42
    world: Literal["standard", "hard"] = "standard"
    """How sellers title products.  standard: the world the matcher was developed on (its output is unchanged
    by this key).  hard: a world the matcher was not written against (``pricing.world.hard``): held-out
    synonyms, abbreviations and typos, titles without the brand (and some listings without a brand at
    all), sizes in unfamiliar formats, titles that leave out the model number, namesake models under other
    brands, and listings that are not the product but share its words (``lot of 3``, ``box only``, ``dust
    bag for``); only ``truth.listings.product_id`` says which listings are one product."""
    n_listings: int = Field(default=200_000, ge=100)
    n_sellers: int = Field(default=20_000, ge=10)
    n_brands: int = Field(default=3_000, ge=10)
    start_date: date = date(2024, 11, 1)
    days: int = Field(default=730, ge=30)
    partitions: int = Field(default=8, ge=1)
    bad_record_rate: float = Field(default=0.01, ge=0.0, le=0.5)
    """Share of landing events damaged with one fault kind each (see ``pricing.world.export.FAULTS``)."""
    export_through: date | None = None
    """Last day of the landing export; ``None`` = the whole simulated period.  Raising it later adds
    the new days' files only, the way an app's daily export arrives."""
    price_nudge_share: float = Field(default=0.1, ge=0.0, le=1.0)
    """Price exploration: the share of listings (hashed, random) whose asking price the marketplace multiplies
    by ``exp(U(-price_nudge_max, price_nudge_max))``, as an exploration experiment would; 0 turns it off.  The
    demand model learns price response from these nudges (``pricing.demand_model.estimator``)."""
    price_nudge_max: float = Field(default=0.3, ge=0.0, le=1.0)
    """Largest nudge, on the log scale (0.3: prices times 0.74 .. 1.35)."""
    exploration: Literal["nudge", "encouragement"] = "nudge"
    """How the experiment moves prices.  nudge: the marketplace sets the nudged asking price itself.
    encouragement: it only *suggests* the nudged price (the seller's own price times ``exp(U(-max, max))``)
    and each seller adopts the suggestion with a probability of their own, which also depends on what they
    know about the item and the nudge's direction (``pricing.world.simulator``); the marketplace logs who
    adopted (``pricing.sources.exploration.SUGGESTION_LOG``).  The demand model then estimates elasticity
    by intent to treat (``pricing.demand_model.estimator``)."""
    suggestion_adoption: float = Field(default=0.5, gt=0.0, lt=1.0)
    """encouragement: the typical seller's probability of adopting a suggested price."""
    product_share: float = Field(default=0.35, ge=0.0, le=1.0)
    """Share of branded listings that are instances of a canonical product (brand, model line, colourway,
    type), titled differently by each seller; the product id is kept in ``truth.listings`` only."""
    listings_per_product: float = Field(default=25.0, ge=1.0)
    """Average instances per canonical product: the number of products grows with ``n_listings``."""


class MercariConfig(_Section):
    """The public Mercari Price Suggestion format has no timestamps: listings are spread over a
    synthetic period in ``train_id`` order (see ``pricing.sources.mercari``)."""

    currency: str = "USD"
    start_date: date = date(2018, 1, 1)
    days: int = Field(default=365, ge=30)


_EVENT_COLUMNS = ("event_id", "event_time", "listing_id")
_SOURCE_TABLE_PATH_BAD = ("`", "\n", "\r", "\0")


class SourceTableConfig(_Section):
    """An existing table (Unity Catalog name or Delta path) mapped onto one bronze event table
    (``ingest.source: tables``, see ``pricing.sources.tables``).  ``columns`` maps our bronze column to their
    column or a Spark SQL expression over their columns; bronze columns left out are null."""

    EVENT_TYPE: ClassVar[str] = ""
    """The landing event type this section supplies."""
    COLUMNS: ClassVar[tuple[str, ...]] = _EVENT_COLUMNS
    """Our bronze columns a source table may supply (``source_file`` and ``ingested_at`` are set by ingest,
    ``event_type`` by the section)."""
    REQUIRED: ClassVar[tuple[str, ...]] = ("event_time", "listing_id")
    """Columns every record needs (left out, every record would be quarantined), so they must be mapped."""

    table: str | None = None
    """Table name, ``catalog.schema.table`` (Unity Catalog), ``schema.table`` or ``table``; every part an
    identifier.  Exactly one of ``table`` and ``path``."""
    path: str | None = None
    """A Delta table's location instead of ``table``: relative to the project root unless absolute or a URI
    (``s3://``, ``abfss://``, ``dbfs:/``)."""
    columns: dict[str, str] = Field(default_factory=dict)
    """Our bronze column -> their column name or a Spark SQL expression over their columns (``cond_code``,
    ``lower(cond)``, ``'EUR'``, ``-1``; a name with other characters back-quoted: `` `Listing ID` ``).  The
    required columns must be mapped; others left out are null (``style_tags``: an empty list)."""
    key: tuple[str, ...] = ("listing_id",)
    """When ``event_id`` is not mapped, it is derived from these of our columns (as mapped), which must identify
    a record: ``tables:<event_type>:`` + SHA-256 of the source name (``table`` or ``path`` as configured) and
    their values.  Stable across runs, so a re-run adds nothing; renaming the source changes every id."""
    where: str | None = None
    """Spark SQL predicate on their table: only rows where it is true are read (all rows when None)."""

    @field_validator("columns", mode="before")
    @classmethod
    def _literals_as_text(cls, v: Any) -> Any:
        # YAML reads `seller_id: -1` as a number: it is the SQL literal -1.
        if isinstance(v, Mapping):
            return {k: str(x) if isinstance(x, int | float) and not isinstance(x, bool) else x for k, x in v.items()}
        return v

    @field_validator("columns")
    @classmethod
    def _columns_ok(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(cls.COLUMNS))
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(unknown)} for {cls.EVENT_TYPE} events; "
                             f"the columns are: {', '.join(cls.COLUMNS)}")
        empty = sorted(k for k, x in v.items() if not x.strip())
        if empty:
            raise ValueError(f"column(s) {', '.join(empty)} mapped to an empty expression")
        missing = [c for c in cls.REQUIRED if c not in v]
        if missing:
            raise ValueError(f"required column(s) {', '.join(missing)} not mapped (for a constant, map a SQL "
                             "literal, e.g. currency: \"'EUR'\", seller_id: -1)")
        return v

    @field_validator("table")
    @classmethod
    def _table_ok(cls, v: str | None) -> str | None:
        if v is None:
            return None
        parts = v.split(".")
        if len(parts) > 3:
            raise ValueError(f"table {v!r} has more than three parts (catalog.schema.table)")
        for p in parts:
            check_identifier(p, f"table {v!r}: part")
        return v

    @field_validator("path")
    @classmethod
    def _path_ok(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or any(c in v for c in _SOURCE_TABLE_PATH_BAD)):
            raise ValueError(f"path {v!r} must be a non-empty path without back-quotes or control characters")
        return v

    @model_validator(mode="after")
    def _source_and_key_ok(self) -> SourceTableConfig:
        if (self.table is None) == (self.path is None):
            raise ValueError("set exactly one of table (a table name) and path (a Delta location)")
        if "event_id" in self.columns:
            if "key" in self.model_fields_set:
                raise ValueError("key is only used to derive event_id, which is mapped here: drop one of them")
        elif not self.key:
            raise ValueError("key must name at least one column when event_id is not mapped")
        else:
            bad = [k for k in self.key if k not in self.columns]
            if bad:
                raise ValueError(f"key column(s) {', '.join(bad)} are not mapped in columns")
        return self


class ListingsTableConfig(SourceTableConfig):
    """Listings, one record per listing created: ``bronze.listings_raw``."""

    EVENT_TYPE: ClassVar[str] = "listing_created"
    COLUMNS: ClassVar[tuple[str, ...]] = (
        *_EVENT_COLUMNS, "seller_id", "seller_rating", "seller_experience_years", "seller_is_shop", "title",
        "description", "brand", "category_path", "condition", "size", "colour", "material", "style_tags", "price",
        "currency", "shipping_paid_by",
    )
    REQUIRED: ClassVar[tuple[str, ...]] = ("event_time", "listing_id", "seller_id", "condition", "price",
                                           "currency")


class SalesTableConfig(SourceTableConfig):
    """Sales, one record per listing sold: ``bronze.sales_raw``."""

    EVENT_TYPE: ClassVar[str] = "listing_sold"
    COLUMNS: ClassVar[tuple[str, ...]] = (*_EVENT_COLUMNS, "price", "currency")
    REQUIRED: ClassVar[tuple[str, ...]] = ("event_time", "listing_id", "price", "currency")


class PriceChangesTableConfig(SourceTableConfig):
    """Price changes, any number per listing: ``bronze.price_changes_raw``."""

    EVENT_TYPE: ClassVar[str] = "price_changed"
    COLUMNS: ClassVar[tuple[str, ...]] = (*_EVENT_COLUMNS, "old_price", "new_price", "currency")
    REQUIRED: ClassVar[tuple[str, ...]] = ("event_time", "listing_id", "new_price", "currency")

    key: tuple[str, ...] = ("listing_id", "event_time")
    """When ``event_id`` is not mapped, it is derived from these of our columns (as mapped): a listing's
    price changes are told apart by their time.  See ``listings.key``."""


class RemovalsTableConfig(SourceTableConfig):
    """Removals (delisted unsold), one record per listing: ``bronze.removals_raw``."""

    EVENT_TYPE: ClassVar[str] = "listing_removed"


class TablesConfig(_Section):
    """``ingest.source: tables``: the team's own tables, one per event type, mapped onto the bronze tables
    (see ``pricing.sources.tables``).  Each is read whole on every run; MERGE on ``event_id`` keeps only the
    records not seen before."""

    listings: ListingsTableConfig | None = None
    """Required for the tables source."""
    sales: SalesTableConfig | None = None
    """None: no sales are ingested (the sold label then never appears)."""
    price_changes: PriceChangesTableConfig | None = None
    """None: no price history beyond each listing's price."""
    removals: RemovalsTableConfig | None = None
    """None: no removals."""


class IngestConfig(_Section):
    source: Literal["simulator", "mercari", "tables"] = "simulator"
    """simulator: the landing JSON files ``generate`` writes; mercari: a Mercari-format TSV at ``path``;
    tables: existing tables mapped onto bronze by ``tables``."""
    landing_dir: str = "landing"
    """Relative to ``storage.root`` unless absolute."""
    reader: Literal["files", "autoloader"] = "files"
    """How the landing files are streamed (``pricing.sources.ingest.landing_reader``).  files: Spark's plain
    file source (``text``), which lists the whole landing folder on each run (local runs).  autoloader: Databricks
    Auto Loader (``cloudFiles``, ``cloudFiles.format`` text, its schema location under ``storage.root``), which
    tracks the files it has seen in its checkpoint instead of listing everything again (Databricks only).  Each
    reader keeps its own checkpoint: switching reads the landing folder again, and the insert-only MERGEs on
    event_id count those events as duplicates, adding nothing."""
    path: str | None = None
    """Input file for file-based sources (mercari); relative to the project root unless absolute."""
    mercari: MercariConfig = Field(default_factory=MercariConfig)
    tables: TablesConfig = Field(default_factory=TablesConfig)
    lock_timeout_s: float = Field(default=600.0, ge=0)
    """Two ingests must not overlap (they share the streams' checkpoints): a second run waits this long for
    the first one's lock under ``storage.root``, then fails before reading or writing anything."""

    @model_validator(mode="after")
    def _path_for_files(self) -> IngestConfig:
        if self.source == "mercari" and not self.path:
            raise ValueError("ingest.source 'mercari' needs ingest.path (the .tsv file to load)")
        if self.source == "tables" and self.tables.listings is None:
            raise ValueError("ingest.source 'tables' needs ingest.tables.listings (the listings table and its "
                             "column mapping)")
        return self


class FeaturesConfig(_Section):
    sold_within_days: int = Field(default=30, ge=1)
    """Label: sold within N days of listing."""
    shrinkage_k: float = Field(default=20.0, ge=0)
    """market_stats: pseudo-sales of the parent segment mixed into each segment's statistics; the brand premium
    (training_set): pseudo-sales at premium 0 mixed into each brand's."""
    brand_window_days: int = Field(default=365, ge=1)
    """The brand premium (training_set's ``mkt_brand_premium``) reads the brand's sales in this many days before
    each listing."""
    incremental: bool = True
    """Process only data ingested since each table's watermark; false rebuilds every table in full."""
    comparables: bool = True
    """Comparable-sales features (``features.comparable_sales``, from ``pricing match``'s product matches)
    are built, joined into the training set and used by the price model; false leaves them out of all three."""
    comparables_k: int = Field(default=10, ge=1, le=100)
    """Nearest comparables per listing: the k best-ranked matches sold before its listing time."""


class MatchConfig(_Section):
    """Product matching (``pricing match``, ``pricing.matching.products``): MinHash LSH on title shingles within
    brand x category blocks, a scored pairwise decision, and product clusters."""

    method: Literal["banded", "spark_ml"] = "banded"
    """banded: MinHash signatures in ``num_bands`` bands of ``rows_per_band`` (AND within a band, OR across);
    spark_ml: Spark ML ``MinHashLSH.approxSimilarityJoin`` (one min-hash per table, OR-ed).  Measured side by
    side in ``bench/matching.py``."""
    num_bands: int = Field(default=16, ge=1, le=200)
    """A candidate agrees on all rows_per_band min-hashes of at least one band."""
    rows_per_band: int = Field(default=3, ge=1, le=20)
    seed: int = 13
    """Seeds the MinHash functions: the same seed gives the same pairs on every run and cluster."""
    threshold: float = Field(default=0.5, gt=0, le=1)
    """Same product: the model words' shingle Jaccard at least this (plus the same type and agreeing colours).
    0.5 was chosen on simulator seed 42 in both worlds (``bench/matching.py --worlds-at``); it was 0.6."""
    min_similarity: float = Field(default=0.3, gt=0, le=1)
    """Candidate pairs at or above this similarity are kept as comparables."""
    max_cluster_iterations: int = Field(default=30, ge=1)
    """Rounds of label propagation allowed for the product clusters before the job fails."""
    local_components_max_edges: int = Field(default=2_000_000, ge=0)
    """A same-product graph of at most this many edges (distinct, counted in both directions) is collected and its
    clusters found in memory on the driver (a few tens of MB at the default); a larger one, or any with 0, by
    label propagation in Spark.  Both give the same clusters."""
    infer_brand: bool = True
    """A listing without a brand attribute takes the brand its title names, or else the one brand whose earlier
    listings in its category used its title's model words (``pricing.matching.products.inferred_brands``), so
    it can be matched; off: such listings are never matched."""

    @model_validator(mode="after")
    def _thresholds_ok(self) -> MatchConfig:
        if self.min_similarity > self.threshold:
            raise ValueError(f"min_similarity {self.min_similarity} must not exceed threshold {self.threshold}: "
                             "every same-product pair is also a comparable")
        return self


class ValidateConfig(_Section):
    suites_dir: str = "conf/expectations"
    """The Great Expectations suites, one YAML file per table.  Relative to the folder holding the ``conf/`` that
    was loaded (the source checkout, ``PRICING_HOME``, or the installed package) unless absolute."""
    data_docs_dir: str = "data_docs"
    """Where GX Data Docs HTML is written; relative to ``storage.root`` unless absolute."""
    gx_dir: str = "gx"
    """The GX file context (suites, validation results behind the Data Docs); relative to ``storage.root``."""
    reference_time: datetime | None = None
    """The "now" of freshness checks (``max_age_hours``), UTC unless a zone is given.  ``None``: the end
    of the simulated period for ``ingest.source`` simulator and mercari, whose timelines are fixed
    (see ``pricing.validation.gate.reference_time``), else the current time."""

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
    n_trials: int = Field(default=12, ge=1)
    timeout_s: float = Field(default=1800.0, gt=0)
    """Stop starting new trials after this many seconds."""


class BoosterConfig(_Section):
    """Gradient-boosting settings, one type for every xgboost model the suite fits."""

    max_depth: int = Field(default=8, ge=1, le=16)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    n_estimators: int = Field(default=300, ge=1)
    """Boosting rounds at most: early stopping on the validation rows picks the best iteration."""
    early_stopping_rounds: int = Field(default=20, ge=1)
    min_child_weight: float = Field(default=1.0, ge=0)
    subsample: float = Field(default=1.0, gt=0, le=1)
    colsample_bytree: float = Field(default=1.0, gt=0, le=1)
    reg_lambda: float = Field(default=1.0, ge=0)
    seed: int = 7

    def tree_params(self) -> dict[str, Any]:
        """The tree hyperparameters, as xgboost names them: what tuning searches over."""
        return self.model_dump(include={"max_depth", "learning_rate", "min_child_weight", "subsample",
                                        "colsample_bytree", "reg_lambda"})


class TrainConfig(_Section):
    num_workers: int = Field(default=2, ge=1)
    """xgboost.spark workers: barrier tasks that train one booster together (the price and demand models)."""
    threads_per_worker: int | None = Field(default=None, ge=1)
    """xgboost threads in each worker.  Unset: on a local master (``local[N]``), its N cores shared among the
    workers, so one worker on one machine trains with every core; on a cluster, ``spark.task.cpus`` (xgboost.spark's
    own rule, one task's cores)."""
    device: Literal["cpu", "cuda"] = "cpu"
    """cpu, or cuda on GPU clusters (one GPU per worker)."""
    quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)
    test_days: int = Field(default=28, ge=1)
    """Newest window, by listing time: the reported test figures and the promotion gate's holdout (split by
    ``promote.holdout_share``).  It ends ``features.sold_within_days`` before the latest listing, so every
    listing in it has had the whole label horizon to sell."""
    validation_days: int = Field(default=28, ge=1)
    """The window before calibration: early stopping (and tuning).  Training is every listing created before it."""
    calibration_days: int = Field(default=28, ge=1)
    """The window between validation and test: calibrates the range (conformal), nothing else.  With
    ``validation_days``, at least ``features.sold_within_days``, so no training label is a sale of the test window."""
    booster: BoosterConfig = Field(default_factory=BoosterConfig)
    """The median booster (and the demand model's value boosters, which follow the price model's recipe)."""
    ablation: bool = False
    """Also refit the median booster without each group of features (the brand premium, the comparable sales), on
    the same split and params, and log what each is worth (``test_rmsle_without_<group>``, ``ablation.md``).  One
    more distributed fit per group, so off in the scheduled workflow; on for an explicit evaluation run
    (``--set train.ablation=true``)."""
    intervals: Literal["conformal", "quantile", "cqr"] = "cqr"
    """How p10/p90 are made: ``cqr``, two more boosters with ``reg:quantileerror`` for p10 and p90, each side
    then shifted by split-conformal adjustments from the calibration window (per ``interval_segment``), so the
    width adapts to the listing and coverage holds; ``conformal``, offsets around the median (one width per
    ``interval_segment``); ``quantile``, the two boosters uncalibrated.  ``bench/intervals.py`` compares them."""
    interval_segment: str = "p50_band"
    """What selects a row's conformal adjustments: ``p50_band`` (the band of the row's own median prediction,
    ``interval_bands`` bands; the observable stand-in for the price band, where coverage is hardest), a model
    feature's value (e.g. ``category_code``), or ``none`` (one global adjustment)."""
    interval_bands: int = Field(default=5, ge=2, le=50)
    """With ``interval_segment: p50_band``: bands of equal calibration counts of the median prediction."""
    interval_min_rows: int = Field(default=200, ge=10)
    """A segment needs this many calibration rows for offsets of its own; the rest use the global ones."""
    brand_tier_min_sales: int = Field(default=20, ge=1)
    """Evaluation: brands with fewer training sales are reported as "rare brand", not in a price tier."""
    tuning: TuningConfig = Field(default_factory=TuningConfig)

    @field_validator("quantiles")
    @classmethod
    def _quantiles_ok(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not (0 < v[0] < v[1] < v[2] < 1):
            raise ValueError("quantiles must be increasing and inside (0, 1), e.g. [0.1, 0.5, 0.9]")
        return v


class PromoteConfig(_Section):
    min_improvement: float = Field(default=0.0, ge=0)
    """Relative RMSLE improvement the challenger needs over the champion."""
    max_coverage_error: float = Field(default=0.1, ge=0, le=1)
    """Largest |80% interval coverage - 0.80| a model may have and still be sane."""
    max_segment_regression: float = Field(default=0.02, ge=0)
    """A challenger may be worse than the champion by at most this relative RMSLE on any major segment."""
    min_segment_rows: int = Field(default=200, ge=1)
    """A segment is major when the holdout has at least this many of its rows."""
    challenger_version: int | None = None
    """Set by the workflow from the train task's value: promote refuses if alias `challenger` has moved."""
    holdout_share: float = Field(default=0.5, gt=0, lt=1)
    """Share of the test window's listings (a stable hash of ``listing_id``) kept as the gate's own holdout: the
    sanity checks and the champion/challenger decision read only these; the reported test figures are the rest."""


class ScoreConfig(_Section):
    price_points: tuple[float, ...] = (0.0, 0.5, 0.99)
    """Price endings sellers use; suggestions are rounded to the nearest one."""
    min_price: float = Field(default=1.0, gt=0)
    """Floor of every suggestion (unless ``category_bounds`` sets the category's own)."""
    max_price: float = Field(default=5000.0, gt=0)
    """Ceiling of every suggestion (unless ``category_bounds`` sets the category's own)."""
    category_bounds: dict[str, tuple[float, float]] = Field(default_factory=dict)
    """category -> [floor, ceiling] for suggestions in that category."""
    review_max_range_ratio: float = Field(default=4.0, gt=1)
    """Flag ``needs_review`` when p90 / p10 exceeds this (the model is unsure)."""
    review_min_support: int = Field(default=5, ge=0)
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
    price_multiplier: float = Field(default=0.95, gt=0, le=10)
    """The multiplier policy suggests the seller's own price times this."""
    treatment_share: float = Field(default=0.5, gt=0, lt=1)
    """Designed share of sellers in treatment."""
    adoption_rate: float = Field(default=0.6, ge=0, le=1)
    """Probability that a seller takes the suggested price for a listing."""
    horizon_days: int = Field(default=30, ge=1, le=60)
    """Outcomes within this many days of listing (the simulator sells nothing after day 60)."""
    start_date: date | None = None
    """First listing day of the experiment; None: the last ``days`` days of listings in silver."""
    days: int = Field(default=28, ge=1)
    """Listings created in [start_date, start_date + days) are in the experiment."""
    pre_period_days: int = Field(default=56, ge=1)
    """CUPED covariates: the sellers' listings created in the ``pre_period_days`` before
    ``start_date - horizon_days`` (so their outcomes are known before the experiment starts)."""
    seed: int = 11
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0, lt=1)
    correction: Literal["holm", "bh"] = "holm"
    """Multiple-metric guard: holm (family-wise error rate, the default) or bh (false-discovery rate)."""
    srm_alpha: float = Field(default=0.001, gt=0, lt=0.5)
    """The sample-ratio-mismatch check fails below this p-value."""
    balance_alpha: float = Field(default=0.01, gt=0, lt=0.5)
    """Pre-period balance is flagged below this Holm-adjusted p-value."""
    fail_on_srm: bool = True
    """``analyse`` records its results and then exits non-zero when the SRM check fails."""
    mde_relative: tuple[float, ...] = (0.02, 0.05, 0.10)
    """``design``: minimum detectable effects relative to each metric's baseline."""
    mde_absolute: dict[ExperimentMetric, float] = Field(default_factory=dict)
    """``design``: absolute minimum detectable effects per metric, e.g. {sell_through: 0.01}."""
    lost_treatment_share: float = Field(default=0.0, ge=0, lt=1)
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
    price_response: Literal["proportional", "frailty"] = "frailty"
    """How theta moves an item's sale probability (``pricing.demand_model.pyfunc.price_response``): proportional
    (every item alike: the cumulative hazard of P(sold) scales) or frailty (the items behind one prediction
    differ by the survival layer's gamma frailty; theta is one item's elasticity and the mixture's curve is
    flatter).  With an exploration experiment only."""
    encouragement: Literal["control_function", "intent_to_treat"] = "control_function"
    """How theta is estimated when the experiment only suggests prices (``simulator.exploration:
    encouragement``; ``pricing.demand_model.estimator``): control_function (the adopted move as the treatment,
    with the log hazard shifted by the first stage's residual, adopted minus take-up, one shift for suggested
    cuts and one for raises, estimated jointly) or intent_to_treat (the offered move, scaled by the take-up).
    The other one and the biased as-treated comparison are reported beside it."""
    elasticity_prior_sd: float = Field(default=0.5, gt=0)
    """Shrinkage: prior sd of a segment's elasticity around the overall elasticity."""
    validation_days: int = Field(default=28, ge=1)
    """Latest labelled listing days before the test days: early stopping."""
    test_days: int = Field(default=28, ge=1)
    """Latest labelled listing days: metrics only (log loss, AUC, calibration, monotonicity)."""
    booster: BoosterConfig = Field(default_factory=lambda: BoosterConfig(
        max_depth=6, n_estimators=400, min_child_weight=5.0, seed=13))
    """The sale classifier: shallower, more rounds and larger leaves than the price model's booster."""


class RecommendConfig(_Section):
    """Price recommendations (``pricing recommend``) -> ``ml.price_recommendations``."""

    objective: str = "continuation"
    """What the recommendation maximises (``pricing.platform.objective``): ``continuation``: expected revenue
    within ``horizon_days`` plus ``continuation_discount`` x the expected revenue of later sales (an unsold item
    keeps its later value); ``revenue``: expected revenue within the horizon only (unsold items are worth
    nothing); ``sell_through``: the highest sale probability among prices keeping at least ``min_revenue_share``
    of the best expected revenue.  ``<kind>_<days>d`` sets the horizon too (``continuation_60d``)."""
    horizon_days: int | None = Field(default=None, ge=1)
    """The objective's horizon; None: the name's, else the demand model's (``features.sold_within_days``)."""
    continuation_discount: float = Field(default=0.9, ge=0, le=1)
    """continuation: a sale after the horizon is worth this share of one within it (the wait's cost)."""
    evaluate_objectives: tuple[str, ...] = ("revenue", "continuation", "continuation_60d")
    """Evaluation: the objectives every policy (and the optimiser under each) is judged by against the true
    demand, each with its own oracle; names as ``objective`` (revenue or continuation)."""
    min_revenue_share: float = Field(default=0.9, gt=0, le=1)
    max_change: float = Field(default=0.3, gt=0, lt=1)
    """Guardrail: the recommendation stays within current price x [1 - max_change, 1 + max_change]."""
    grid_size: int = Field(default=41, ge=3, le=401)
    """Candidate prices per listing, log-spaced over the allowed range, then rounded to ``score.price_points``."""
    reason_tolerance: float = Field(default=0.05, ge=0, lt=1)
    """Within this relative distance of the current price a listing is "well priced"."""
    compare_naive: bool = True
    """Evaluation: also optimise with the naive (observational) price response, to show what confounding costs."""
    evaluate: bool = True
    """When the simulator's ``truth.listings`` exists: evaluate the policies against the true demand."""
    scoring_date: date | None = None
    """The date the rows are written under; None = today (UTC).  Rerunning a date replaces its rows."""
    demand_version: int | None = None
    """Set by the workflow from the demand task's value: recommend refuses if alias `champion` has moved."""

    @field_validator("objective")
    @classmethod
    def _objective(cls, v: str) -> str:
        Objective.parse(v)
        return v

    @field_validator("evaluate_objectives")
    @classmethod
    def _judged(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            if Objective.parse(name).kind not in VALUED:
                raise ValueError(f"evaluate_objectives holds {name!r}: only revenue and continuation objectives "
                                 f"are values an oracle can maximise")
        if len(set(v)) != len(v):
            raise ValueError(f"evaluate_objectives repeats a name: {list(v)}")
        return v

    def objective_spec(self) -> Objective:
        """``objective`` parsed, with ``horizon_days`` and the discount or revenue share applied."""
        o = Objective.parse(self.objective, self.continuation_discount, self.min_revenue_share)
        return o if self.horizon_days is None else replace(o, horizon_days=self.horizon_days)

    def judged_specs(self) -> tuple[Objective, ...]:
        """``evaluate_objectives`` parsed (continuation ones with ``continuation_discount``)."""
        return tuple(Objective.parse(n, self.continuation_discount) for n in self.evaluate_objectives)


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
    git_commit: str | None = None
    """The code's git commit, tagged on the train and demand runs and their model versions.  The bundle's tasks
    set it (``--set mlflow.git_commit=${bundle.git.commit}``): a wheel on a cluster is no checkout.  None (or
    empty): ``git rev-parse HEAD`` when the project folder is a git checkout, else ``unknown``."""

    @field_validator("git_commit", mode="before")
    @classmethod
    def _commit_as_text(cls, v: Any) -> Any:
        # --set values are read as YAML: an all-digit commit would arrive as a number.
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

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
    conf_dir: str = ""
    """Filled in by :func:`load_config`: the folder ``base.yml`` was read from (see :func:`conf_home`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True)

    @model_validator(mode="after")
    def _uc_model_name(self) -> Config:
        if self.mlflow.registry_uri == "databricks-uc" and self.mlflow.model_name.count(".") != 2:
            raise ValueError("mlflow.model_name must be catalog.schema.model when registry_uri is databricks-uc")
        if self.mlflow.registry_uri == "databricks-uc" and self.mlflow.demand_model_name.count(".") != 2:
            raise ValueError("mlflow.demand_model_name must be catalog.schema.model when registry_uri is "
                             "databricks-uc")
        return self

    @model_validator(mode="after")
    def _state_on_a_volume(self) -> Config:
        """On Databricks every non-table state path lies under ``storage.root``, a Unity Catalog Volume: a
        driver's local disk is neither the executors' nor the next cluster's."""
        if self.storage.catalog is None:
            return self
        root = self.storage.root.rstrip("/")
        if not re.fullmatch(r"/Volumes/[^/]+/[^/]+/[^/]+(/.*)?", root):
            raise ValueError(f"storage.root {self.storage.root!r} must be a Unity Catalog Volume path "
                             "/Volumes/<catalog>/<schema>/<volume> when storage.catalog is set (Databricks)")
        for key, value in (("ingest.landing_dir", self.ingest.landing_dir),
                           ("validate.data_docs_dir", self.validate_.data_docs_dir),
                           ("validate.gx_dir", self.validate_.gx_dir)):
            if Path(value).is_absolute() and not Path(value).is_relative_to(root):
                raise ValueError(f"{key} {value!r} must lie under storage.root {root!r} (or be relative to it) "
                                 "when storage.catalog is set")
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
    def suites_dir(self) -> Path:
        """The expectation suites: ``validate.suites_dir`` against the folder holding the loaded ``conf/``
        unless absolute, so the suites shipped with the configuration travel with it."""
        q = Path(self.validate_.suites_dir)
        if q.is_absolute():
            return q
        home = Path(self.conf_dir).parent if self.conf_dir else Path(self.project_dir)
        return home / q

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
        data = _deep_merge(self.model_dump(by_alias=True), parse_overrides(overrides), {}, "overrides")
        try:
            return Config.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid override(s) {overrides}: {exc}") from None


def render(cfg: Config) -> str:
    """The effective configuration as YAML, each key preceded by its documentation (``pricing config``)."""
    return "\n".join(_render(cfg, 0)) + "\n"


def _render(model: BaseModel, indent: int) -> list[str]:
    pad = " " * indent
    values = model.model_dump(mode="json", by_alias=True)
    lines: list[str] = []
    for name, field in type(model).model_fields.items():
        if name in ("project_dir", "conf_dir", "env"):
            continue
        key = field.alias or name
        lines.extend(f"{pad}# {line}" for line in textwrap.wrap(" ".join((field.description or "").split()), 100))
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{key}:")
            lines.extend(_render(value, indent + 2))
        else:
            lines.append(f"{pad}{key}: {json.dumps(values[key])}")
    return lines


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


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["section.key=value", ...]`` (as ``--set`` gives) as a nested mapping; values are parsed as YAML."""
    nested: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        keys = key.strip().split(".")
        cur = nested
        for k in keys[:-1]:
            cur = cur.setdefault(k, {})
            if not isinstance(cur, dict):
                raise ConfigError(f"override {item!r}: {k!r} is not a config section")
        cur[keys[-1]] = yaml.safe_load(raw)
    return nested


def load_config(env: str | None = None, overrides: Mapping[str, Any] | list[str] | None = None,
                conf_dir: Path | None = None, project_dir: Path | None = None) -> Config:
    """Load ``base.yml`` + ``<env>.yml`` (+ overrides) into a validated :class:`Config`.

    ``overrides`` is either a nested mapping or ``["section.key=value", ...]`` (as ``--set`` gives).
    """
    env = env or os.environ.get("PRICING_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {env!r}; choose one of {', '.join(ENVIRONMENTS)}")
    project = (project_dir or project_root()).resolve()
    # An explicit project_dir keeps its own conf/; otherwise PRICING_HOME, the checkout, or the packaged conf.
    conf = (conf_dir or (project / "conf" if project_dir else conf_home())).resolve()
    base_file = conf / "base.yml"
    if not base_file.is_file():
        raise ConfigError(f"{base_file} not found: the configuration folder {conf} must hold base.yml")
    origin: dict[tuple[str, ...], str] = {}
    merged = _deep_merge({}, _read_yaml(base_file), origin, str(base_file))
    env_file = conf / f"{env}.yml"
    if env_file.is_file():
        merged = _deep_merge(merged, _read_yaml(env_file), origin, str(env_file))
    elif env != "local":
        # A target's catalog and MLflow store live there: without it a Databricks task would run on local settings.
        raise ConfigError(f"{env_file} not found: environment {env!r} needs its settings file next to {base_file}")
    if overrides:
        nested = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        merged = _deep_merge(merged, nested, origin, "overrides")
    merged["env"] = env
    merged["project_dir"] = str(project)
    merged["conf_dir"] = str(conf)
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
