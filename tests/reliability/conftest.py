"""The reliability tests share one uninterrupted run of the workflow on a tiny marketplace (``ref``): what every
crashed, raced or repeated run is compared with.

Developing these tests, ``PRICING_RELIABILITY_REF=<dir>`` keeps that run in ``<dir>`` and reuses it on the next
pytest run (the tests only add scoring dates to it); unset, it is built afresh in a temporary folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from pricing.platform.config import Config
from pricing.workflow.runner import run_job
from tests.reliability.support import tiny_cfg

REF_JOBS = ("generate", "ingest", "match", "features", "validate", "train", "promote", "score")
DONE = "reliability-ref.done"


@pytest.fixture(scope="package")
def ref(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    keep = os.environ.get("PRICING_RELIABILITY_REF")
    root = Path(keep) if keep else tmp_path_factory.mktemp("reliability-ref")
    cfg = tiny_cfg(root)
    if (root / DONE).exists():
        return cfg
    for job in REF_JOBS:
        t0 = time.time()
        run_job(job, spark, cfg)
        print(f"ref {job}: {time.time() - t0:.1f} s", flush=True)
    (root / DONE).write_text("ok\n")
    return cfg
