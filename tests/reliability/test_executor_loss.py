"""Executor loss: on a standalone cluster of two one-core workers, one worker (and the executor it runs) is
SIGKILLed while scoring writes ``ml.price_suggestions``.  Spark reschedules the lost tasks on the other executor:
the job completes and its rows equal an undisturbed scoring of the same model, each active listing once.

The kill is made deterministic with the fault point ``score.predict`` (``pricing.platform.faults``), armed on the
executors through ``spark.executorEnv``: the first scoring task to arrive pauses (the signal file names its
process), its worker's whole process group is killed, and the retried task runs through."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from pricing.platform import delta_io
from pricing.platform.config import Config
from pricing.platform.tables import table
from tests.cluster_support import Cluster, start_cluster, tail
from tests.reliability.support import SCORING_DATE, assert_same_rows, overrides, parent, paused_pid

pytestmark = pytest.mark.slow
DATE = "2025-03-07"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory) as c:
        yield c


def test_scoring_survives_losing_a_worker(spark: SparkSession, ref: Config, cluster: Cluster,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("executor-loss")
    signal_file = work / "paused"
    conf = {"spark.executorEnv.PRICING_FAULT_AT": "score.predict",
            "spark.executorEnv.PRICING_FAULT_SIGNAL": str(signal_file),
            "spark.executor.extraJavaOptions": "-Duser.timezone=UTC -XX:TieredStopAtLevel=1"}
    cmd = [sys.executable, "-m", "pricing.workflow.cli",
           *overrides(ref.state_dir, f"score.scoring_date={DATE}", f"spark.master={cluster.url}",
                      f"spark.conf={json.dumps(conf)}"), "score"]
    log = work / "driver.log"
    with log.open("wb") as out:
        driver = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while not signal_file.exists():
                assert driver.poll() is None, f"the driver exited {driver.returncode} early:\n{tail(log, 60)}"
                assert time.monotonic() < deadline, f"no scoring task paused:\n{tail(log, 60)}"
                time.sleep(0.2)
            paused = paused_pid(signal_file)
            assert paused is not None
            # Up the process tree from the paused Python worker (daemon, executor JVM) to the worker daemon.
            workers, ancestor = [p.pid for p in cluster.procs[1:]], paused
            while ancestor not in workers:
                assert ancestor > 1, f"the paused task (pid {paused}) runs under no worker {workers}"
                ancestor = parent(ancestor)
            os.killpg(ancestor, signal.SIGKILL)  # the worker and the executor it launched
            os.killpg(os.getpgid(paused), signal.SIGKILL)  # PySpark's worker daemon leads its own group
            rc = driver.wait(timeout=400)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
    output = log.read_text(errors="replace")
    assert rc == 0, tail(log, 80)
    assert re.search(r"Lost (executor|task)", output), "no executor was lost: the fault missed the write"
    out = delta_io.read(spark, table(ref, "ml.price_suggestions"))
    got = out.where(f"scoring_date = DATE'{DATE}'")
    want = out.where(f"scoring_date = DATE'{SCORING_DATE}'")
    assert got.count() == got.select("listing_id").distinct().count() > 100
    cols = [c for c in want.columns if c not in ("scored_at", "scoring_date")]
    assert_same_rows(got.select(*cols), want.select(*cols), "scoring after losing a worker")
