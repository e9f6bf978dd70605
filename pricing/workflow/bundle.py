"""The Databricks Asset Bundle (``databricks.yml`` and the ``resources/*.yml`` it includes), loaded and checked
offline, before anything is deployed or run.

:func:`problems` reports, each with the file and the key or task it concerns:

- every job against the official models of the bundle schema (``databricks.bundles.jobs.Job``, ``Task``, ...
  from the ``databricks-bundles`` package): unknown keys (``depend_on``, ``max_retires``), wrong types, invalid
  enum values (``data_security_mode``, ``pause_status``);
- the task graph: duplicate task keys, ``depends_on`` naming an unknown task, cycles, unknown
  ``job_cluster_key``, and ``{{tasks.<task>.values.<key>}}`` references to a task that is not upstream of the
  task using it (the Jobs service would fail that task at run time);
- variables: ``${var.X}`` naming an undeclared variable, a target setting an undeclared one, a variable left
  without a value in some target, unknown top-level, target and variable keys, a target ``mode`` other than
  ``development`` / ``production``.

The local runner (:mod:`pricing.workflow.dag`) reads the task graph from here, so a bundle that would not deploy does not
run locally either.
"""

from __future__ import annotations

import copy
import difflib
import re
import typing
from collections.abc import Iterator
from dataclasses import MISSING, dataclass, fields, is_dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import yaml

from pricing.platform.errors import ConfigError, SetupError
from pricing.workflow.task_values import references

BUNDLE_FILE = "databricks.yml"

# Keys of the bundle configuration outside ``resources`` (Databricks' "bundle configuration" reference).
TOP_LEVEL_KEYS = frozenset({"bundle", "include", "scripts", "sync", "variables", "workspace", "artifacts",
                            "resources", "targets", "permissions", "presets", "run_as", "experimental", "python"})
TARGET_KEYS = frozenset({"artifacts", "bundle", "cluster_id", "compute_id", "default", "git", "mode",
                         "permissions", "presets", "resources", "run_as", "sync", "variables", "workspace"})
VARIABLE_KEYS = frozenset({"description", "default", "type", "lookup"})
TARGET_MODES = ("development", "production")
REFERENCE_ROOTS = frozenset({"var", "bundle", "workspace", "resources", "artifacts"})

# ``$${x}`` is an escaped, literal ``${x}``; the CLI's own pattern skips it the same way.
_SUBSTITUTION = re.compile(r"(?<!\$)\$\{([^}]*)\}")


@dataclass(frozen=True)
class BundleJob:
    key: str
    source: Path
    spec: dict[str, Any]

    @property
    def tasks(self) -> list[dict[str, Any]]:
        return [t for t in self.spec.get("tasks") or [] if isinstance(t, dict)]


@dataclass(frozen=True)
class Bundle:
    root: Path
    config: dict[str, Any]
    """``databricks.yml`` as parsed."""
    files: dict[Path, dict[str, Any]]
    """Every file of the bundle (``databricks.yml`` first, then the included ones) as parsed."""
    jobs: dict[str, BundleJob]

    @property
    def variables(self) -> dict[str, Any]:
        return self.config.get("variables") or {}

    @property
    def targets(self) -> dict[str, Any]:
        return self.config.get("targets") or {}

    def target_variables(self, target: str) -> dict[str, Any]:
        """Every variable's value in ``target``: the target's own, else the declared default."""
        if target not in self.targets:
            raise ConfigError(f"no target {target!r} in {self.root / BUNDLE_FILE}; targets are "
                              f"{', '.join(sorted(self.targets))}")
        values = {k: v.get("default") for k, v in self.variables.items() if isinstance(v, dict)}
        return values | dict((self.targets[target] or {}).get("variables") or {})

    def job(self, key: str) -> BundleJob:
        if key not in self.jobs:
            raise ConfigError(f"no bundle job {key!r} in {self.root / BUNDLE_FILE} and the files it includes; "
                              f"jobs are: {', '.join(sorted(self.jobs)) or 'none'}")
        return self.jobs[key]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def load_bundle(project_dir: Path) -> Bundle:
    """Parse ``databricks.yml`` and every file its ``include`` globs match (relative to the bundle root)."""
    root = project_dir.resolve()
    main = root / BUNDLE_FILE
    if not main.exists():
        raise ConfigError(f"{main} not found: the bundle is the workflow's one source of truth")
    config = _read(main)
    files = {main: config}
    for pattern in config.get("include") or []:
        matched = sorted(root.glob(pattern))
        if not matched:
            raise ConfigError(f"{main}: include {pattern!r} matches no file")
        for path in matched:
            files.setdefault(path, _read(path))
    jobs: dict[str, BundleJob] = {}
    for path, data in files.items():
        for key, spec in (((data.get("resources") or {}).get("jobs")) or {}).items():
            if key in jobs:
                raise ConfigError(f"{path}: job {key!r} is also defined in {jobs[key].source}")
            if not isinstance(spec, dict):
                raise ConfigError(f"{path}: job {key!r} must be a mapping")
            jobs[key] = BundleJob(key, path, spec)
    return Bundle(root, config, files, jobs)


