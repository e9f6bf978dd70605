"""Great Expectations gates, declared as YAML suites (``conf/expectations/*.yml``) and run on Spark frames.

A suite file names one logical table and lists GX 1.x expectations::

    table: silver.listings          # logical table name (resolved like every other table)
    optional: false                 # true: a missing table skips the suite (bronze.quarantine)
    expectations:
      - type: expect_column_values_to_be_between     # any GX 1.x expectation, snake_case
        kwargs: {column: list_price, min_value: 0.01, max_value: 100000}
        severity: blocking          # blocking (stops the workflow) or warning (reported only)

Two extensions give bounds that depend on earlier runs or on time.  They are resolved into ordinary
GX kwargs before the run, so GX still evaluates them and they show in the Data Docs like any other:

- ``expect_table_row_count_to_be_between`` with ``relative_to_previous: X`` instead of
  ``min_value``/``max_value``: the row count must stay within ±X (a fraction) of the count observed
  for the same suite in the latest earlier validation run that no blocking failure stopped
  (read from ``ml.validation_results``); ``[down, up]`` gives separate fractions, ``up: null`` no
  upper bound.  Bounds are ``floor(previous * (1 - down))`` and ``ceil(previous * (1 + up))``.  With
  no such run the check is ``min_value: 1``.  A stopped run is never a baseline, so re-running after
  a blocking drop does not wave the drop through.
- ``expect_column_max_to_be_between`` with ``max_age_hours: N`` instead of ``min_value``: the newest
  value of a timestamp column must be at most N hours older than the reference time
  (``min_value = reference_time - N hours``); see ``pricing.validation.gate.reference_time``.

Every suite file is parsed and every expectation's kwargs are checked against GX's own model by
:func:`load_suites` before any data is read or any table written.  GX is imported lazily: it takes
seconds to import and only the validate job needs it.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from pricing.platform.config import check_identifier
from pricing.platform.errors import ConfigError

if TYPE_CHECKING:  # GX is imported lazily (see above)
    from great_expectations.data_context.store.store import DataDocsSiteConfigTypedDict

SEVERITIES = ("blocking", "warning")
ROW_COUNT = "expect_table_row_count_to_be_between"
COLUMN_MAX = "expect_column_max_to_be_between"
SITE = "pricing"
"""The one GX Data Docs site this project configures."""
DOCS_RESULTS_LIMIT = 200
"""The Data Docs index lists this many of the most recent validation results (older pages stay on disk)."""

_SUITE_KEYS = {"table", "optional", "expectations"}
_EXPECTATION_KEYS = {"type", "kwargs", "severity"}


@dataclass(frozen=True)
class ExpectationSpec:
    type: str
    kwargs: dict[str, Any]
    """GX kwargs as written, without the extension keys."""
    severity: str
    relative_to_previous: tuple[float, float | None] | None = None
    """(down, up) fractions of the previous run's row count; ``up`` None = no upper bound."""
    max_age_hours: float | None = None


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    table: str
    expectations: tuple[ExpectationSpec, ...]
    optional: bool = False


@dataclass(frozen=True)
class CheckResult:
    suite: str
    table: str
    expectation: str
    kwargs: str
    """The resolved kwargs GX ran with, as JSON."""
    severity: str
    success: bool
    observed: str
    """What GX observed, as JSON (``observed_value``, unexpected counts and examples, or ``error``)."""
    expected: str
    """The bounds in words, e.g. ``row count between 500 and 1500 (previous run 1,000 rows ±50%)``."""


