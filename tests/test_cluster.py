"""The jobs on a real multi-process Spark standalone cluster: a master and two one-core workers on 127.0.0.1,
started from the installed pyspark, and the ``pricing`` CLI as the driver in a subprocess (this process already
holds a local SparkSession, and Spark allows one per process).

The simulator's export and its ingestion (``generate``, ``ingest``) run first in this process's local session:
they are the data source, and on this 2-core machine a fresh driver and executors for them would double the
test's time.  Then the driver runs match -> features -> train -> promote -> score on the cluster, each through
``pricing.workflow.cli.main`` exactly as ``pricing <job>`` does, in one process: one application whose executors serve
every job, the way one Databricks job cluster serves the tasks of a job.  Training uses ``train.num_workers=2``:
xgboost's barrier stage must run one task on each worker.  The event log and the workers' own JSON show where
the tasks ran.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pricing.platform import delta_io
from pricing.platform.config import Config, load_config
from pricing.platform.tables import table
from pricing.workflow.runner import run_job
from tests.cluster_support import Cluster, start_cluster
from tests.cluster_support import get_json as _json
from tests.cluster_support import tail as _tail

pytestmark = pytest.mark.slow

LOCAL_JOBS = ("generate", "ingest")
JOBS = ("match", "features", "train", "promote", "score")
TINY = [
    "simulator.n_listings=4000", "simulator.n_sellers=400", "simulator.n_brands=40", "simulator.days=90",
    "simulator.partitions=2", "spark.shuffle_partitions=2", "spark.ui=false", "train.booster.n_estimators=30",
    "train.num_workers=2", "train.test_days=14", "train.validation_days=14", "train.calibration_days=16",
]
# Runs each job as `pricing <args> <job>` would, sharing one driver: prints each exit code, stops at the first failure.
DRIVER = """
import sys
from pricing.workflow.cli import main
split = sys.argv.index("--jobs")
for job in sys.argv[split + 1:]:
    try:
        rc = main([*sys.argv[1:split], job])
    except SystemExit as exc:  # a job error: `pricing <job>` exits 2
        rc = exc.code
    print(f"@@ {job} exit {rc}", flush=True)
    if rc:
        sys.exit(rc)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory) as c:
        yield c


@dataclass
class Run:
    cfg: Config
    rc: int
    output: str
    events: list[dict[str, Any]]


@pytest.fixture(scope="module")
def run(spark: SparkSession, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("cluster-state")
    cfg = load_config("local", [*TINY, f"storage.root={root}"])
    t0 = time.time()
    for job in LOCAL_JOBS:
        run_job(job, spark, cfg)
    print(f"\nlocal {', '.join(LOCAL_JOBS)}: {time.time() - t0:.0f} s", flush=True)
    events_dir = root / "events"
    events_dir.mkdir()
    # Plans are logged on every adaptive re-plan: cut their text, or the log grows to 100+ MB and slows the jobs.
    conf = {"spark.eventLog.enabled": "true", "spark.eventLog.compress": "false",
            "spark.eventLog.rolling.enabled": "false", "spark.eventLog.dir": events_dir.as_uri(),
            "spark.sql.maxPlanStringLength": "2048", "spark.sql.ui.explainMode": "simple",
            # Short-lived executors on 2 shared cores: the quick JIT tier alone warms up faster than C2 pays back.
            "spark.executor.extraJavaOptions": "-Duser.timezone=UTC -XX:TieredStopAtLevel=1"}
    overrides = [*TINY, f"storage.root={root}", f"spark.master={cluster.url}", f"spark.conf={json.dumps(conf)}"]
    args = [a for o in overrides for a in ("--set", o)]
    out_file = cluster.logs / "driver.log"
    t0 = time.time()
    with out_file.open("wb") as out:
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, *args, "--jobs", *JOBS], stdout=out,
                                  stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True)
        try:
            rc = driver.wait(timeout=540)
        except subprocess.TimeoutExpired:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
            pytest.fail(f"the driver ran past 540 s:\n{_tail(out_file)}")
    seconds = time.time() - t0
    logs = list(events_dir.iterdir())
    size = sum(f.stat().st_size for f in logs) / 2**20
    print(f"cluster run: {seconds:.0f} s for {', '.join(JOBS)}; event log {size:.1f} MiB", flush=True)
    events = [json.loads(line) for f in logs for line in f.read_text().splitlines() if line.strip()]
    return Run(cfg, rc, out_file.read_text(errors="replace"), events)


