"""The thin path on the real stack: simulator -> Delta bronze/silver/features -> GX -> xgboost.spark ->
MLflow run + registry (SQLite) -> champion -> batch scoring of every active listing."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from pricing.platform import delta_io, tracking
from pricing.platform.tables import table
from pricing.sources.schemas import LANDING
from pricing.workflow.dag import run_workflow
from pricing.workflow.runner import run_job

pytestmark = pytest.mark.slow


def test_every_task_ran(workflow) -> None:
    assert list(workflow) == ["generate", "ingest", "match", "features", "validate", "train", "promote", "demand", "score",
                              "recommend"]


def test_silver_matches_the_landing_events(spark, cfg, workflow) -> None:
    # The export carries bad records (quarantined) and re-sent duplicates: silver holds each good event once.
    lines = spark.read.text(str(cfg.state_path(cfg.ingest.landing_dir) / "listing_created"))
    quarantined = delta_io.read(spark, table(cfg, "bronze.quarantine")).select(F.col("raw_payload").alias("value"))
    landing = (lines.join(quarantined, "value", "left_anti")
               .select(F.from_json("value", LANDING["listing_created"]).alias("e")).select("e.*")
               .dropDuplicates(["event_id"]))
    assert landing.count() < lines.count()
    silver = delta_io.read(spark, table(cfg, "silver.listings"))
    assert_df_equality(
        silver.select("listing_id", "seller_id", "brand", F.col("list_price").alias("price"), "title"),
        landing.select("listing_id", "seller_id", "brand", "price", "title"),
        ignore_row_order=True, ignore_nullable=True,
    )


def test_champion_is_registered_with_metrics(cfg, workflow) -> None:
    tracking.setup(cfg)
    client = MlflowClient()
    mv = client.get_model_version_by_alias(cfg.mlflow.model_name, tracking.CHAMPION)
    assert client.get_model_version_by_alias(cfg.mlflow.model_name, tracking.CHALLENGER).version == mv.version
    metrics = client.get_run(mv.run_id).data.metrics
    assert metrics["test_rmsle"] < metrics["baseline_global_median_rmsle"]
    assert metrics["test_rmsle"] < metrics["baseline_brand_category_shrunk_rmsle"]
    assert metrics["test_rmsle"] < metrics["baseline_category_condition_median_rmsle"]
    assert metrics["interval_hi"] > 0 and metrics["interval_lo"] < 0
    # train.ablation is on in the shared workflow: each feature group's worth, from a refit without it.
    for group in ("comparables", "brand_premium"):
        assert metrics[f"test_rmsle_delta_{group}"] == pytest.approx(
            metrics["test_rmsle"] - metrics[f"test_rmsle_without_{group}"])
        assert metrics[f"test_rmsle_without_{group}"] < metrics["baseline_global_median_rmsle"]
    with open(client.download_artifacts(mv.run_id, "ablation.md")) as fh:
        table = fh.read().splitlines()
    assert table[2:] == [f"| {g} | {metrics[f'test_rmsle_without_{g}']:.4f} | {metrics['test_rmsle']:.4f} | "
                         f"{metrics[f'test_rmsle_delta_{g}']:+.4f} |" for g in ("brand_premium", "comparables")]
    assert mv.tags["promotion_decision"] == "promoted"
    assert mv.tags["sanity"] == "passed"


def test_every_active_listing_is_priced_once(spark, cfg, workflow) -> None:
    active = delta_io.read(spark, table(cfg, "silver.listings")).where("status = 'active'").select("listing_id")
    preds = delta_io.read(spark, table(cfg, "ml.price_suggestions"))
    assert_df_equality(preds.select("listing_id"), active, ignore_row_order=True, ignore_nullable=True)
    bad = preds.where("p10 > p50 OR p50 > p90 OR suggested_price IS NULL OR suggested_price < 0")
    assert bad.count() == 0
    tracking.setup(cfg)
    champion = MlflowClient().get_model_version_by_alias(cfg.mlflow.model_name, tracking.CHAMPION).version
    assert [r.model_version for r in preds.select("model_version").distinct().collect()] == [int(champion)]


def test_rescoring_the_same_date_replaces_rows(spark, cfg, workflow) -> None:
    ref = table(cfg, "ml.price_suggestions")
    before = delta_io.read(spark, ref).select("listing_id", "suggested_price", "p10", "p50", "p90")
    run_job("score", spark, cfg)
    after = delta_io.read(spark, ref).select("listing_id", "suggested_price", "p10", "p50", "p90")
    assert_df_equality(after, before, ignore_row_order=True, ignore_nullable=True)


def test_ingest_again_adds_nothing(spark, cfg, workflow) -> None:
    summary = run_job("ingest", spark, cfg)
    assert set(summary.rows_in.values()) == {0}
    assert all(v == 0 for k, v in summary.rows_out.items() if k.startswith("bronze."))


def test_a_corrupted_feature_table_blocks_the_run_before_train(spark, cfg, workflow) -> None:
    from pricing.platform.errors import DataQualityError

    ref = table(cfg, "features.training_set")
    good_version = delta_io.version(spark, ref)
    # One listing twice, with an impossible price: what a buggy upstream writer might leave behind.
    delta_io.append(delta_io.read(spark, ref).where("sold_price IS NOT NULL").limit(1)
                    .withColumn("sold_price", F.lit(-5.0)), ref)
    client = MlflowClient(tracking_uri=tracking.tracking_uri(cfg))
    versions = len(client.search_model_versions(f"name='{cfg.mlflow.model_name}'"))
    try:
        with pytest.raises(DataQualityError) as err:
            run_workflow(spark, cfg)
        msg = str(err.value)
        assert "task 'validate' failed" in msg and "not run: train, promote, demand, score, recommend" in msg
        assert "features.training_set" in msg and "sold_price" in msg and "listing_id" in msg
        assert len(client.search_model_versions(f"name='{cfg.mlflow.model_name}'")) == versions
    finally:
        spark.sql(f"RESTORE TABLE {ref.sql} TO VERSION AS OF {good_version}")
