"""Where the driver JVM's CPU goes: the whole workflow on a tiny world, run N times in one Spark session.

    .venv/bin/python bench/jvm_cpu.py [--runs 2] [--conf spark.sql.codegen.cache.maxEntries=100 ...]

Each run builds a fresh tiny world (``tests.reliability.support.tiny_cfg``: 3,000 listings, 90 days) under a temporary
folder and runs the ten tasks in the one session, as a test process or ``pricing run`` does.  After each run it
reads the JVM's threads from ``/proc`` (Linux) and sums their CPU seconds by kind: the JIT compilers (C1, C2),
the garbage collector, Spark's task threads, the py4j threads that serve the Python driver (planning, code
generation), and the rest.  ``--conf`` replaces a session setting, e.g. Spark's own defaults against ours:
``--conf spark.sql.codegen.cache.maxEntries=100 --conf "spark.driver.extraJavaOptions=-Duser.timezone=UTC"``
(that second one drops ``-XX:+UseParallelGC``, so the JVM runs G1).

Prints one table (Markdown) with each run's wall seconds, the JVM's CPU seconds and their split; with ``--out``
also writes it there.  Timings are only comparable on the same otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for the tests' own tiny config
from pricing.platform.spark import get_spark  # noqa: E402
from pricing.workflow.dag import run_workflow  # noqa: E402
from tests.reliability.support import tiny_cfg  # noqa: E402

KINDS = (("JIT C2", r"^C2 CompilerThre"), ("JIT C1", r"^C1 CompilerThre"),
         ("GC", r"^(GC Thread|G1 |PS |VM Thread)"), ("Spark tasks", r"^Executor task"),
         ("py4j (driver calls)", r"^Thread-\d+"))


def thread_cpu(pid: int) -> tuple[float, Counter[str]]:
    """The process's CPU seconds (its dead threads included) and its live threads' by kind."""
    hz = os.sysconf("SC_CLK_TCK")
    kinds: Counter[str] = Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        kind = next((k for k, pattern in KINDS if re.match(pattern, name)), "other")
        kinds[kind] += (int(fields[11]) + int(fields[12])) / hz
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return sum(int(f) for f in fields[11:15]) / hz, kinds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--conf", action="append", default=[], help="KEY=VALUE: a Spark setting for the session")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="jvm-cpu-"))
    configs = [tiny_cfg(base / f"run{i}") for i in range(args.runs)]
    for kv in args.conf:
        key, value = kv.split("=", 1)
        for cfg in configs:
            cfg.spark.conf[key] = value
    spark = get_spark(configs[0], app_name="bench-jvm-cpu", testing=True)
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    names = [k for k, _ in KINDS] + ["other"]
    lines = ["| run | wall s | JVM CPU s | " + " | ".join(names) + " |", "|---" * (len(names) + 3) + "|"]
    for i, cfg in enumerate(configs):
        total0, kinds0 = thread_cpu(pid)
        t0 = time.time()
        run_workflow(spark, cfg)
        wall = time.time() - t0
        total1, kinds1 = thread_cpu(pid)
        split = [kinds1[k] - kinds0[k] for k in names]
        lines.append(f"| {i + 1} | {wall:.1f} | {total1 - total0:.1f} | " + " | ".join(f"{v:.1f}" for v in split)
                     + " |")
        print(lines[-1], flush=True)
    report = "\n".join([f"settings: {args.conf or 'the defaults of pricing.platform.spark.get_spark'}", "", *lines])
    print(report)
    if args.out:
        args.out.write_text(report + "\n")
    spark.stop()


if __name__ == "__main__":
    main()
