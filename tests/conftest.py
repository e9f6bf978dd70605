"""One SparkSession per test process (UI off, few shuffle partitions), a small-config factory, and how the tests
are shared between ``make test``'s two processes (pytest-xdist)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

import __main__
from pricing.platform.config import Config, load_config
from pricing.platform.spark import get_spark

if os.environ.get("PYTEST_XDIST_WORKER") and not hasattr(__main__, "__file__"):
    # An xdist worker's __main__ (execnet's `python -c`) has no __file__, and pyspark.sql.connect then takes the
    # process for a doctest run and exits it (SystemExit 0) when grpc is absent: Great Expectations imports it.
    # Give it the file a one-process run has, pytest's own script.
    __main__.__file__ = str(Path(sys.executable).with_name("pytest"))

SHARED = {
    "workflow": ("tests/jobs/test_recommend.py", "tests/jobs/test_train_promote.py", "tests/price_model/test_pins.py",
                 "tests/test_end_to_end.py"),
    "wheel": ("tests/workflow/test_deployed.py", "tests/workflow/test_wheel.py"),
}
"""Session fixtures worth building once, and the modules that request them: they run in one process."""
LONGEST_FIRST = ("wheel", "tests/reliability", "workflow", "tests/jobs/test_generate_ingest.py",
                 "tests/jobs/test_encouragement.py", "tests/test_simulator.py", "tests/experiment/test_job.py")
"""The longest groups, measured on a fresh clone (2026-12-04: about 1,120, 950, 520, 350, 190, 130, 90 s), start
first, so that no long one is left to run alone at the end; the rest follow in file order."""


def work_unit(nodeid: str) -> str:
    """The unit of work a test (by node id) belongs to, its module's: ``make test``'s processes take whole units."""
    module = nodeid.split("::")[0]
    for group, modules in SHARED.items():
        if module in modules:
            return group
    if module.startswith("tests/reliability/"):
        return "tests/reliability"  # one package fixture (`ref`) and file order (the crash tests resume each other)
    return module


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``make test``'s scheduler (pytest-xdist): xdist's scope scheduling, with :func:`work_unit` as the scope
    and the units in collection order (longest first, below).  (xdist's own ``xdist_group`` marks do not work
    with pytest 9: they rewrite a node id attribute pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False
    return ModuleGroups(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest groups first (a stable sort: within a group, and among the rest, file order stays); and a
    module that requests a shared fixture without being listed with it fails collection."""
    for item in items:
        module = item.nodeid.split("::")[0]
        for group, modules in SHARED.items():
            if group in getattr(item, "fixturenames", ()) and module not in modules:
                raise pytest.UsageError(f"{module} uses the `{group}` fixture: add it to SHARED[{group!r}] in "
                                        "tests/conftest.py, so that it runs in the process that builds it")
    rank = {group: i for i, group in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))


SMALL = [
    "simulator.n_listings=12000", "simulator.n_sellers=1500", "simulator.n_brands=300", "simulator.days=200",
    "simulator.partitions=2", "train.booster.n_estimators=60", "train.booster.max_depth=6", "spark.shuffle_partitions=2",
    "train.test_days=21", "train.validation_days=21", "train.calibration_days=14", "train.ablation=true",
]


@pytest.fixture(scope="session")
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pricing-state")


@pytest.fixture(scope="session")
def cfg(state_root: Path) -> Config:
    return load_config("local", [*SMALL, f"storage.root={state_root}"])


@pytest.fixture(scope="session")
def spark(cfg: Config) -> SparkSession:
    session = get_spark(cfg, app_name="pricing-tests", testing=True)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def workflow(spark: SparkSession, cfg: Config) -> dict[str, float]:
    """The whole local workflow, once per test run, on the small simulated marketplace: what the
    end-to-end, training and scoring tests read (each task's seconds)."""
    from pricing.workflow.dag import run_workflow

    return run_workflow(spark, cfg)
