"""One SparkSession for the whole test run (UI off, few shuffle partitions), and a small-config factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from pricing.platform.config import Config, load_config
from pricing.platform.spark import get_spark

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

