"""Helpers of the reliability tests: a tiny marketplace config, jobs run (and killed) in subprocesses, calls run
in threads at one instant, and table comparisons by content."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.platform import delta_io
from pricing.platform.config import Config, load_config
from pricing.platform.tables import table

TINY = [
    "simulator.n_listings=3000", "simulator.n_sellers=300", "simulator.n_brands=40", "simulator.days=90",
    "simulator.partitions=2", "spark.shuffle_partitions=2", "spark.ui=false", "train.booster.n_estimators=30",
    "train.num_workers=2", "train.test_days=14", "train.validation_days=14", "train.calibration_days=16",
    "score.scoring_date=2025-03-01",
    "ingest.lock_timeout_s=300",
]
"""Small enough for a few seconds a job; every job still has data to work on."""
SCORING_DATE = "2025-03-01"
BRONZE = ("bronze.listings_raw", "bronze.price_changes_raw", "bronze.sales_raw", "bronze.removals_raw")
INGEST_TABLES = (*BRONZE, "bronze.quarantine", "silver.listings", "silver.sales")
FEATURE_TABLES = ("features.listing_features", "features.market_stats", "features.comparable_sales",
                  "features.training_set")
VOLATILE = {"ingested_at", "payload_hash", "scored_at", "evaluated_at", "model_version", "feature_table_version",
            "scoring_date"}
"""Columns that legitimately differ between two runs over the same data: ingestion, scoring and evaluation clocks, the
registry's version number, and ``payload_hash`` (a hash of the source file's absolute path)."""


def tiny_cfg(root: Path, *extra: str) -> Config:
    return load_config("local", [*TINY, f"storage.root={root}", *extra])


def overrides(root: Path, *extra: str) -> list[str]:
    return [a for o in (*TINY, f"storage.root={root}", *extra) for a in ("--set", o)]


def copy_landing(src: Config, dst: Config, dates: Iterable[str] | None = None) -> int:
    """Copy the landing export (manifest included), only the given ``landing_date`` folders when ``dates`` is
    set; the number of data files copied."""
    a, b = src.state_path(src.ingest.landing_dir), dst.state_path(dst.ingest.landing_dir)
    wanted = None if dates is None else set(dates)
    n = 0
    for f in a.rglob("*"):
        if f.is_dir():
            continue
        rel = f.relative_to(a)
        date = next((p.split("=", 1)[1] for p in rel.parts if p.startswith("landing_date=")), None)
        if date is not None and wanted is not None and date not in wanted:
            continue
        (b / rel).parent.mkdir(parents=True, exist_ok=True)
        if not (b / rel).exists():
            shutil.copy2(f, b / rel)
            n += date is not None
    for event_type in ("listing_created", "price_changed", "listing_sold", "listing_removed"):
        (b / event_type).mkdir(parents=True, exist_ok=True)
    return n


def landing_dates(cfg: Config) -> list[str]:
    root = cfg.state_path(cfg.ingest.landing_dir)
    return sorted({p.name.split("=", 1)[1] for p in root.glob("*/landing_date=*")})


def rows(spark: SparkSession, cfg: Config, logical: str, drop: Iterable[str] = (),
         version: int | None = None) -> DataFrame:
    """A table's rows by content: volatile columns dropped, ``source_file`` made relative to the landing folder,
    maps as JSON (so that set operations work)."""
    df = delta_io.read(spark, table(cfg, logical), version=version)  # a version: immutable, unlike a cache
    df = df.drop(*[c for c in df.columns if c in VOLATILE or c in set(drop)])
    if "source_file" in df.columns:  # <event_type>/landing_date=<day>/<file>: the same export in any root
        df = df.withColumn("source_file", F.regexp_extract("source_file", r"[^/]+/landing_date=[^/]+/[^/]+$", 0))
    for f in df.schema.fields:
        if isinstance(f.dataType, T.MapType):
            df = df.withColumn(f.name, F.to_json(f.name))
    return df


def assert_same_rows(a: DataFrame, b: DataFrame, what: str) -> None:
    """Equal as multisets of rows (duplicates count)."""
    assert sorted(a.columns) == sorted(b.columns), f"{what}: columns differ: {a.columns} vs {b.columns}"
    b = b.select(*a.columns)
    na, nb = a.count(), b.count()
    extra, missing = a.exceptAll(b).count(), b.exceptAll(a).count()
    assert (na, extra, missing) == (nb, 0, 0), \
        f"{what}: {na} rows vs {nb} expected; {extra} unexpected, {missing} missing"


def assert_tables_equal(spark: SparkSession, got: Config, want: Config, tables: Iterable[str]) -> None:
    for logical in tables:
        assert_same_rows(rows(spark, got, logical), rows(spark, want, logical), logical)


def delta_tables(cfg: Config) -> list[Path]:
    """Every Delta table folder under the local warehouse."""
    return sorted(p.parent for p in (cfg.state_dir / "warehouse").glob("*/*/_delta_log"))


def assert_all_tables_readable(spark: SparkSession, cfg: Config) -> dict[str, int]:
    """Each Delta table under the warehouse is a committed version that reads in full; name -> row count."""
    out = {}
    for path in delta_tables(cfg):
        assert DeltaTable.isDeltaTable(spark, str(path)), f"{path} is not a readable Delta table"
        out[f"{path.parent.name}.{path.name}"] = spark.read.format("delta").load(str(path)).count()
    return out


def job_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    for k in ("PRICING_FAULT_AT", "PRICING_FAULT_SIGNAL", "PRICING_FAULT_SLEEP_S"):
        env.pop(k, None)
    env.update(extra)
    return env


def pricing_cmd(root: Path, job: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pricing.workflow.cli", *overrides(root, *extra), job]


def kill_at(cmd: list[str], point: str, workdir: Path, env: dict[str, str] | None = None,
            timeout_s: float = 300) -> str:
    """Run ``cmd`` with the fault point ``point`` armed (``pricing.platform.faults``); SIGKILL its whole process group
    (driver, JVM, Python workers) the moment the point is reached; return its output."""
    signal_file = workdir / f"fault-{point}-{time.monotonic_ns()}"
    log = workdir / f"{signal_file.name}.log"
    env = {**(env or job_env()), "PRICING_FAULT_AT": point, "PRICING_FAULT_SIGNAL": str(signal_file)}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while not signal_file.exists():
                if proc.poll() is not None:
                    pytest.fail(f"{' '.join(cmd[-1:])} exited {proc.returncode} before reaching fault point {point}:\n"
                                + log.read_text(errors="replace")[-4000:])
                if time.monotonic() > deadline:
                    pytest.fail(f"fault point {point} not reached in {timeout_s:.0f} s:\n"
                                + log.read_text(errors="replace")[-4000:])
                time.sleep(0.1)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            # A point reached in a Python worker: PySpark's worker daemon leads a process group of its own.
            kill_group_of(signal_file)
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return log.read_text(errors="replace")


def paused_pid(signal_file: Path) -> int | None:
    """The pid a fault point wrote into its signal file (``pricing.platform.faults``), once written."""
    for _ in range(50):
        text = signal_file.read_text().strip() if signal_file.exists() else ""
        if text:
            return int(text.split()[0])
        time.sleep(0.1)
    return None


def kill_group_of(signal_file: Path) -> None:
    pid = paused_pid(signal_file) if signal_file.exists() else None
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)


def parent(pid: int) -> int:
    """The parent of a live process (Linux ``/proc``)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released at the same instant; their results (or the exceptions they raised)."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def go(i: int, call: Callable[[], Any]) -> None:
        start.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return results
