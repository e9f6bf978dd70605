"""xgboost threads per worker: one worker on one machine trains with every core of the local master."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyspark.ml.linalg import Vectors
from pyspark.sql import DataFrame, SparkSession

from pricing.platform.config import Config, TrainConfig
from pricing.price_model.training import fit, local_cores, threads_per_worker


@pytest.mark.parametrize(("master", "cores"), [
    ("local", 1), ("local[2]", 2), ("local[8,3]", 8), ("local-cluster[2,1,1024]", None),
    ("spark://127.0.0.1:7077", None), ("yarn", None)])
def test_the_cores_of_a_local_master(master: str, cores: int | None) -> None:
    assert local_cores(master) == cores


def test_local_cores_are_shared_among_workers_and_a_cluster_keeps_its_task_cpus() -> None:
    assert threads_per_worker(TrainConfig(num_workers=1), "local[2]", 1) == 2
    assert threads_per_worker(TrainConfig(num_workers=2), "local[2]", 1) == 1
    assert threads_per_worker(TrainConfig(num_workers=3), "local[2]", 1) == 1
    assert threads_per_worker(TrainConfig(num_workers=8), "spark://10.0.0.1:7077", 4) == 4
    assert threads_per_worker(TrainConfig(num_workers=1, threads_per_worker=3), "local[2]", 1) == 3
    assert threads_per_worker(TrainConfig(num_workers=8, threads_per_worker=2), "yarn", 4) == 2


def _rows(spark: SparkSession) -> DataFrame:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 5, (300, 2))
    return spark.createDataFrame(
        [(Vectors.dense(r), float(1 + 0.5 * r[0]), i % 5 == 0) for i, r in enumerate(x)],
        ["features", "label", "is_valid"])


def _nthread(booster: object) -> int:
    return int(json.loads(booster.save_config())["learner"]["generic_param"]["nthread"])  # type: ignore[attr-defined]


def test_one_local_worker_trains_with_every_core_and_two_share_them(spark: SparkSession, cfg: Config) -> None:
    assert spark.sparkContext.master == "local[2]"
    data = _rows(spark)
    small = ["train.booster.n_estimators=5", "train.booster.early_stopping_rounds=2"]
    params = cfg.train.booster.tree_params()
    one = cfg.with_overrides([*small, "train.num_workers=1"])
    _, booster = fit(spark, one, data, params, features=("a", "b"))
    assert _nthread(booster) == 2
    _, lower = fit(spark, one, data, params, quantile=0.1, features=("a", "b"))
    assert _nthread(lower) == 2
    _, shared = fit(spark, cfg.with_overrides([*small, "train.num_workers=2"]), data, params, features=("a", "b"))
    assert _nthread(shared) == 1
    # The same rows and parameters: the thread count changes the speed, not what is learnt.
    x = np.array([[1.0, 2.0], [4.0, 0.5]], dtype=np.float32)
    assert np.allclose(booster.inplace_predict(x), shared.inplace_predict(x), atol=0.2)
