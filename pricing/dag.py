"""Run a bundle job's task graph locally: read ``resources/*.yml``, order by ``depends_on``, run each task's
job function in this process.  The bundle is the only copy of the graph."""

from __future__ import annotations

import time
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import yaml
from pyspark.sql import SparkSession

from pricing.config import Config
from pricing.errors import ConfigError, PricingError


@dataclass(frozen=True)
class Task:
    key: str
    job: str
    depends_on: tuple[str, ...]
    overrides: tuple[str, ...]


def _task_job(task: dict, where: str) -> tuple[str, tuple[str, ...]]:
    params = list((task.get("python_wheel_task") or {}).get("parameters") or [])
    overrides, job, i = [], None, 0
    while i < len(params):
        if params[i] in ("--env", "--set"):
            if params[i] == "--set":
                overrides.append(params[i + 1])
            i += 2
        else:
            job = params[i]
            i += 1
    if job is None:
        raise ConfigError(f"{where}: task {task.get('task_key')!r} names no job in its parameters")
    # Bundle variables (${var.workers}) mean nothing locally: leave such overrides to local config.
    return job, tuple(o for o in overrides if "${" not in o)


def load_tasks(project_dir: Path, job: str) -> list[Task]:
    """Tasks of bundle job ``job`` in a valid execution order."""
    tasks: dict[str, Task] = {}
    for path in sorted((project_dir / "resources").glob("*.yml")):
        jobs = ((yaml.safe_load(path.read_text()) or {}).get("resources") or {}).get("jobs") or {}
        if job not in jobs:
            continue
        for t in jobs[job].get("tasks") or []:
            name, overrides = _task_job(t, str(path))
            deps = tuple(d["task_key"] for d in t.get("depends_on") or [])
            tasks[t["task_key"]] = Task(t["task_key"], name, deps, overrides)
    if not tasks:
        raise ConfigError(f"no bundle job {job!r} in {project_dir / 'resources'}")
    for t in tasks.values():
        unknown = [d for d in t.depends_on if d not in tasks]
        if unknown:
            raise ConfigError(f"task {t.key!r} depends on unknown task(s) {unknown}")
    try:
        order = list(TopologicalSorter({k: t.depends_on for k, t in tasks.items()}).static_order())
    except CycleError as exc:
        raise ConfigError(f"bundle job {job!r} has a dependency cycle: {exc.args[1]}") from None
    return [tasks[k] for k in order]


def run_workflow(spark: SparkSession, cfg: Config, job: str = "pricing_training", from_task: str | None = None) -> dict:
    from pricing.cli import run_job

    tasks = load_tasks(Path(cfg.project_dir), job)
    keys = [t.key for t in tasks]
    if from_task is not None and from_task not in keys:
        raise ConfigError(f"--from {from_task!r}: no such task; tasks are {', '.join(keys)}")
    start = keys.index(from_task) if from_task else 0
    timings: dict[str, float] = {}
    total = len(tasks) - start
    for i, task in enumerate(tasks[start:], start=1):
        print(f"\n[{i}/{total}] {task.key} ...", flush=True)
        t0 = time.time()
        task_cfg = cfg.with_overrides(list(task.overrides))
        try:
            run_job(task.job, spark, task_cfg)
        except PricingError as exc:
            left = [t.key for t in tasks[start + i:]]
            raise type(exc)(f"task {task.key!r} failed: {exc}\n  not run: {', '.join(left) or 'none'}"
                            f"\n  resume with: pricing run --from {task.key}") from None
        timings[task.key] = round(time.time() - t0, 1)
    print("\nworkflow done: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
          + f" (total {sum(timings.values()):.1f}s)", flush=True)
    return timings
