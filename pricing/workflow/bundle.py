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
  ``development`` / ``production``;
- the Unity Catalog objects and the experiment (``resources.schemas``, ``volumes``, ``registered_models``,
  ``experiments``) against their official models too (``databricks.bundles.schemas.Schema``, ``volumes.Volume``,
  ``registered_models.RegisteredModel``, ``experiments.MlflowExperiment``), and a resource type outside
  :data:`RESOURCE_MODELS` (``volume`` for ``volumes``) as unknown;
- ``run_as`` and ``permissions`` (top level and per target) against the allow-lists :data:`RUN_AS_KEYS`,
  :data:`PERMISSION_KEYS` and :data:`PERMISSION_LEVELS` (the package has no model for the bundle-level ones).

:func:`target_resources` resolves a target's resources (variables, ``${bundle.*}``, references between
resources), as ``databricks bundle validate -t <target>`` would show them.

The local runner (:mod:`pricing.workflow.dag`) reads the task graph from here, so a bundle that would not deploy does not
run locally either.
"""

from __future__ import annotations

import copy
import difflib
import importlib
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
RESOURCE_MODELS: dict[str, tuple[str, str]] = {
    "jobs": ("databricks.bundles.jobs", "Job"),
    "schemas": ("databricks.bundles.schemas", "Schema"),
    "volumes": ("databricks.bundles.volumes", "Volume"),
    "registered_models": ("databricks.bundles.registered_models", "RegisteredModel"),
    "experiments": ("databricks.bundles.experiments", "MlflowExperiment"),
}
"""The resource types this bundle declares, each checked against its official ``databricks-bundles`` model
(module, class).  Any other type under ``resources`` is reported: a typo (``volume``), or a type to add here."""
RUN_AS_KEYS = frozenset({"user_name", "service_principal_name"})
"""``run_as``: exactly one of these (Databricks' bundle reference; ``databricks-bundles`` has no model for it)."""
PERMISSION_KEYS = frozenset({"level", "user_name", "group_name", "service_principal_name"})
"""A bundle-level ``permissions`` entry: ``level`` and exactly one principal key (no package model either)."""
PERMISSION_LEVELS = ("CAN_VIEW", "CAN_RUN", "CAN_MANAGE")
"""Levels a bundle-level permission may grant (applied to every job, pipeline, experiment and model)."""

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

    def resources(self, kind: str) -> dict[str, tuple[Path, Any]]:
        """Every top-level ``resources.<kind>`` entry of the bundle's files: key -> (file, spec as written)."""
        out: dict[str, tuple[Path, Any]] = {}
        for path, data in self.files.items():
            section = data.get("resources")
            if isinstance(section, dict) and isinstance(section.get(kind), dict):
                for key, spec in section[kind].items():
                    out.setdefault(str(key), (path, spec))
        return out


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
def _resource_model(kind: str) -> type:
    """The official model of resource type ``kind`` (a key of :data:`RESOURCE_MODELS`)."""
    module, name = RESOURCE_MODELS[kind]
    try:
        model: type = getattr(importlib.import_module(module), name)
    except ImportError:
        raise SetupError("the bundle is checked against the official models of the `databricks-bundles` package, "
                         "which is not installed: run `make setup`") from None
    return model


def _job_model() -> type:
    return _resource_model("jobs")


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
                label = (item.get("task_key") or item.get("job_cluster_key") or item.get("principal") or i) \
                    if isinstance(item, dict) else i
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


def upstream(tasks: list[dict[str, Any]]) -> dict[str | None, set[str | None]]:
    """task key -> every task it depends on, directly or transitively (unknown keys ignored; a missing
    ``task_key`` is None)."""
    direct: dict[str | None, list[str | None]] = {
        t.get("task_key"): [d.get("task_key") for d in t.get("depends_on") or [] if isinstance(d, dict)]
        for t in tasks}
    out: dict[str | None, set[str | None]] = {}

    def visit(key: str | None, seen: frozenset[str | None]) -> set[str | None]:
        if key in out:
            return out[key]
        acc: set[str | None] = set()
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


def _resource_problems(bundle: Bundle) -> list[str]:
    """Every resource other than a job against its official model; unknown resource types; duplicate keys."""
    out: list[str] = []
    seen: dict[tuple[str, str], Path] = {}
    for path, data in bundle.files.items():
        section = data.get("resources")
        if section is None:
            continue
        if not isinstance(section, dict):
            out.append(f"{path}: resources must be a mapping of resource types")
            continue
        for kind, entries in section.items():
            if kind not in RESOURCE_MODELS:
                close = difflib.get_close_matches(str(kind), sorted(RESOURCE_MODELS), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                out.append(f"{path}: unknown resource type {kind!r}{hint}; the bundle checker knows "
                           f"{', '.join(sorted(RESOURCE_MODELS))} (pricing.workflow.bundle.RESOURCE_MODELS)")
                continue
            if kind == "jobs":
                continue  # checked with their task graphs
            if not isinstance(entries, dict):
                out.append(f"{path}: resources.{kind} must be a mapping of resource keys")
                continue
            model = _resource_model(kind)
            for key, spec in entries.items():
                if (kind, key) in seen:
                    out.append(f"{path}: {kind} {key!r} is also defined in {seen[(kind, key)]}")
                    continue
                seen[(kind, key)] = path
                out.extend(f"{path}: {p}" for p in _model_problems(model, spec, f"resources.{kind}.{key}"))
    return out


def _unknown(keys: Any, allowed: frozenset[str], where: str, what: str) -> list[str]:
    out = []
    for k in keys:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(f"{where}: unknown key {k!r} for {what}{hint}")
    return out


def _access_problems(where: str, node: dict[str, Any]) -> list[str]:
    """``run_as`` and ``permissions`` of the top level or of a target (``node``)."""
    out: list[str] = []
    run_as = node.get("run_as")
    if run_as is not None:
        if not isinstance(run_as, dict):
            out.append(f"{where}: run_as must be a mapping with one of {', '.join(sorted(RUN_AS_KEYS))}")
        else:
            out.extend(_unknown(run_as, RUN_AS_KEYS, f"{where}: run_as", "run_as"))
            if sum(1 for k in run_as if k in RUN_AS_KEYS) != 1:
                out.append(f"{where}: run_as needs exactly one of {', '.join(sorted(RUN_AS_KEYS))}")
    perms = node.get("permissions")
    if perms is not None:
        if not isinstance(perms, list):
            return [*out, f"{where}: permissions must be a list of {{level, user_name | group_name | "
                          "service_principal_name}"]
        principals = PERMISSION_KEYS - {"level"}
        for i, perm in enumerate(perms):
            at = f"{where}: permissions[{i}]"
            if not isinstance(perm, dict):
                out.append(f"{at}: expected a mapping, got {perm!r}")
                continue
            out.extend(_unknown(perm, PERMISSION_KEYS, at, "a permission"))
            if perm.get("level") not in PERMISSION_LEVELS:
                out.append(f"{at}: level {perm.get('level')!r} is not one of {', '.join(PERMISSION_LEVELS)}")
            if sum(1 for k in perm if k in principals) != 1:
                out.append(f"{at}: needs exactly one of {', '.join(sorted(principals))}")
    return out


def _merge(base: Any, over: Any) -> Any:
    """``over`` merged into ``base`` (mappings key by key; anything else replaced), as targets override."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return copy.deepcopy(over)


def target_resources(bundle: Bundle, target: str, kind: str) -> dict[str, Any]:
    """``resources.<kind>`` as ``target`` deploys them: its own ``resources`` merged over the top-level ones, then
    ``${var.*}``, ``${bundle.target}``, ``${bundle.name}`` and ``${resources.<kind>.<key>.<field>}`` substituted
    (until nothing changes).  Other references (``${workspace.*}``, ids known only once deployed) stay as written.
    Development mode's name prefixes are not applied."""
    variables = bundle.target_variables(target)
    own = (bundle.targets.get(target) or {}).get("resources") or {}
    resources = {}
    for k in RESOURCE_MODELS:
        merged = {key: copy.deepcopy(spec) for key, (_, spec) in bundle.resources(k).items()}
        for key, spec in (own.get(k) or {}).items():
            merged[key] = _merge(merged.get(key), spec)
        resources[k] = merged
    context: dict[str, Any] = {"var": variables, "resources": resources,
                               "bundle": {"target": target, "name": (bundle.config.get("bundle") or {}).get("name")}}

    def lookup(ref: str) -> Any:
        node: Any = context
        for part in ref.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, str | int | float | bool) else None

    def subst(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: subst(v) for k, v in node.items()}
        if isinstance(node, list):
            return [subst(v) for v in node]
        if not isinstance(node, str):
            return node
        whole = _SUBSTITUTION.fullmatch(node)
        if whole and lookup(whole.group(1)) is not None:
            return lookup(whole.group(1))
        return _SUBSTITUTION.sub(lambda m: str(v) if (v := lookup(m.group(1))) is not None else m.group(0), node)

    for _ in range(10):
        resolved = subst(context)
        if resolved == context:
            break
        context = resolved
    return dict(context["resources"][kind])


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
    out.extend(_resource_problems(bundle))
    out.extend(_access_problems(str(main), bundle.config))
    for name, target in bundle.targets.items():
        if isinstance(target, dict):
            out.extend(_access_problems(f"{main}: target {name!r}", target))
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
