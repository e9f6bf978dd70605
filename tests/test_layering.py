"""The layering rules, enforced: workflow -> jobs -> library -> platform, one way.

- no job imports another job, and only ``pricing.workflow`` reaches into ``jobs/``;
- ``features/`` uses nothing but platform helpers (and itself);
- the simulated world (``pricing.world``) is read only by the generate job, by the world itself and by evaluation
  code: the models, features and matching never read it;
- no import cycles between modules, counting imports inside functions too, so none of those can be a cycle dodged.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pricing", "jobs", "features")

WORLD_READERS = {
    "jobs.generate",
    "pricing.optimisation.evaluation",  # policies judged against the simulator's true demand
    "pricing.experiment.simulate",  # experiment outcomes drawn from the simulator's true demand
}
"""Modules outside ``pricing.world`` allowed to import it: the generate job and evaluation code."""


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in the file), resolved to modules, not names."""
    files = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] not in PACKAGES:
                    continue
                # `from pkg import module` names a module; `from module import name` names the module itself
                target = name if name in files else name.rpartition(".")[0] if name.rpartition(".")[0] in files \
                    else None
                if target and target != mod and not mod.startswith(target + ".") and target not in PACKAGES:
                    deps.add(target)
        graph[mod] = deps
    return graph


GRAPH = _imports()


def test_the_graph_sees_the_project() -> None:
    assert {"jobs.train", "pricing.workflow.cli", "features.training_set", "pricing.world.simulator"} <= set(GRAPH)
    assert "pricing.platform.config" in GRAPH["jobs.train"]


def test_no_job_imports_another_job() -> None:
    bad = {m: sorted(d for d in deps if d.startswith("jobs.")) for m, deps in GRAPH.items() if m.startswith("jobs.")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_only_the_workflow_reaches_into_jobs() -> None:
    bad = {m: sorted(d for d in deps if d.startswith("jobs")) for m, deps in GRAPH.items()
           if not m.startswith(("jobs", "pricing.workflow"))}
    assert {m: d for m, d in bad.items() if d} == {}


def test_features_use_only_platform_helpers() -> None:
    bad = {m: sorted(d for d in deps if not d.startswith(("features.", "pricing.platform.")))
           for m, deps in GRAPH.items() if m.startswith("features")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_the_world_is_read_only_by_generate_and_evaluation() -> None:
    readers = {m for m, deps in GRAPH.items() if any(d.startswith("pricing.world") for d in deps)
               and not m.startswith("pricing.world")}
    assert readers <= WORLD_READERS, f"modules reading the simulated world: {sorted(readers - WORLD_READERS)}"


def test_the_platform_depends_on_nothing_above_it() -> None:
    bad = {m: sorted(d for d in deps if not d.startswith("pricing.platform"))
           for m, deps in GRAPH.items() if m.startswith("pricing.platform")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_there_are_no_import_cycles() -> None:
    try:
        TopologicalSorter(GRAPH).prepare()
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_a_cycle_would_be_caught() -> None:
    with pytest.raises(CycleError):
        TopologicalSorter({**GRAPH, "pricing.platform.config": {"jobs.train"}}).prepare()
