"""xgboost threads per worker: one worker on one machine trains with every core of the local master, its Python
worker's OpenMP pool lets it, and the assembled frame goes to the workers without a shuffle per fit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.linalg import Vectors
from pyspark.sql import DataFrame, SparkSession

from pricing.platform.config import Config, TrainConfig
from pricing.price_model.training import (
    Split,
    assemble,
    fit,
    local_cores,
    openmp_threads,
    threads_per_worker,
)


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


def _openmp(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    import os

    for _ in batches:
        pass
    yield pd.DataFrame({"omp": [os.environ.get("OMP_NUM_THREADS")]})


def test_training_workers_get_the_threads_in_their_openmp_pool_and_other_udfs_keep_one(spark: SparkSession) -> None:
    # PySpark caps a Python worker's OpenMP pool (which xgboost's nthread cannot exceed) at its task's cores,
    # 1 here; the session states that cap, and a UDF made inside openmp_threads gets the training threads.
    assert spark.sparkContext.getConf().get("spark.executorEnv.OMP_NUM_THREADS") == "1"
    rows = spark.range(4).repartition(2)
    with openmp_threads(spark, 2):
        inside = rows.mapInPandas(_openmp, "omp string")
    outside = rows.mapInPandas(_openmp, "omp string")
    assert [r.omp for r in inside.collect()] == ["2", "2"]  # made in the block, run after it
    assert [r.omp for r in outside.collect()] == ["1", "1"]
    assert spark.sparkContext.environment.get("OMP_NUM_THREADS") == "1"


def test_the_assembled_frame_has_one_partition_per_worker_each_with_training_and_validation_rows(
        spark: SparkSession) -> None:
    train = spark.createDataFrame([(float(i), float(i % 7), 1.0 + i) for i in range(40)], "a double, b double, label double")
    valid = spark.createDataFrame([(float(i), 1.0, 2.0) for i in range(6)], "a double, b double, label double")
    t0 = datetime(2025, 1, 1)
    split = Split(train, valid, valid, valid, valid, t0, t0, t0, t0, t0, 30)
    data = assemble(split, ("a", "b"), workers=2)
    try:
        assert data.rdd.getNumPartitions() == 2
        per_partition = data.rdd.mapPartitions(lambda rows: [sorted({r.is_valid for r in rows})]).collect()
        assert per_partition == [[False, True], [False, True]]
        assert sorted(r.label for r in data.collect()) == sorted([1.0 + i for i in range(40)] + [2.0] * 6)
    finally:
        data.unpersist()