# ---- loading -----------------------------------------------------------------------------------------
def _class_name(snake: str) -> str:
    return "".join(p.capitalize() for p in snake.split("_"))


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _relative(value: Any, where: str) -> tuple[float, float | None]:
    pair = [value, value] if _number(value) else value
    if (not isinstance(pair, list) or len(pair) != 2 or not _number(pair[0])
            or not (pair[1] is None or _number(pair[1]))):
        raise ConfigError(f"{where}: relative_to_previous must be a fraction such as 0.5 (±50%) or a pair "
                          f"[down, up] such as [0.5, null]; got {value!r}")
    down, up = float(pair[0]), None if pair[1] is None else float(pair[1])
    if not 0 <= down <= 1 or (up is not None and up < 0):
        raise ConfigError(f"{where}: relative_to_previous fractions must be >= 0 (and down <= 1); got {value!r}")
    return down, up


def _expectation(raw: Any, where: str) -> ExpectationSpec:
    import great_expectations.expectations as gxe

    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping with type, kwargs and severity")
    if set(raw) - _EXPECTATION_KEYS:
        raise ConfigError(f"{where}: unknown keys {sorted(set(raw) - _EXPECTATION_KEYS)}")
    etype = raw.get("type")
    cls = getattr(gxe, _class_name(etype), None) if isinstance(etype, str) and etype.startswith("expect_") else None
    if not isinstance(etype, str) or not isinstance(cls, type) or not issubclass(cls, gxe.Expectation):
        raise ConfigError(f"{where}: unknown expectation type {etype!r}")
    severity = raw.get("severity", "blocking")
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}: severity must be one of {SEVERITIES}; got {severity!r}")
    kwargs = raw.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"{where}: kwargs must be a mapping")
    kwargs = dict(kwargs)
    relative = max_age = None
    probe = dict(kwargs)
    if "relative_to_previous" in kwargs:
        if etype != ROW_COUNT or {"min_value", "max_value"} & set(kwargs):
            raise ConfigError(f"{where}: relative_to_previous goes on {ROW_COUNT}, instead of min_value/max_value")
        relative = _relative(kwargs.pop("relative_to_previous"), where)
        probe = {**kwargs, "min_value": 0}
    if "max_age_hours" in kwargs:
        hours = kwargs.pop("max_age_hours")
        if etype != COLUMN_MAX or "min_value" in kwargs:
            raise ConfigError(f"{where}: max_age_hours goes on {COLUMN_MAX}, instead of min_value")
        if not _number(hours) or hours <= 0:
            raise ConfigError(f"{where}: max_age_hours must be a positive number of hours; got {hours!r}")
        max_age = float(hours)
        probe = {**kwargs, "min_value": datetime(2000, 1, 1)}
    try:
        cls(**probe)  # GX's own model: a misspelt or missing argument fails here, not mid-run
    except Exception as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{where}: invalid kwargs for {etype}: {detail}") from None
    return ExpectationSpec(etype, kwargs, severity, relative, max_age)


def load_suites(folder: Path) -> list[SuiteSpec]:
    """Parse and check every suite file in ``folder`` before any data is touched."""
    if not folder.is_dir():
        raise ConfigError(f"expectation suites folder {folder} not found; set validate.suites_dir")
    paths = sorted(folder.glob("*.yml"))
    if not paths:
        raise ConfigError(f"no expectation suites (*.yml) in {folder}; set validate.suites_dir")
    suites = []
    for path in paths:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict) or set(raw) - _SUITE_KEYS or "table" not in raw:
            unknown = sorted(set(raw) - _SUITE_KEYS) if isinstance(raw, dict) else []
            raise ConfigError(f"{path}: needs `table` and `expectations` (and optionally `optional`); "
                              f"unknown keys {unknown}")
        name, table = path.stem, raw["table"]
        try:
            check_identifier(name, "suite name (the file name)")
            layer, tname = str(table).split(".") if str(table).count(".") == 1 else ("", "")
            check_identifier(layer, "table layer")
            check_identifier(tname, "table name")
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}; `table` must be a logical name such as silver.listings") from None
        if not isinstance(raw.get("optional", False), bool):
            raise ConfigError(f"{path}: optional must be true or false")
        items = raw.get("expectations")
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{path}: `expectations` must be a non-empty list")
        specs = tuple(_expectation(e, f"{path}: expectations[{i}]") for i, e in enumerate(items))
        suites.append(SuiteSpec(name, table, specs, raw.get("optional", False)))
    return suites