# ---- the official models -------------------------------------------------------------------------------------
def _job_model() -> type:
    try:
        from databricks.bundles.jobs import Job
    except ImportError:
        raise SetupError("the bundle is checked against the official models of the `databricks-bundles` package, "
                         "which is not installed: run `make setup`") from None
    return Job


def _inner_model(tp: Any) -> type | None:
    """The model class inside a field's type (``VariableOrList[Task]`` -> ``Task``), if any."""
    from databricks.bundles.core import Variable

    if isinstance(tp, type) and is_dataclass(tp) and tp is not Variable:
        return tp
    if typing.get_origin(tp) is Variable:
        return None
    for arg in typing.get_args(tp):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _accepts(cls: Any, value: Any) -> Exception | None:
    try:
        cls.from_dict(copy.deepcopy(value))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return exc
    return None


def _model_problems(cls: Any, value: Any, path: str) -> list[str]:
    """Why ``cls.from_dict(value)`` fails, located down to the key (empty when it does not fail)."""
    error = _accepts(cls, value)
    if error is None:
        return []
    if not isinstance(value, dict):
        return [f"{path}: expected a mapping for {cls.__name__}, got {value!r}"]
    names = [f.name for f in fields(cls)]
    unknown = [k for k in value if k not in names]
    if unknown:
        out = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(f"{path}: unknown key {k!r} for {cls.__name__}{hint}")
        return out
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    missing = [r for r in required if r not in value]
    if missing:
        return [f"{path}: missing required key(s) {', '.join(missing)} for {cls.__name__}"]
    hints = typing.get_type_hints(cls)
    out = []
    for key, sub in value.items():
        model = _inner_model(hints[key])
        where = f"{path}.{key}"
        if model is not None and isinstance(sub, list):
            for i, item in enumerate(sub):
                # Name list items by their key where they have one: tasks[train] reads better than tasks[4].
                label = (item.get("task_key") or item.get("job_cluster_key") or i) if isinstance(item, dict) else i
                out.extend(_model_problems(model, item, f"{where}[{label}]"))
        elif model is not None and isinstance(sub, dict) and _is_dict_of_models(hints[key]):
            for name, item in sub.items():
                out.extend(_model_problems(model, item, f"{where}.{name}"))
        elif model is not None and isinstance(sub, dict):
            out.extend(_model_problems(model, sub, where))
        else:
            # A scalar field: try it alone (with the required keys) to see whether it is the culprit.
            alone = {r: value[r] for r in required if r != key} | {key: sub}
            exc = _accepts(cls, alone)
            if exc is not None:
                out.append(f"{where}: {exc}")
    return out or [f"{path}: {error}"]


def _is_dict_of_models(tp: Any) -> bool:
    if typing.get_origin(tp) is dict:
        return True
    return any(_is_dict_of_models(a) for a in typing.get_args(tp))


# ---- structure -----------------------------------------------------------------------------------------------
def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def upstream(tasks: list[dict[str, Any]]) -> dict[str, set[str]]:
    """task key -> every task it depends on, directly or transitively (unknown keys ignored)."""
    direct = {t.get("task_key"): [d.get("task_key") for d in t.get("depends_on") or [] if isinstance(d, dict)]
              for t in tasks}
    out: dict[str, set[str]] = {}

    def visit(key: str, seen: frozenset[str]) -> set[str]:
        if key in out:
            return out[key]
        acc: set[str] = set()
        for d in direct.get(key, []):
            if d in direct and d not in seen:
                acc |= {d} | visit(d, seen | {d})
        out[key] = acc
        return acc

    for key in direct:
        visit(key, frozenset({key}))
    return out


