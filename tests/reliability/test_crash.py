"""Crash mid-write: each writing job runs in its own process and is SIGKILLed at a fault point inside its write
window (``pricing.platform.faults``).  After each kill: every Delta table reads and holds either its old or its new
version, never part of one; the registry holds no half-registered champion; the re-run completes and its tables
equal those of the uninterrupted run (``ref``) by content.

The tests run in file order on one storage root, the way a workflow would resume: ingest (two stages of landing
files), features, train, score.
"""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pricing.platform import delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.tables import table
from pricing.price_model.promotion import load_version
from pricing.workflow.runner import run_job
from tests.reliability.support import (
    BRONZE,
    FEATURE_TABLES,
    INGEST_TABLES,
    assert_all_tables_readable,
    assert_same_rows,
    assert_tables_equal,
    copy_landing,
    kill_at,
    landing_dates,
    pricing_cmd,
    rows,
    tiny_cfg,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crash(ref: Config, tmp_path_factory: pytest.TempPathFactory) -> Config:
    return tiny_cfg(tmp_path_factory.mktemp("reliability-crash"))


def _first_stage(ref: Config) -> list[str]:
    dates = landing_dates(ref)
    return dates[: len(dates) // 2]


def _restricted(spark: SparkSession, cfg: Config, logical: str, files: set[str]):
    df = rows(spark, cfg, logical)
    return df.where(F.col("source_file").isin(*files))


def test_ingest_killed_after_a_bronze_merge(spark: SparkSession, ref: Config, crash: Config) -> None:
    copy_landing(ref, crash, _first_stage(ref))
    kill_at(pricing_cmd(crash.state_dir, "ingest"), "ingest.after_bronze_merge", crash.state_dir)
    counts = assert_all_tables_readable(spark, crash)
    # The first stream's MERGE committed, nothing after it: its table is complete (new), the others absent (old).
    files = {r.source_file for r in rows(spark, crash, "bronze.listings_raw").select("source_file").distinct()
             .collect()} if "bronze.listings_raw" in counts else set()
    assert set(counts) <= {"bronze.listings_raw"}, counts
    if counts:
        assert_same_rows(rows(spark, crash, "bronze.listings_raw"),
                         _restricted(spark, ref, "bronze.listings_raw", files), "bronze.listings_raw after the kill")
    # The re-run finishes the job: the interrupted micro-batch is replayed, its rows are not inserted twice.
    summary = run_job("ingest", spark, crash)
    assert "read" in summary.info["reconcile"]
    for logical in BRONZE:
        df = delta_io.read(spark, table(crash, logical))
        assert df.count() == df.select("event_id").distinct().count(), f"{logical} holds an event twice"


def test_ingest_killed_between_bronze_and_silver(spark: SparkSession, ref: Config, crash: Config) -> None:
    silver_before = {t: delta_io.version(spark, table(crash, t)) for t in ("silver.listings", "silver.sales")}
    old = {t: rows(spark, crash, t, version=v) for t, v in silver_before.items()}
    assert copy_landing(ref, crash) > 0
    kill_at(pricing_cmd(crash.state_dir, "ingest"), "ingest.before_silver", crash.state_dir)
    assert_all_tables_readable(spark, crash)
    # Bronze is complete (new), silver untouched (old).
    assert_tables_equal(spark, crash, ref, (*BRONZE, "bronze.quarantine"))
    for t, v in silver_before.items():
        assert delta_io.version(spark, table(crash, t)) == v
        assert_same_rows(rows(spark, crash, t), old[t], f"{t} after the kill")
    # The re-run inserts nothing new, yet must bring silver up to bronze.
    run_job("ingest", spark, crash)
    assert_tables_equal(spark, crash, ref, INGEST_TABLES)


def test_features_killed_between_tables(spark: SparkSession, ref: Config, crash: Config) -> None:
    run_job("match", spark, crash)
    assert_tables_equal(spark, crash, ref, ("features.product_matches", "features.product_clusters"))
    kill_at(pricing_cmd(crash.state_dir, "features"), "features.after_first_table", crash.state_dir)
    counts = assert_all_tables_readable(spark, crash)
    assert "features.listing_features" in counts
    assert not {"features.market_stats", "features.training_set", "features.comparable_sales"} & set(counts)
    assert_tables_equal(spark, crash, ref, ("features.listing_features",))
    run_job("features", spark, crash)
    assert_tables_equal(spark, crash, ref, FEATURE_TABLES)


def test_train_killed_while_registering(spark: SparkSession, crash: Config) -> None:
    kill_at(pricing_cmd(crash.state_dir, "train"), "train.after_register", crash.state_dir)
    tracking.setup(crash)
    client = MlflowClient()
    name = crash.mlflow.model_name
    (half,) = client.search_model_versions(f"name='{name}'")
    # Registered, but neither tagged nor aliased: nothing serves it.
    assert "sanity" not in half.tags
    assert tracking.alias_version(client, name, tracking.CHALLENGER) is None
    assert tracking.alias_version(client, name, tracking.CHAMPION) is None
    assert client.get_run(half.run_id).info.status != "FINISHED"
    run_job("promote", spark, crash)  # nothing to promote: the half-registered version stays out
    assert tracking.alias_version(client, name, tracking.CHAMPION) is None
    # The re-run registers a complete version, which the gate then promotes.
    version = run_job("train", spark, crash).task_values["model_version"]
    assert version == int(half.version) + 1
    run_job("promote", spark, crash)
    champion = tracking.alias_version(client, name, tracking.CHAMPION)
    assert champion == version
    mv = client.get_model_version(name, str(champion))
    assert mv.tags["sanity"] == "passed"
    assert client.get_run(mv.run_id).info.status == "FINISHED"
    assert load_version(name, champion).features


def test_score_killed_while_writing(spark: SparkSession, crash: Config) -> None:
    ref_table = table(crash, "ml.price_suggestions")
    # An uninterrupted scoring of an earlier date: the old version, and the content the re-run must equal.
    earlier = tiny_cfg(crash.state_dir, "score.scoring_date=2025-02-28")
    run_job("score", spark, earlier)
    before = delta_io.version(spark, ref_table)
    old = rows(spark, crash, "ml.price_suggestions", version=before)
    out = kill_at(pricing_cmd(crash.state_dir, "score"), "score.predict", crash.state_dir)
    assert "score.predict" in out
    assert_all_tables_readable(spark, crash)
    assert delta_io.version(spark, ref_table) == before, "the killed scoring committed something"
    assert_same_rows(rows(spark, crash, "ml.price_suggestions"), old, "ml.price_suggestions after the kill")
    run_job("score", spark, crash)
    again = delta_io.read(spark, ref_table)
    assert [r[0] for r in again.select(F.col("scoring_date").cast("string")).distinct().orderBy(1).collect()] \
        == ["2025-02-28", "2025-03-01"]
    assert_same_rows(rows(spark, crash, "ml.price_suggestions"),
                     old.union(old), "both dates, each equal to the uninterrupted scoring")
