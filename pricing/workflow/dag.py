"""Run a bundle job's task graph locally: read ``databricks.yml`` and ``resources/*.yml`` (checked by
:mod:`pricing.workflow.bundle`), order by ``depends_on``, run each task's job function in this process.  The bundle is the
only copy of the graph.

Task values travel as on Databricks: each task's :attr:`JobSummary.task_values` are kept, and a downstream task's
``--set key={{tasks.<task>.values.<key>}}`` is filled in just before it runs.  They are also saved after every task
to ``<storage.root>/task_values/<job>.json``, so ``pricing run --from TASK`` can use the values of the tasks
before TASK from the run that ran them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from pricing.platform.config import Config
from pricing.platform.errors import ConfigError, PricingError
from pricing.platform.summary import JobSummary
from pricing.workflow.bundle import load_validated
from pricing.workflow.runner import run_job
from pricing.workflow.task_values import TaskValue, check_values, references, resolve

JobRunner = Callable[[str, SparkSession, Config], JobSummary]


@dataclass(frozen=True)
class Task:
    key: str
    job: str
    depends_on: tuple[str, ...]
    overrides: tuple[str, ...]
    """The ``--set`` overrides that mean something locally: those with a bundle substitution (``${var.x}``) are
    dropped, ``{{tasks.<task>.values.<key>}}`` references are kept and resolved just before the task runs."""

    @property
    def needs(self) -> set[str]:
        """Tasks whose values this task's overrides reference."""
        return {ref.task for o in self.overrides for ref in references(o)}


def _task_job(task: dict[str, Any], where: str) -> tuple[str, tuple[str, ...]]:
    params = [str(p) for p in (task.get("python_wheel_task") or {}).get("parameters") or []]
    overrides, job, i = [], None, 0
    while i < len(params):
        if params[i] in ("--env", "--set"):
            if i + 1 >= len(params):
                raise ConfigError(f"{where}: task {task.get('task_key')!r}: {params[i]} has no value")
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
    """Tasks of bundle job ``job`` in a valid execution order, after checking the whole bundle."""
    bundle_job = load_validated(project_dir).job(job)
    tasks: dict[str, Task] = {}
    for t in bundle_job.tasks:
        name, overrides = _task_job(t, str(bundle_job.source))
        deps = tuple(d["task_key"] for d in t.get("depends_on") or [])
        tasks[t["task_key"]] = Task(t["task_key"], name, deps, overrides)
    if not tasks:
        raise ConfigError(f"bundle job {job!r} in {bundle_job.source} has no tasks")
    order = TopologicalSorter({k: t.depends_on for k, t in tasks.items()}).static_order()
    return [tasks[k] for k in order]


# ---- saved task values -----------------------------------------------------------------------------------------
def values_path(cfg: Config, job: str) -> Path:
    return cfg.state_path("task_values") / f"{job}.json"


def save_values(path: Path, job: str, values: Mapping[str, Mapping[str, TaskValue]]) -> None:
    """Write atomically: a crash mid-write leaves the previous file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"job": job, "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
           "tasks": {k: dict(v) for k, v in values.items()}}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_values(path: Path, job: str) -> dict[str, dict[str, TaskValue]]:
    try:
        doc = json.loads(path.read_text())
        if doc.get("job") != job:
            raise ValueError(f"it holds job {doc.get('job')!r}")
        return {str(k): check_values(v) for k, v in doc["tasks"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, PricingError) as exc:
        raise ConfigError(f"saved task values {path} are unreadable ({exc}); rerun the whole job "
                          f"(pricing run --job {job})") from None


# ---- the run -----------------------------------------------------------------------------------------------------
def run_workflow(spark: SparkSession, cfg: Config, job: str = "pricing_training", from_task: str | None = None,
                 runner: JobRunner | None = None, report: Path | None = None) -> dict[str, float]:
    """Run bundle job ``job`` (from ``from_task`` on) and return each task's seconds.

    ``runner`` runs one job (default :func:`pricing.workflow.runner.run_job`); tests pass one that records what it is given.
    ``report``: a JSON file rewritten after every task with each finished task's start time, seconds and summary
    (what ``bench/run.py`` reads).
    """
    run = runner or run_job
    tasks = load_tasks(Path(cfg.project_dir), job)
    keys = [t.key for t in tasks]
    if from_task is not None and from_task not in keys:
        raise ConfigError(f"--from {from_task!r}: no such task in {job}; tasks are {', '.join(keys)}")
    start = keys.index(from_task) if from_task else 0
    store = values_path(cfg, job)
    values: dict[str, dict[str, TaskValue]] = {}
    if start:
        earlier = set(keys[:start])
        needed = sorted({n for t in tasks[start:] for n in t.needs} & earlier)
        if store.exists():
            # Tasks from `from_task` on run again and publish afresh; earlier ones keep their saved values.
            values = {k: v for k, v in load_values(store, job).items() if k in earlier}
        elif needed:
            raise ConfigError(f"--from {from_task}: tasks from {from_task} on use task values of "
                              f"{', '.join(needed)}, which ran before it, but {store} does not exist. "
                              f"Run the whole job first: pricing run --job {job}")
    timings: dict[str, float] = {}
    done: dict[str, Any] = {}
    total = len(tasks) - start
    for i, task in enumerate(tasks[start:], start=1):
        print(f"\n[{i}/{total}] {task.key} ...", flush=True)
        t0 = time.time()
        try:
            try:
                overrides = [resolve(o, values, known_tasks=keys) for o in task.overrides]
            except ConfigError as exc:
                saved = f" (values of tasks before --from {from_task} come from {store})" if start else ""
                raise ConfigError(f"{exc}{saved}") from None
            summary = run(task.job, spark, cfg.with_overrides(overrides))
            values[task.key] = check_values(summary.task_values)
        except PricingError as exc:
            left = [t.key for t in tasks[start + i:]]
            raise type(exc)(f"task {task.key!r} failed: {exc}\n  not run: {', '.join(left) or 'none'}"
                            f"\n  resume with: pricing run --job {job} --from {task.key}") from None
        save_values(store, job, values)
        timings[task.key] = round(time.time() - t0, 1)
        if report is not None:
            done[task.key] = {"started": t0, "seconds": time.time() - t0, "summary": summary.as_dict()}
            report.write_text(json.dumps({"job": job, "tasks": done}, indent=2, default=str))
    print("\nworkflow done: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
          + f" (total {sum(timings.values()):.1f}s)", flush=True)
    return timings