def _graph_problems(job: BundleJob) -> list[str]:
    where = f"{job.source}: job {job.key!r}"
    out: list[str] = []
    tasks = job.tasks
    keys = [t.get("task_key") for t in tasks]
    for dup in sorted({k for k in keys if keys.count(k) > 1}, key=str):
        out.append(f"{where}: task key {dup!r} is used more than once")
    known = set(keys)
    clusters = {c.get("job_cluster_key") for c in job.spec.get("job_clusters") or [] if isinstance(c, dict)}
    for t in tasks:
        key = t.get("task_key")
        for d in t.get("depends_on") or []:
            dep = d.get("task_key") if isinstance(d, dict) else d
            if dep not in known:
                out.append(f"{where}: task {key!r} depends on unknown task {dep!r}; tasks are "
                           f"{', '.join(str(k) for k in keys)}")
        cluster = t.get("job_cluster_key")
        if cluster is not None and cluster not in clusters:
            out.append(f"{where}: task {key!r} uses unknown job_cluster_key {cluster!r}; job clusters are "
                       f"{', '.join(sorted(str(c) for c in clusters)) or 'none'}")
    graph = {t.get("task_key"): [d.get("task_key") for d in t.get("depends_on") or []
                                 if isinstance(d, dict) and d.get("task_key") in known] for t in tasks}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        out.append(f"{where}: the tasks form a dependency cycle: {' -> '.join(map(str, exc.args[1]))}")
        return out
    ups = upstream(tasks)
    for t in tasks:
        key = t.get("task_key")
        for text in _strings(t):
            for ref in references(text):
                if ref.task not in known:
                    out.append(f"{where}: task {key!r} references {ref}, but there is no task {ref.task!r}")
                elif ref.task not in ups.get(key, set()):
                    out.append(f"{where}: task {key!r} references {ref}, but {ref.task!r} is not upstream of "
                               f"{key!r}: add it to depends_on (directly or through another task)")
    return out


def _variable_problems(bundle: Bundle) -> list[str]:
    main = bundle.root / BUNDLE_FILE
    out: list[str] = []
    declared = bundle.variables
    if not isinstance(declared, dict):
        return [f"{main}: variables must be a mapping"]
    for name, spec in declared.items():
        if not isinstance(spec, dict):
            out.append(f"{main}: variable {name!r} must be a mapping (description, default, ...)")
            continue
        for k in spec:
            if k not in VARIABLE_KEYS:
                out.append(f"{main}: variable {name!r}: unknown key {k!r}; keys are {', '.join(sorted(VARIABLE_KEYS))}")
    for path, data in bundle.files.items():
        for text in _strings(data):
            for m in _SUBSTITUTION.finditer(text):
                ref = m.group(1)
                root, _, rest = ref.partition(".")
                if root not in REFERENCE_ROOTS:
                    out.append(f"{path}: ${{{ref}}} is not a bundle reference (roots: {', '.join(sorted(REFERENCE_ROOTS))})")
                elif root == "var" and rest.split(".")[0].split("[")[0] not in declared:
                    out.append(f"{path}: ${{{ref}}} names undeclared variable {rest!r}; declared: "
                               f"{', '.join(sorted(declared)) or 'none'}")
    for name, target in bundle.targets.items():
        if not isinstance(target, dict):
            out.append(f"{main}: target {name!r} must be a mapping")
            continue
        for k in target:
            if k not in TARGET_KEYS:
                out.append(f"{main}: target {name!r}: unknown key {k!r}")
        if "mode" in target and target["mode"] not in TARGET_MODES:
            out.append(f"{main}: target {name!r}: mode {target['mode']!r} is not one of {', '.join(TARGET_MODES)}")
        values = target.get("variables") or {}
        for var in values:
            if var not in declared:
                out.append(f"{main}: target {name!r} sets undeclared variable {var!r}")
        for var, spec in declared.items():
            if isinstance(spec, dict) and "default" not in spec and "lookup" not in spec and var not in values:
                out.append(f"{main}: variable {var!r} has no default and target {name!r} does not set it")
    if sum(1 for t in bundle.targets.values() if isinstance(t, dict) and t.get("default")) > 1:
        out.append(f"{main}: more than one target is marked default")
    return out


def problems(bundle: Bundle) -> list[str]:
    """Everything wrong with ``bundle``; empty when it is valid."""
    main = bundle.root / BUNDLE_FILE
    out: list[str] = []
    for path, data in bundle.files.items():
        for k in data:
            if k not in TOP_LEVEL_KEYS:
                close = difflib.get_close_matches(str(k), sorted(TOP_LEVEL_KEYS), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                out.append(f"{path}: unknown top-level key {k!r}{hint}")
    if not (bundle.config.get("bundle") or {}).get("name"):
        out.append(f"{main}: bundle.name is required")
    out.extend(_variable_problems(bundle))
    job_model = _job_model()
    for job in bundle.jobs.values():
        out.extend(f"{job.source}: {p}" for p in _model_problems(job_model, job.spec, f"resources.jobs.{job.key}"))
        out.extend(_graph_problems(job))
    # A variable used in many places is reported once per file.
    return list(dict.fromkeys(out))


def validate(bundle: Bundle) -> Bundle:
    """``bundle``, or a :class:`ConfigError` listing every problem."""
    found = problems(bundle)
    if found:
        raise ConfigError(f"the bundle in {bundle.root} has {len(found)} problem(s):\n"
                          + "\n".join(f"  - {p}" for p in found))
    return bundle


def load_validated(project_dir: Path) -> Bundle:
    """:func:`load_bundle` then :func:`validate`."""
    return validate(load_bundle(project_dir))