def test_every_job_exits_zero_on_the_cluster(run: Run) -> None:
    assert run.rc == 0, run.output[-6000:]
    assert [line for line in run.output.splitlines() if line.startswith("@@ ")] == [
        f"@@ {job} exit 0" for job in JOBS]


def test_training_ran_one_barrier_task_on_each_worker(cluster: Cluster, run: Run) -> None:
    assert run.rc == 0, run.output[-3000:]
    (app,) = [e for e in run.events if e["Event"] == "SparkListenerApplicationStart"]
    barrier_stages = {e["Stage Info"]["Stage ID"] for e in run.events if e["Event"] == "SparkListenerStageSubmitted"
                      and any(r.get("Barrier") for r in e["Stage Info"]["RDD Info"])}
    assert barrier_stages, "no barrier stage: xgboost.spark did not train distributed"
    executors_by_stage: dict[int, list[str]] = {s: [] for s in barrier_stages}
    for e in run.events:
        if (e["Event"] == "SparkListenerTaskEnd" and e["Stage ID"] in barrier_stages
                and e["Task End Reason"]["Reason"] == "Success"):
            executors_by_stage[e["Stage ID"]].append(e["Task Info"]["Executor ID"])
    # Four fits: the median, the p10 and p90 boosters (CQR intervals), and the median without the comparable-sales
    # features (train's ablation metric).
    assert len(barrier_stages) == 4, executors_by_stage
    # Each fit ran one barrier task per worker: two tasks, on two different executors.
    for stage, executors in executors_by_stage.items():
        assert len(executors) == 2 and len(set(executors)) == 2, (stage, executors)
    # Each worker launched exactly one executor for this application: the barrier tasks ran on both workers.
    for worker_ui, work_dir in zip(cluster.worker_uis, cluster.work_dirs, strict=True):
        worker = _json(f"{worker_ui}/json/")
        mine = [x for x in worker["executors"] + worker["finishedexecutors"] if x["appid"] == app["App ID"]]
        assert len(mine) == 1, worker
        # spark.jars (pricing/spark.py) ships Delta to the executors: Delta's writers run there.
        assert list((work_dir / app["App ID"]).glob("*/delta-spark_*.jar")), f"no Delta jar in {work_dir}"
    state = cluster.master()
    assert state["aliveworkers"] == 2 and all(w["state"] == "ALIVE" for w in state["workers"])
    (done,) = [a for a in state["completedapps"] if a["id"] == app["App ID"]]
    assert done["cores"] == 2


def test_every_active_listing_is_scored_once(spark: SparkSession, run: Run) -> None:
    assert run.rc == 0, run.output[-3000:]
    active = delta_io.read(spark, table(run.cfg, "silver.listings")).where("status = 'active'").select("listing_id")
    scored = delta_io.read(spark, table(run.cfg, "ml.price_suggestions"))
    ids = [r.listing_id for r in scored.select("listing_id").collect()]
    assert len(ids) == len(set(ids)), "a listing was scored twice"
    assert sorted(ids) == sorted(r.listing_id for r in active.collect())
    assert len(ids) > 100
    bad = scored.where(~((F.col("p10") <= F.col("p50")) & (F.col("p50") <= F.col("p90"))
                         & (F.col("suggested_price") > 0)))
    assert bad.count() == 0
    assert [r.model_version for r in scored.select("model_version").distinct().collect()] == [1]