# ---- resolving the extensions ------------------------------------------------------------------------
def _as_collected(ts: datetime) -> datetime:
    """An aware instant as the naive datetime PySpark gives for a timestamp column on ``collect()``:
    the Python process's local time (UTC on Databricks and in this project's runs)."""
    return ts.astimezone().replace(tzinfo=None)


def resolve(spec: ExpectationSpec, previous_rows: int | None, reference: datetime | None) -> tuple[dict[str, Any], str]:
    """The GX kwargs to run ``spec`` with, and where any data-dependent bound came from ("" if none)."""
    kwargs = dict(spec.kwargs)
    note = ""
    if spec.relative_to_previous is not None:
        down, up = spec.relative_to_previous
        if previous_rows is None:
            kwargs.update(min_value=1, max_value=None)
            note = "no earlier run to compare with: at least 1 row"
        else:
            # round() first: 10 * 1.1 is 11.000000000000002 in floating point, whose ceil would be 12.
            kwargs["min_value"] = math.floor(round(previous_rows * (1 - down), 6))
            kwargs["max_value"] = None if up is None else math.ceil(round(previous_rows * (1 + up), 6))
            band = f"±{down:.0%}" if up == down else f"-{down:.0%}/+{'any' if up is None else f'{up:.0%}'}"
            note = f"previous run {previous_rows:,} rows {band}"
    if spec.max_age_hours is not None:
        if reference is None:
            raise ValueError("max_age_hours needs a reference time")
        kwargs["min_value"] = _as_collected(reference - timedelta(hours=spec.max_age_hours))
        note = f"at most {spec.max_age_hours:g} h older than the reference time {reference:%Y-%m-%d %H:%M} UTC"
    return kwargs, note


def row_count_baselines(results: DataFrame) -> DataFrame:
    """``ml.validation_results`` -> ``suite, rows``: the row count each suite observed in the latest run
    that no blocking failure stopped (the baseline of ``relative_to_previous``)."""
    stopped = results.where("severity = 'blocking' AND NOT success").select("run_id").distinct()
    counts = (
        results.where(F.col("expectation") == ROW_COUNT)
        .join(stopped, "run_id", "left_anti")
        .withColumn("rows", F.get_json_object("observed", "$.observed_value").try_cast("long"))
        .where(F.col("rows").isNotNull())
    )
    latest = Window.partitionBy("suite").orderBy(F.col("validated_at").desc(), F.col("run_id").desc())
    return counts.withColumn("_n", F.row_number().over(latest)).where("_n = 1").select("suite", "rows")


# ---- describing expected and observed values -----------------------------------------------------------
def _fmt(v: Any) -> str:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _set(values: Any) -> str:
    return "{" + ", ".join(_fmt(x) for x in values) + "}"


def _subject(expectation: str) -> str:
    middle = expectation.removeprefix("expect_").split("_to_")[0]
    return {"table_row_count": "row count", "column_values": "values", "table_columns": "columns"}.get(
        middle, middle.removeprefix("column_").removeprefix("table_").replace("_", " "))


