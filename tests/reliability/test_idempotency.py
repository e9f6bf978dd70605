"""Idempotency: every job run a second time in a row leaves identical table contents (and the jobs with nothing
new to do commit nothing at all).  ``tests/test_end_to_end.py`` re-runs ``score`` and ``ingest`` on the full
workflow; this re-runs every job on the tiny one.  ``train`` writes no table (each run registers a new model
version, by design: the gate decides); ``validate`` appends its results to the ``ml.validation_results`` log,
whose earlier rows must stay as they were."""

from __future__ import annotations

import pytest
from pyspark.sql import DataFrame, SparkSession

from pricing.platform.config import Config
from pricing.workflow.runner import run_job
from tests.reliability.support import assert_same_rows, delta_tables

pytestmark = pytest.mark.slow

NO_OP = ("generate", "ingest", "match", "features", "promote")
"""Nothing new arrived: these must not even commit."""
LOG = "ml.validation_results"


def _snapshot(spark: SparkSession, cfg: Config) -> dict[str, tuple[int, DataFrame]]:
    out = {}
    for path in delta_tables(cfg):
        name = f"{path.parent.name}.{path.name}"
        version = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()["version"]
        df = spark.read.format("delta").option("versionAsOf", version).load(str(path))
        out[name] = (int(version), df.drop("scored_at"))  # a re-scoring of a date stamps its new time
    return out


def test_every_job_twice_leaves_identical_tables(spark: SparkSession, ref: Config) -> None:
    before = _snapshot(spark, ref)
    for job in NO_OP:
        run_job(job, spark, ref)
    after = _snapshot(spark, ref)
    assert {k: v for k, (v, _) in after.items()} == {k: v for k, (v, _) in before.items()}, \
        "a job with nothing to do committed"
    run_job("validate", spark, ref)
    run_job("score", spark, ref)
    after = _snapshot(spark, ref)
    assert set(after) == set(before)
    for name, (_, old) in before.items():
        new = after[name][1]
        if name == LOG:
            assert old.exceptAll(new).count() == 0 and new.count() > old.count()
        else:
            assert_same_rows(new, old, name)
