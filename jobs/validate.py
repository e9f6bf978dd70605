"""validate: run the Great Expectations suites in conf/expectations; a blocking failure stops the workflow."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from pricing import delta_io
from pricing.config import Config
from pricing.errors import DataQualityError
from pricing.summary import JobSummary
from pricing.tables import table
from pricing.validation import load_suites, render_failures, run_suite

RESULT_SCHEMA = ("run_id string, validated_at timestamp, suite string, table string, expectation string, "
                 "kwargs string, severity string, success boolean, observed string")


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("validate")
    suites = load_suites(cfg.path(cfg.validate_.suites_dir))
    run_id = uuid.uuid4().hex
    now = datetime.now(UTC).replace(tzinfo=None)
    results = []
    for suite in suites:
        df = delta_io.read(spark, table(cfg, suite.table))
        results += run_suite(suite, df)
    rows = [(run_id, now, *asdict(r).values()) for r in results]
    out = table(cfg, "ml.validation_results")
    delta_io.append(spark.createDataFrame(rows, RESULT_SCHEMA), out)
    summary.tables["ml.validation_results"] = delta_io.version(spark, out)
    failed_blocking = [r for r in results if not r.success and r.severity == "blocking"]
    warnings = [r for r in results if not r.success and r.severity == "warning"]
    summary.rows_out["expectations"] = len(results)
    summary.info["run_id"] = run_id
    summary.info["passed"] = f"{sum(r.success for r in results)}/{len(results)}"
    if warnings:
        summary.info["warnings"] = "\n" + render_failures(warnings)
    if failed_blocking:
        raise DataQualityError(
            f"{len(failed_blocking)} blocking expectation(s) failed (validation run {run_id}):\n"
            + render_failures(failed_blocking)
        )
    return summary.finish()


def main(argv: list[str] | None = None) -> int:
    from pricing.cli import main as cli_main

    return cli_main(["validate", *(argv or [])])