def describe_expected(expectation: str, kwargs: dict[str, Any], note: str = "") -> str:
    """The expectation's bounds in words (one line), e.g. ``values between 0.01 and 100000``."""
    k = dict(kwargs)
    for key in ("column", "result_format", "catch_exceptions", "meta", "notes", "row_condition",
                "condition_parser", "ignore_row_if", "allow_relative_error"):
        k.pop(key, None)
    mostly = k.pop("mostly", None)
    subject = _subject(expectation)
    parts: list[str] = []
    if "min_value" in k or "max_value" in k:
        lo, hi = k.pop("min_value", None), k.pop("max_value", None)
        gt = ">" if k.pop("strict_min", False) else ">="
        lt = "<" if k.pop("strict_max", False) else "<="
        if lo is not None and hi is not None:
            parts.append(f"{subject} between {_fmt(lo)} and {_fmt(hi)}")
        elif lo is not None:
            parts.append(f"{subject} {gt} {_fmt(lo)}")
        elif hi is not None:
            parts.append(f"{subject} {lt} {_fmt(hi)}")
        else:
            parts.append(f"{subject}: any")
    if "quantile_ranges" in k:
        q = k.pop("quantile_ranges")
        parts.append(", ".join(f"q{qq:g} in [{_fmt(r[0])}, {_fmt(r[1])}]"
                               for qq, r in zip(q["quantiles"], q["value_ranges"], strict=True)))
    if "value_set" in k:
        parts.append(f"{subject} in {_set(k.pop('value_set'))}")
    if "column_set" in k:
        exact = k.pop("exact_match", True)
        parts.append(("columns exactly " if exact else "columns include ") + _set(k.pop("column_set")))
    if "type_" in k:
        parts.append(f"of type {k.pop('type_')}")
    if "column_A" in k and "column_B" in k:
        op = ">=" if k.pop("or_equal", False) else ">"
        parts.append(f"{k.pop('column_A')} {op} {k.pop('column_B')}")
    if "column_list" in k:
        parts.append(f"({', '.join(k.pop('column_list'))}) unique")
    if not parts:  # e.g. expect_column_values_to_not_be_null -> "values not null"
        predicate = expectation.split("_to_", 1)[-1].replace("be_", "").replace("_", " ")
        parts.append(f"{subject} {predicate}")
    parts += [f"{key}={_fmt(v)}" for key, v in k.items() if v is not None]
    text = ", ".join(parts)
    if mostly is not None and mostly < 1:
        text += f" for at least {mostly:.0%} of rows"
    return f"{text} ({note})" if note else text


def describe_observed(observed: str) -> str:
    """The JSON ``observed`` of a result in words (one line)."""
    o = json.loads(observed) if observed else {}
    if "error" in o:
        return f"error: {o['error']}"
    if "unexpected_count" in o:
        text = (f"{o['unexpected_count']:,} of {o.get('element_count', 0):,} rows unexpected "
                f"({o.get('unexpected_percent') or 0:.3g}%)")
        examples = [v for v in o.get("partial_unexpected_list") or [] if v is not None]  # nulls say nothing
        return text + (f", e.g. {_fmt(examples[:5])}" if examples else "")
    value = o.get("observed_value")
    if isinstance(value, dict) and "quantiles" in value:
        text = ", ".join(f"q{q:g}={_fmt(v)}" for q, v in zip(value["quantiles"], value["values"], strict=False))
    else:
        text = _fmt(value)
    mismatched = (o.get("details") or {}).get("mismatched") or {}
    extra = [f"{k} {_fmt(v)}" for k, v in mismatched.items() if v]
    return text + (f" ({'; '.join(extra)})" if extra else "")


def _error(r: Any) -> str | None:
    """GX's exception message, if evaluating ``r`` raised.  ``exception_info`` is either one record or a
    mapping of metric id -> record, depending on where it failed."""
    info = r.exception_info or {}
    for rec in [info, *[v for v in info.values() if isinstance(v, dict)]]:
        if rec.get("raised_exception"):
            return str(rec.get("exception_message") or "unknown error")
    return None


def _observed(result: dict[str, Any]) -> str:
    """The parts of a GX result worth keeping, as JSON, with long lists cut short."""
    keys = ("observed_value", "element_count", "unexpected_count", "unexpected_percent", "missing_count",
            "partial_unexpected_list", "details")
    out = {k: result[k] for k in keys if k in result and result[k] is not None}
    if isinstance(out.get("partial_unexpected_list"), list):
        out["partial_unexpected_list"] = [str(v)[:100] if isinstance(v, str) else v
                                          for v in out["partial_unexpected_list"][:10]]
    if isinstance(out.get("observed_value"), list) and len(out["observed_value"]) > 50:
        out["observed_value"] = [*out["observed_value"][:50], "..."]
    return json.dumps(out, default=_json_default)


