"""Task values: what one task of a bundle job hands to the tasks after it (e.g. train's ``model_version``).

On Databricks a job publishes its :attr:`JobSummary.task_values` with ``dbutils.jobs.taskValues.set`` and a
downstream task receives them through a dynamic value reference in its parameters,
``{{tasks.<task_key>.values.<key>}}``, which the Jobs service substitutes before the task starts.  Locally,
:func:`publish` only checks the values (so a value Databricks would refuse fails here too) and the local runner
(:mod:`pricing.workflow.dag`) substitutes the references itself with :func:`resolve`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pricing.platform.errors import ConfigError

TaskValue = str | int
"""What our jobs publish: small scalars (a model version, a run id)."""

MAX_VALUE_BYTES = 48 * 1024
"""Databricks refuses a task value whose JSON form is larger than this."""

_REF = re.compile(r"\{\{\s*tasks\.([A-Za-z0-9_-]+)\.values\.([A-Za-z0-9_-]+)\s*\}\}")
_ANY_REF = re.compile(r"\{\{(.*?)\}\}")


@dataclass(frozen=True)
class Reference:
    """One ``{{tasks.<task>.values.<key>}}`` in a parameter."""

    task: str
    key: str

    def __str__(self) -> str:
        return f"{{{{tasks.{self.task}.values.{self.key}}}}}"


def references(param: str) -> Iterator[Reference]:
    """The task-value references in ``param``, in order."""
    for m in _REF.finditer(param):
        yield Reference(m.group(1), m.group(2))


def check_values(values: Mapping[str, Any]) -> dict[str, TaskValue]:
    """``values`` as Databricks would accept them, or a :class:`ConfigError` naming the bad key."""
    out: dict[str, TaskValue] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", key):
            raise ConfigError(f"task value key {key!r} must be letters, digits, _ or - "
                              "(it is referenced as {{tasks.<task>.values.<key>}})")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(f"task value {key!r} = {value!r}: only str and int values are published")
        if len(json.dumps(value).encode()) > MAX_VALUE_BYTES:
            raise ConfigError(f"task value {key!r} is larger than Databricks' limit of 48 KiB (its JSON form)")
        out[key] = value
    return out


def _dbutils() -> Any:
    # Imported only on a Databricks cluster: neither module is importable (or meaningful) locally.
    try:
        from pyspark.dbutils import DBUtils
        from pyspark.sql import SparkSession

        return DBUtils(SparkSession.builder.getOrCreate())
    except ImportError:
        from databricks.sdk.runtime import dbutils

        return dbutils


def publish(values: Mapping[str, Any]) -> None:
    """Publish ``values`` for downstream tasks: ``dbutils.jobs.taskValues.set`` on Databricks, a check locally."""
    checked = check_values(values)
    if not checked or "DATABRICKS_RUNTIME_VERSION" not in os.environ:
        return
    task_values = _dbutils().jobs.taskValues
    for key, value in checked.items():
        task_values.set(key=key, value=value)


def resolve(param: str, values_by_task: Mapping[str, Mapping[str, TaskValue]],
            known_tasks: Collection[str] | None = None) -> str:
    """``param`` with every ``{{tasks.<task>.values.<key>}}`` replaced by that task's published value.

    ``values_by_task`` holds the values of the tasks that have run; ``known_tasks`` (optional) every task of the
    job, to tell a misspelt task from one that has not run yet.  Any reference that cannot be resolved, and any
    other ``{{...}}`` (Databricks-only, e.g. ``{{job.run_id}}``), raises a :class:`ConfigError` naming it.
    """

    def value(m: re.Match[str]) -> str:
        ref = Reference(m.group(1), m.group(2))
        if ref.task not in values_by_task:
            if known_tasks is not None and ref.task not in known_tasks:
                raise ConfigError(f"{param!r}: {ref} names unknown task {ref.task!r}; "
                                  f"tasks are {', '.join(sorted(known_tasks))}")
            raise ConfigError(f"{param!r}: {ref} needs task {ref.task!r}, which has not run yet "
                              "(so it has published no values)")
        published = values_by_task[ref.task]
        if ref.key not in published:
            raise ConfigError(f"{param!r}: task {ref.task!r} did not publish {ref.key!r} "
                              f"(it published: {', '.join(sorted(published)) or 'nothing'})")
        return str(published[ref.key])

    other = _ANY_REF.search(_REF.sub("", param))
    if other:
        raise ConfigError(f"{param!r}: dynamic value reference {other.group(0)} cannot be resolved locally "
                          "(only {{tasks.<task>.values.<key>}} can)")
    return _REF.sub(value, param)
