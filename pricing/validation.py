"""Great Expectations gates, declared as YAML suites (``conf/expectations/*.yml``) and run on Spark frames.

GX is imported lazily: it takes seconds to import and only the validate job needs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import DataFrame

from pricing.errors import ConfigError

SEVERITIES = ("blocking", "warning")


@dataclass(frozen=True)
class ExpectationSpec:
    type: str
    kwargs: dict[str, Any]
    severity: str


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    table: str
    expectations: tuple[ExpectationSpec, ...]


@dataclass(frozen=True)
class CheckResult:
    suite: str
    table: str
    expectation: str
    kwargs: str
    severity: str
    success: bool
    observed: str


def _class_name(snake: str) -> str:
    return "".join(p.capitalize() for p in snake.split("_"))


def load_suites(folder: Path) -> list[SuiteSpec]:
    """Parse and check every suite file before any data is touched."""
    import great_expectations.expectations as gxe

    suites = []
    for path in sorted(folder.glob("*.yml")):
        raw = yaml.safe_load(path.read_text()) or {}
        unknown = set(raw) - {"table", "expectations"}
        if unknown or "table" not in raw:
            raise ConfigError(f"{path}: needs `table` and `expectations`; unknown keys {sorted(unknown)}")
        specs = []
        for i, e in enumerate(raw.get("expectations") or []):
            where = f"{path}: expectations[{i}]"
            if set(e) - {"type", "kwargs", "severity"}:
                raise ConfigError(f"{where}: unknown keys {sorted(set(e) - {'type', 'kwargs', 'severity'})}")
            if not hasattr(gxe, _class_name(e.get("type", ""))):
                raise ConfigError(f"{where}: unknown expectation type {e.get('type')!r}")
            if e.get("severity", "blocking") not in SEVERITIES:
                raise ConfigError(f"{where}: severity must be one of {SEVERITIES}")
            specs.append(ExpectationSpec(e["type"], dict(e.get("kwargs") or {}), e.get("severity", "blocking")))
        suites.append(SuiteSpec(path.stem, raw["table"], tuple(specs)))
    return suites


def _observed(result: dict[str, Any]) -> str:
    keys = ("observed_value", "unexpected_count", "unexpected_percent", "partial_unexpected_list")
    return json.dumps({k: result[k] for k in keys if k in result}, default=str)[:1000]


def run_suite(suite: SuiteSpec, df: DataFrame, context: Any | None = None) -> list[CheckResult]:
    """Validate ``df`` against ``suite`` with a real GX run; one result per expectation."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    if context is None:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        # The job prints one summary; per-metric progress bars would drown it.
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_or_update_spark(name=f"src_{suite.name}")
    asset = source.add_dataframe_asset(name=suite.name)
    batch_def = asset.add_batch_definition_whole_dataframe(f"{suite.name}_whole")
    gx_suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite.name))
    ids = []
    for e in suite.expectations:
        ids.append(gx_suite.add_expectation(getattr(gxe, _class_name(e.type))(**e.kwargs)).id)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite.name}_validation", data=batch_def, suite=gx_suite))
    outcome = definition.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
    # GX does not keep the suite's order in its results: match them back by expectation id.
    by_id = {r.expectation_config.id: r for r in outcome.results}
    out = []
    for spec, eid in zip(suite.expectations, ids, strict=True):
        r = by_id[eid]
        observed = r.result or {}
        if r.exception_info and r.exception_info.get("raised_exception"):
            observed = {"observed_value": f"error: {r.exception_info.get('exception_message')}"}
        out.append(CheckResult(suite.name, suite.table, spec.type, json.dumps(spec.kwargs, default=str),
                               spec.severity, bool(r.success), _observed(observed)))
    return out


def render_failures(results: list[CheckResult]) -> str:
    lines = []
    for r in results:
        if not r.success:
            lines.append(f"  [{r.severity}] {r.table}: {r.expectation}({r.kwargs}) -> observed {r.observed}")
    return "\n".join(lines)
