"""A real Spark standalone cluster for tests: a master and two one-core workers on 127.0.0.1, started from the
installed pyspark (``bin/spark-class``), each daemon leading its own process group so that it and the executors
it launches can be stopped (terminate, then kill) whatever happens.  Used by the deployed-path harness
(``tests/workflow/test_deployed.py``) and the executor-loss test in ``tests/reliability/``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyspark
import pytest

SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else f"({path} missing)"


def logged(log: Path, proc: subprocess.Popen[bytes], pattern: str, timeout: float = 120) -> str:
    """The first group of ``pattern`` once the daemon has written it to ``log``.  Daemons are started on port 0
    and say which port they bound: a port picked here and passed on could be taken by another process (the other
    test process starts clusters too) before the daemon binds it, and Spark would then silently bind the next
    one, leaving a test talking to someone else's daemon."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if m := re.search(pattern, log.read_text(errors="replace") if log.exists() else ""):
            return m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    pytest.fail(f"{log.name}: no line matching {pattern!r} within {timeout:.0f} s\n{tail(log)}")


@dataclass
class Cluster:
    url: str
    master_ui: str
    worker_uis: list[str]
    work_dirs: list[Path]
    env: dict[str, str]
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def master(self) -> dict[str, Any]:
        return get_json(f"{self.master_ui}/json/")  # type: ignore[no-any-return]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Each daemon leads its own process group (with the executors it launched): terminate it, then kill it."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.time() + 20
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.time()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def start_cluster(tmp_path_factory: pytest.TempPathFactory, workers: int = 2,
                  python: str = sys.executable, cores: int = 1) -> Iterator[Cluster]:
    """Start a master and ``workers`` workers of ``cores`` cores each; stop them (and their executors) on exit.
    Executors run ``python`` (default: this interpreter)."""
    logs = tmp_path_factory.mktemp("cluster-logs")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1",
           # Executors run the venv's Python only through this variable (the builder's setting is ignored).
           "PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python,
           # The REST submission server would take the fixed port 6066, shared with any other cluster here.
           "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false"}
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> tuple[Path, subprocess.Popen[bytes]]:
        path = logs / f"{name}.log"
        with path.open("wb") as log:
            procs.append(subprocess.Popen([str(SPARK_CLASS), *args], stdout=log, stderr=subprocess.STDOUT,
                                          env=env, start_new_session=True))
        return path, procs[-1]

    ui_port = r"Successfully started service '\w+UI' on port (\d+)"
    try:
        master = start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", "0",
                       "--webui-port", "0")
        url = logged(*master, r"Starting Spark master at (spark://\S+)")
        master_ui = f"http://127.0.0.1:{logged(*master, ui_port)}"
        work_dirs = [tmp_path_factory.mktemp(f"worker{i}") for i in range(1, workers + 1)]
        started = [start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                         "--cores", str(cores), "--memory", "2g", "--work-dir", str(work_dir), "--webui-port", "0")
                   for i, work_dir in enumerate(work_dirs, start=1)]
        worker_uis = [f"http://127.0.0.1:{logged(*w, ui_port)}" for w in started]
        c = Cluster(url, master_ui, worker_uis, work_dirs, env, logs, procs)
        deadline, state = time.time() + 120, {}
        while time.time() < deadline:
            try:
                state = c.master()
                if state.get("aliveworkers") == workers:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"the {workers} workers did not register within 120 s: {state}\n{tail(logs / 'master.log')}")
        yield c
    finally:
        stop(procs)
        # Killed executors are orphans until init reaps them: give that a moment before calling one a stray.
        deadline = time.time() + 15
        while time.time() < deadline and any(group_alive(p.pid) for p in procs):
            time.sleep(0.2)
        assert not [p.pid for p in procs if group_alive(p.pid)], "a cluster JVM outlived the test"