def _json_default(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else str(v)


def kwargs_json(kwargs: dict[str, Any]) -> str:
    return json.dumps(kwargs, default=_json_default, sort_keys=True)


# ---- running -----------------------------------------------------------------------------------------
def _plain_bools(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain_bools(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_bools(v) for v in value]
    return bool(value) if type(value).__name__ in ("bool", "bool_") else value


def _patch_quantile_expectation() -> None:
    """GX 1.24.1's ``expect_column_quantile_values_to_be_between`` returns ``success`` and its
    ``success_details`` as numpy booleans, which GX's own validation-result store then fails to write
    ("Object of type bool is not JSON serializable").  Wrap its ``_validate`` to return plain bools."""
    from great_expectations.expectations import ExpectColumnQuantileValuesToBeBetween as Quantiles

    original = Quantiles._validate
    if getattr(original, "_plain_bools", False):
        return

    def _validate(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _plain_bools(original(self, *args, **kwargs))

    # A deliberate monkeypatch of GX: the two ignores below say so to the type checker.
    _validate._plain_bools = True  # type: ignore[attr-defined]
    Quantiles._validate = _validate  # type: ignore[method-assign]


def _patch_unexpected_values() -> None:
    """GX 1.24.1 fetches a column-map expectation's examples of unexpected values even when none are asked for
    (``partial_unexpected_count`` 0, :data:`FIRST_PASS`): one ``limit(0)`` query per expectation, about a hundred
    per validate run, each analysed by Spark and built with some eighty driver-to-JVM calls, for an empty list.
    Wrap the Spark providers of every ``*.unexpected_values`` metric to return that empty list directly; any
    other request (``BASIC`` examples, ``COMPLETE``) goes to GX as before."""
    from great_expectations.expectations.registry import _registered_metrics

    for name, definition in _registered_metrics.items():
        provider = definition.get("providers", {}).get("SparkDFExecutionEngine")
        if not name.endswith(".unexpected_values") or provider is None or getattr(provider[1], "_no_empty_query",
                                                                                  False):
            continue
        metric_class, fn = provider

        @functools.wraps(fn)  # keeps the attributes GX reads from a provider (its metric function type)
        def values(*args: Any, _fn: Any = fn, **kwargs: Any) -> Any:
            fmt = kwargs["metric_value_kwargs"]["result_format"]
            if fmt.get("result_format") != "COMPLETE" and fmt.get("partial_unexpected_count") == 0:
                return []
            return _fn(*args, **kwargs)

        values._no_empty_query = True  # type: ignore[attr-defined]
        definition["providers"]["SparkDFExecutionEngine"] = (metric_class, values)


def open_context(gx_dir: Path, docs_dir: Path) -> Any:
    """A GX file context in ``gx_dir`` (suites, checkpoints and the validation results the Data Docs
    index lists) with one Data Docs site, ``docs_dir``.  Both live under the state root, not the repo."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", context_root_dir=str(gx_dir))
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder",
                               "validation_results_limit": DOCS_RESULTS_LIMIT},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
    }
    if context.list_data_docs_sites() != {SITE: site}:  # also drops GX's default local_site
        for name in list(context.list_data_docs_sites()):
            context.delete_data_docs_site(name)
        # GX's TypedDict for a site config is incomplete (no show_how_to_buttons); the dict is what GX reads.
        context.add_data_docs_site(SITE, cast("DataDocsSiteConfigTypedDict", site))
    # The job prints one summary; per-metric progress bars would drown it.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def docs_index(docs_dir: Path) -> Path:
    return docs_dir / "index.html"


FIRST_PASS = {"result_format": "BASIC", "partial_unexpected_count": 0}
"""Counts and observed values, without the examples of unexpected values: fetching those is one more Spark query
per column-map expectation.  A passing expectation has no unexpected values, so its result is the same as with
``BASIC``; a suite with a failure is run again with ``BASIC`` for the examples (see :func:`run_suite`)."""


def run_suite(suite: SuiteSpec, df: DataFrame, context: Any, run_id: str, run_time: datetime,
              previous_rows: int | None = None, reference: datetime | None = None) -> tuple[list[CheckResult], Any]:
    """Validate ``df`` against ``suite`` with a GX Checkpoint: one result per expectation, in the suite's order,
    and the identifier of the validation result GX stored (for :func:`build_docs`).

    The first pass computes the counts and observed values only (``FIRST_PASS``).  Only if an expectation
    fails is the suite run again with ``BASIC`` results, whose examples of unexpected values make the report
    readable; that result replaces the first in GX's store (same suite, run and batch)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.run_identifier import RunIdentifier

    _patch_quantile_expectation()
    _patch_unexpected_values()
    resolved = [resolve(e, previous_rows, reference) for e in suite.expectations]
    # persist=False: GX would cache each table it is given; the metrics read only a few columns each.
    source = context.data_sources.add_or_update_spark(name=f"spark_{suite.name}", persist=False)
    batch_def = source.add_dataframe_asset(name=suite.table).add_batch_definition_whole_dataframe("whole")
    gx_suite = context.suites.add_or_update(gx.ExpectationSuite(
        name=suite.name,
        expectations=[getattr(gxe, _class_name(e.type))(**kw) for e, (kw, _) in zip(suite.expectations, resolved,
                                                                                    strict=True)],
        meta={"table": suite.table},
    ))
    ids = [e.id for e in gx_suite.expectations]
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch_def, suite=gx_suite))

    def check(result_format: Any) -> tuple[Any, Any]:
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=suite.name, validation_definitions=[definition], result_format=result_format))
        outcome = checkpoint.run(batch_parameters={"dataframe": df},
                                 run_id=RunIdentifier(run_name=run_id, run_time=run_time))
        ((key, validation),) = outcome.run_results.items()
        return key, validation

    key, validation = check(FIRST_PASS)
    if not validation.success:
        key, validation = check("BASIC")
    # GX does not keep the suite's order in its results: match them back by expectation id.
    by_id = {r.expectation_config.id: r for r in validation.results}
    out = []
    for spec, eid, (kwargs, note) in zip(suite.expectations, ids, resolved, strict=True):
        r = by_id[eid]
        error = _error(r)
        observed = json.dumps({"error": error}) if error else _observed(r.result or {})
        out.append(CheckResult(suite.name, suite.table, spec.type, kwargs_json(kwargs), spec.severity,
                               bool(r.success) and error is None, observed,
                               describe_expected(spec.type, kwargs, note)))
    return out, key


def build_docs(context: Any, result_ids: list[Any]) -> None:
    """Render the Data Docs pages of this run's validation results, and the index, once for all suites."""
    if result_ids:
        context.build_data_docs(site_names=[SITE], resource_identifiers=result_ids)


def missing_table(suite: SuiteSpec) -> CheckResult:
    """The result recorded for a required suite whose table does not exist."""
    return CheckResult(suite.name, suite.table, "table_exists", "{}", "blocking", False,
                       json.dumps({"observed_value": "table not found"}), "the table exists")


def _target(r: CheckResult) -> str:
    k = json.loads(r.kwargs)
    for key in ("column", "column_list"):
        if key in k:
            return f"{key}={_fmt(k[key])}"
    if "column_A" in k:
        return f"{k['column_A']}, {k.get('column_B')}"
    return ""


def render_failures(results: list[CheckResult]) -> str:
    """One line per failed expectation: where, what was observed, what was expected."""
    return "\n".join(
        f"  [{r.severity}] {r.table}: {r.expectation}({_target(r)}): observed {describe_observed(r.observed)}; "
        f"expected {r.expected}"
        for r in results if not r.success
    )
