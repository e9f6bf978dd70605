"""validate: run the Great Expectations suites in conf/expectations; a blocking failure stops the workflow.

Every result is appended to ``ml.validation_results`` (one row per expectation and run) and rendered
into GX Data Docs under ``<storage.root>/<validate.data_docs_dir>``, before a blocking failure raises.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from pricing.platform import delta_io
from pricing.platform.config import Config
from pricing.platform.errors import DataQualityError
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.validation.data_docs import make_offline
from pricing.validation.gate import RESULT_DOCS, RESULT_SCHEMA, RESULTS, reference_time
from pricing.validation.suites import (
    CheckResult,
    build_docs,
    docs_index,
    load_suites,
    missing_table,
    open_context,
    render_failures,
    row_count_baselines,
    run_suite,
)


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("validate")
    # Everything that can be wrong in configuration fails here, before any table or file is written.
    suites = load_suites(cfg.suites_dir)
    refs = {s.name: table(cfg, s.table) for s in suites}
    out = table(cfg, RESULTS)
    reference = reference_time(cfg)
    run_id = uuid.uuid4().hex
    started = datetime.now(UTC)
    baselines: dict[str, int] = {}
    if any(x.relative_to_previous for s in suites for x in s.expectations) and delta_io.exists(spark, out):
        baselines = {r["suite"]: r["rows"] for r in row_count_baselines(delta_io.read(spark, out)).collect()}
    docs_dir = cfg.state_path(cfg.validate_.data_docs_dir)
    context = open_context(cfg.state_path(cfg.validate_.gx_dir), docs_dir)
    results: list[CheckResult] = []
    result_ids = []
    skipped = []
    for suite in suites:
        ref = refs[suite.name]
        if not delta_io.exists(spark, ref):
            if suite.optional:
                skipped.append(suite.table)
            else:
                results.append(missing_table(suite))
            continue
        # Not cached: GX reads only the columns each metric needs, and caching whole (wide) tables measured slower.
        df = delta_io.read(spark, ref)
        suite_results, result_id = run_suite(suite, df, context, run_id, started, baselines.get(suite.name),
                                             reference)
        results += suite_results
        result_ids.append(result_id)
    validated_at = started.replace(tzinfo=None)
    rows = [(run_id, validated_at, r.suite, r.table, r.expectation, r.kwargs, r.severity, r.success, r.observed,
             r.expected) for r in results]
    # merge_schema: tables written before `expected` existed gain the column instead of failing the append.
    delta_io.append(spark.createDataFrame(rows, RESULT_SCHEMA), out, merge_schema=True, docs=RESULT_DOCS)
    summary.tables[RESULTS.logical] = delta_io.version(spark, out)
    failed_blocking = [r for r in results if not r.success and r.severity == "blocking"]
    warnings = [r for r in results if not r.success and r.severity == "warning"]
    build_docs(context, result_ids)
    index = docs_index(docs_dir)
    # GX's pages pull scripts, styles and a tracking logo from CDNs: rewritten to load nothing from outside.
    make_offline(docs_dir)
    summary.rows_out["expectations"] = len(results)
    summary.info["run_id"] = run_id
    summary.info["reference"] = reference.isoformat()
    summary.info["passed"] = f"{sum(r.success for r in results)}/{len(results)}"
    if skipped:
        summary.info["skipped"] = f"{', '.join(skipped)} (optional, table not found)"
    summary.info["data_docs"] = str(index)
    if warnings:
        summary.info["warnings"] = f"{len(warnings)}\n" + render_failures(warnings)
    if failed_blocking:
        raise DataQualityError(
            f"{len(failed_blocking)} blocking expectation(s) failed in validation run {run_id}; "
            f"the workflow stops here:\n{render_failures(failed_blocking)}\n"
            f"  results: {RESULTS} (run_id = '{run_id}'); Data Docs: {index}"
        )
    return summary.finish()
