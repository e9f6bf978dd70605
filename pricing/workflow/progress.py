"""Progress inside a long job, on a terminal: a line every few seconds saying how long the job has run and what
Spark is doing (each active stage's completed tasks), or that the driver is busy between Spark jobs (fitting,
logging to MLflow, validating), which Spark's own stage bar never shows.  Quiet in CI and in a scheduler's log.

``PRICING_PROGRESS=1`` forces the lines on (say, a log you tail), ``PRICING_PROGRESS=0`` off; otherwise they are
on when stderr is a terminal.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from pyspark.sql import SparkSession

EVERY_S = 5.0
"""Seconds between two lines."""
MAX_STAGES = 3
"""Stages named on one line; more are counted."""


def enabled(stream: TextIO = sys.stderr) -> bool:
    flag = os.environ.get("PRICING_PROGRESS", "").strip()
    if flag in ("0", "1"):
        return flag == "1"
    return stream.isatty()


def status_line(spark: SparkSession, job: str, elapsed_s: float) -> str:
    """``pricing <job> 0:35 · stage 12 (save at ...) 3/8 tasks``, or ``... · driver work`` with no stage active."""
    tracker = spark.sparkContext.statusTracker()
    stages = [s for s in (tracker.getStageInfo(i) for i in sorted(tracker.getActiveStageIds())) if s is not None]
    clock = f"{int(elapsed_s) // 60}:{int(elapsed_s) % 60:02d}"
    if not stages:
        return f"pricing {job} {clock} · driver work (no Spark stage running)"
    shown = [f"stage {s.stageId} ({s.name.split(' at ')[0]}) {s.numCompletedTasks}/{s.numTasks} tasks"
             for s in stages[:MAX_STAGES]]
    more = f" · {len(stages) - MAX_STAGES} more stages" if len(stages) > MAX_STAGES else ""
    return f"pricing {job} {clock} · " + " · ".join(shown) + more


@contextmanager
def heartbeat(spark: SparkSession, job: str, every_s: float = EVERY_S,
              stream: TextIO | None = None) -> Iterator[None]:
    """While the block runs, print :func:`status_line` every ``every_s`` seconds to ``stream`` (stderr), when
    :func:`enabled`.  The first line comes after ``every_s``: short jobs print nothing extra."""
    out = stream or sys.stderr
    if not enabled(out):
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not done.wait(every_s):
            try:
                line = status_line(spark, job, time.monotonic() - started)
            except Exception:  # the session is stopping: progress is never worth failing a job for
                return
            print(line, file=out, flush=True)

    thread = threading.Thread(target=beat, name=f"pricing-progress-{job}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=every_s)
