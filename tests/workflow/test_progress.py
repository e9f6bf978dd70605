"""Progress lines inside a job: on a terminal (or forced), a line every few seconds naming the running stages and
their completed tasks, or the driver's own work; nothing in CI."""

from __future__ import annotations

import io
import re
import time

import pytest
from pyspark.sql import SparkSession

from pricing.workflow.progress import heartbeat, status_line


def slow_job(spark: SparkSession, seconds: float) -> None:
    spark.sparkContext.parallelize(range(2), 2).map(lambda x: time.sleep(seconds) or x).collect()


def test_lines_name_the_running_stage_and_the_driver_work(spark, monkeypatch) -> None:
    monkeypatch.setenv("PRICING_PROGRESS", "1")
    out = io.StringIO()
    with heartbeat(spark, "train", every_s=0.3, stream=out):
        time.sleep(0.8)  # the driver alone
        slow_job(spark, 2.0)
    lines = out.getvalue().splitlines()
    assert lines, "no progress line in 2.8 s at one every 0.3 s"
    assert all(re.match(r"pricing train \d+:\d\d · ", line) for line in lines), lines
    assert any(line.endswith("driver work (no Spark stage running)") for line in lines), lines
    assert any(re.search(r"stage \d+ \(collect\) [01]/2 tasks", line) for line in lines), lines


def test_a_job_shorter_than_the_interval_prints_nothing(spark, monkeypatch) -> None:
    monkeypatch.setenv("PRICING_PROGRESS", "1")
    out = io.StringIO()
    with heartbeat(spark, "score", every_s=60, stream=out):
        pass
    assert out.getvalue() == ""


@pytest.mark.parametrize("flag", ["0", None])
def test_quiet_when_switched_off_or_not_on_a_terminal(spark, monkeypatch, flag) -> None:
    """``PRICING_PROGRESS=0``, or unset with a stream that is not a terminal (CI, a scheduler's log)."""
    if flag is None:
        monkeypatch.delenv("PRICING_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("PRICING_PROGRESS", flag)
    out = io.StringIO()
    with heartbeat(spark, "features", every_s=0.1, stream=out):
        slow_job(spark, 0.5)
    assert out.getvalue() == ""


def test_the_status_line_without_a_stage(spark) -> None:
    assert status_line(spark, "validate", 95.4) == "pricing validate 1:35 · driver work (no Spark stage running)"
