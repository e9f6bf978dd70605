"""Which job runs for a task name, and how one job runs: the workflow's only door into ``jobs/``."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from pyspark.sql import SparkSession

from pricing.platform.config import Config
from pricing.platform.errors import PricingError
from pricing.platform.summary import JobSummary
from pricing.workflow.progress import heartbeat
from pricing.workflow.task_values import publish

JOBS = ("generate", "ingest", "match", "features", "validate", "train", "promote", "score", "demand", "recommend")


def job_function(name: str) -> Callable[[SparkSession, Config], JobSummary]:
    if name not in JOBS:
        raise PricingError(f"unknown job {name!r}; jobs are: {', '.join(JOBS)}")
    module = importlib.import_module(f"jobs.{name}")
    return module.run


def run_job(name: str, spark: SparkSession, cfg: Config) -> JobSummary:
    function = job_function(name)
    with heartbeat(spark, name):  # on a terminal, a line every few seconds while the job runs
        summary = function(spark, cfg)
    print(summary.render(), flush=True)
    # Downstream Databricks tasks read these through {{tasks.<task>.values.<key>}}; locally a check only.
    publish(summary.task_values)
    return summary


def run_experiment(action: str, spark: SparkSession, cfg: Config) -> JobSummary:
    """``pricing experiment <action>``: simulate, analyse or design a pricing-policy experiment."""
    with heartbeat(spark, f"experiment {action}"):
        return importlib.import_module("jobs.experiment").run(spark, cfg, action)
