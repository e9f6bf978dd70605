"""The one Spark session factory.

On Databricks it returns the cluster's session untouched (Delta is built in).  Locally it builds a
session with Delta's SQL extension and catalog, the Delta jars from the project cache (fetched once by
``make jars``, never over the network here), UTC, few shuffle partitions and an optional UI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from pricing.platform.config import Config
from pricing.platform.errors import SetupError

LOOPBACK = "127.0.0.1"


def on_databricks_runtime() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def _check_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise SetupError(
            "Java was not found (no JAVA_HOME and no `java` on PATH). Spark needs Java 17: "
            "install it (e.g. `apt-get install openjdk-17-jre-headless`) and run `make setup` again."
        )
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SetupError(f"`{java} -version` failed ({exc}); Spark needs a working Java 17.") from None


def delta_jars(jars_dir: Path) -> list[str]:
    """The cached jar files listed in the cache's MANIFEST (written last by the fetch step)."""
    manifest = jars_dir / "MANIFEST"
    if not manifest.exists():
        raise SetupError(f"Delta Lake jars are not cached in {jars_dir}. Run `make jars` (or `make setup`) once.")
    names = manifest.read_text().split()[1:]
    jars = [jars_dir / n for n in names]
    missing = [str(j) for j in jars if not j.exists()]
    if not jars or missing:
        raise SetupError(f"Delta jar cache {jars_dir} is incomplete ({', '.join(missing) or 'empty'}). "
                         "Delete it and run `make jars`.")
    return [str(j) for j in jars]


CODEGEN_CACHE = ("spark.sql.codegen.cache.maxEntries", "10000")
"""Spark's codegen cache size, a static SQL conf: set when a session is built here, and in the ``spark_conf`` of the
bundle's job clusters (a cluster's conf is fixed before its first task)."""


def get_spark(cfg: Config, app_name: str | None = None, testing: bool = False) -> SparkSession:
    """Return the session jobs run in.  Idempotent within a process."""
    if on_databricks_runtime():
        return SparkSession.builder.getOrCreate()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    _check_java()
    jars = delta_jars(cfg.path(cfg.spark.jars_dir))
    # Python workers must run this interpreter (the venv), not whatever `python3` is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    local = cfg.spark.master.startswith("local")
    if local:
        # A local job serves nobody else: its UI (bound to SPARK_LOCAL_IP, else all interfaces), RPC and block
        # manager listen on the loopback interface only.  Cluster drivers must stay reachable by executors.
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    state = cfg.state_dir
    state.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(cfg.spark.master)
        .appName(app_name or cfg.spark.app_name)
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        # ParallelGC: the throughput collector, for a batch driver.  G1's threads took 18 to 36 s of CPU per tiny
        # workflow on 2 cores, ParallelGC's 14 to 15 s (with the cache below: 237 s -> 208 s cold, 2026-12-05).
        .config("spark.driver.extraJavaOptions",
                f"-Duser.timezone=UTC -Dderby.system.home={state / 'derby'} -XX:+UseParallelGC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.shuffle.partitions", str(cfg.spark.shuffle_partitions))
        .config("spark.default.parallelism", str(cfg.spark.shuffle_partitions))
        .config("spark.driver.memory", cfg.spark.driver_memory)
        .config("spark.sql.warehouse.dir", str(state / "spark-warehouse"))
        .config("spark.ui.enabled", str(cfg.spark.ui and not testing).lower())
        # No stage bar: on a terminal the workflow prints its own progress lines, with the stages in them
        # (pricing.workflow.progress), and in a scheduler's log a bar is noise.
        .config("spark.ui.showConsoleProgress", "false")
        # Local disks list fast on the driver; a Spark job per landing listing costs seconds on 2 cores.
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "4096")
        .config("spark.sql.adaptive.enabled", "true")
        # Spark keeps the classes it generates for 100 query shapes; a workflow's jobs make many more, so each job
        # compiled them again (Janino) and the JIT compiled them again (the JIT took 40 % of the driver's CPU).  A
        # tiny workflow run a second time in one session: 180 s -> 154 s, the driver's CPU 209 s -> 159 s.
        .config(*CODEGEN_CACHE)
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # PySpark's own default (each Python worker's OpenMP pool capped at its task's cores), made explicit so
        # that training can lift it for its barrier stage alone (pricing.price_model.training.openmp_threads).
        .config("spark.executorEnv.OMP_NUM_THREADS", cfg.spark.conf.get("spark.task.cpus", "1"))
    )
    if local:
        builder = builder.config("spark.driver.bindAddress", LOOPBACK).config("spark.driver.host", LOOPBACK)
    for key, value in cfg.spark.conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM failed to start: give one line, not a Java stack trace
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SetupError(f"Spark could not start: {first}. Check Java 17 and run `make setup`.") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark
