"""The simulator's landing export, bronze ingestion and incremental feature builds, on the real stack: every
injected bad record is quarantined with its reason, counts reconcile exactly, re-runs add nothing, new days
are picked up, and feature tables built incrementally equal a full rebuild."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from features import comparables, listing_features, market_stats, product_matches, training_set
from jobs import features, generate, ingest, match
from pricing.platform import catalog, delta_io
from pricing.platform.config import Config
from pricing.platform.errors import PricingError
from pricing.platform.tables import table
from pricing.sources import schemas
from pricing.world.export import FAULTS, export_lines
from pricing.world.simulator import simulate

pytestmark = pytest.mark.slow  # generate -> ingest -> match -> features on a small world

TINY = ["simulator.n_listings=3000", "simulator.n_sellers=400", "simulator.n_brands=100", "simulator.days=90",
        "simulator.bad_record_rate=0.06"]
FIRST_DAYS = 45


def _count_lines(landing: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for et in schemas.LANDING for p in (landing / et).rglob("*.json"))


@pytest.fixture(scope="module")
def tiny(cfg: Config, tmp_path_factory: pytest.TempPathFactory) -> Config:
    return cfg.with_overrides([*TINY, f"storage.root={tmp_path_factory.mktemp('landing-state')}"])


@pytest.fixture(scope="module")
def runs(spark, tiny: Config):  # type: ignore[no-untyped-def]
    """Export the first days and ingest them, then export the rest and ingest again (incremental)."""
    first = tiny.with_overrides([f"simulator.export_through={tiny.simulator.start_date + timedelta(FIRST_DAYS - 1)}"])
    landing = tiny.landing_dir
    out = {"gen1": generate.run(spark, first)}
    out["lines1"] = _count_lines(landing)
    out["files1"] = {p: p.stat().st_mtime_ns for p in landing.rglob("part-*.json")}
    out["ing1"] = ingest.run(spark, first)
    out["match1"] = match.run(spark, first)
    out["feat1"] = features.run(spark, first)
    out["gen2"] = generate.run(spark, tiny)
    out["lines2"] = _count_lines(landing)
    out["ing2"] = ingest.run(spark, tiny)
    try:  # product matches older than the listings: comparables would miss the new listings' pairs for good
        features.run(spark, tiny)
    except PricingError as exc:
        out["stale"] = str(exc)
    out["match2"] = match.run(spark, tiny)
    out["feat2"] = features.run(spark, tiny)  # incremental: only what arrived since feat1's watermark
    return out


def _expected(spark, tiny: Config, outcome: str):  # type: ignore[no-untyped-def]
    return delta_io.read(spark, table(tiny, "truth.landing_faults")).where(F.col("expected") == outcome)


def test_every_fault_kind_is_injected(spark, tiny, runs) -> None:  # type: ignore[no-untyped-def]
    faults = delta_io.read(spark, table(tiny, "truth.landing_faults"))
    assert {r.fault for r in faults.select("fault").distinct().collect()} == set(FAULTS)


def test_each_bad_record_is_quarantined_with_its_reason(spark, tiny, runs) -> None:  # type: ignore[no-untyped-def]
    faults = delta_io.read(spark, table(tiny, "truth.landing_faults"))
    expected = faults.where(~F.col("expected").isin("duplicate", "bronze")).select(
        "event_type", "raw_payload", F.col("expected").alias("reason"))
    quarantine = delta_io.read(spark, table(tiny, "bronze.quarantine")).select("event_type", "raw_payload", "reason")
    assert_df_equality(quarantine, expected, ignore_row_order=True, ignore_nullable=True)
    q = delta_io.read(spark, table(tiny, "bronze.quarantine"))
    assert q.where(F.col("source_file").isNull() | F.col("ingested_at").isNull()).count() == 0


def test_counts_reconcile_exactly(spark, tiny, runs) -> None:  # type: ignore[no-untyped-def]
    c1, c2 = runs["ing1"].info["counts"], runs["ing2"].info["counts"]
    # Every line in the landing files was read exactly once over the two runs.
    assert c1["read"] == runs["lines1"]
    assert c1["read"] + c2["read"] == runs["lines2"]
    faults = delta_io.read(spark, table(tiny, "truth.landing_faults"))
    n_bad = faults.where(~F.col("expected").isin("duplicate", "bronze")).count()
    assert c1["quarantined"] + c2["quarantined"] == n_bad
    assert c1["duplicates"] + c2["duplicates"] == _expected(spark, tiny, "duplicate").count()
    bronze = sum(delta_io.read(spark, table(tiny, t)).count() for t in catalog.BRONZE_EVENT_TABLES.values())
    assert c1["inserted"] + c2["inserted"] == bronze
    assert bronze + n_bad + _expected(spark, tiny, "duplicate").count() == runs["lines2"]


def test_bronze_holds_each_good_event_once(spark, tiny, runs) -> None:  # type: ignore[no-untyped-def]
    sim = simulate(spark, tiny.simulator)
    for event_type, bronze_table in catalog.BRONZE_EVENT_TABLES.items():
        lines, _ = export_lines(sim.events[event_type], event_type, tiny.simulator.seed,
                                tiny.simulator.bad_record_rate)
        last_day = tiny.simulator.start_date + timedelta(tiny.simulator.days - 1)
        good = (lines.where(F.col("landing_date") <= F.lit(last_day))
                .where(F.col("fault").isNull() | F.col("fault").isin("duplicate", "late_arrival"))
                .select("event_id").distinct())
        bronze = delta_io.read(spark, table(tiny, bronze_table)).select("event_id")
        assert_df_equality(bronze, good, ignore_row_order=True, ignore_nullable=True)
    sim.listings.unpersist()


def test_new_days_are_picked_up_incrementally(runs) -> None:  # type: ignore[no-untyped-def]
    assert runs["gen1"].rows_out["new days"] == FIRST_DAYS
    assert runs["gen2"].rows_out["new days"] == 90 - FIRST_DAYS
    # The first export's files were neither rewritten nor removed by the second.
    for path, mtime in runs["files1"].items():
        assert path.stat().st_mtime_ns == mtime
    assert runs["ing2"].info["counts"]["read"] == runs["lines2"] - runs["lines1"] > 0


def test_a_rerun_adds_nothing(spark, tiny, runs) -> None:  # type: ignore[no-untyped-def]
    refs = [table(tiny, t) for t in (*catalog.BRONZE_EVENT_TABLES.values(), "bronze.quarantine", "silver.listings",
                                     "silver.sales")]
    versions = [delta_io.version(spark, r) for r in refs]
    gen = generate.run(spark, tiny)
    assert gen.rows_out["new days"] == 0 and not gen.tables
    again = ingest.run(spark, tiny)
    assert again.info["counts"] == {"read": 0, "inserted": 0, "quarantined": 0, "duplicates": 0}
    assert [delta_io.version(spark, r) for r in refs] == versions
    specs = (listing_features.SPEC, market_stats.SPEC, comparables.SPEC, training_set.SPEC,
             product_matches.MATCHES_SPEC, product_matches.CLUSTERS_SPEC)
    feature_refs = [table(tiny, s.name) for s in specs]
    feature_versions = [delta_io.version(spark, r) for r in feature_refs]
    assert match.run(spark, tiny).info["product matches"].startswith("up to date")
    feats = features.run(spark, tiny)
    assert {feats.info[s.name] for s in specs[:4]} == {"up to date"}
    assert [delta_io.version(spark, r) for r in feature_refs] == feature_versions


def test_features_refuse_product_matches_older_than_the_listings(runs) -> None:  # type: ignore[no-untyped-def]
    assert "is stale" in runs["stale"] and "run `pricing match` first" in runs["stale"]


def test_the_match_job_finds_the_simulated_products(spark, tiny, runs) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    from pricing.platform import tracking

    tracking.setup(tiny)
    m = mlflow.get_run(runs["match2"].info["mlflow_run_id"]).data.metrics
    assert m["pair_precision"] >= 0.95 and m["pair_recall"] >= 0.85, m
    assert m["recall_at_5"] >= 0.85, m
    pairs = delta_io.read(spark, table(tiny, product_matches.MATCHES_SPEC.name))
    assert runs["match2"].rows_out[product_matches.MATCHES_SPEC.name] == pairs.count() > 0
    # Both directions of every pair, never a listing with itself.
    flipped = pairs.select(F.col("matched_listing_id").alias("listing_id"), F.col("listing_id").alias("matched_listing_id"),
                           "similarity", "same_product", "known_at")
    assert_df_equality(pairs, flipped, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)
    assert pairs.where(F.col("listing_id") == F.col("matched_listing_id")).count() == 0


def test_incremental_feature_build_equals_a_full_rebuild(spark, tiny, runs) -> None:  # type: ignore[no-untyped-def]
    # The second build really was incremental, from no later than the first new day (late arrivals reach back).
    for spec in (listing_features.SPEC, market_stats.SPEC, comparables.SPEC, training_set.SPEC):
        assert runs["feat1"].info[spec.name] == "full build"
        assert runs["feat2"].info[spec.name].startswith("incremental from ")
    first_new_day = tiny.simulator.start_date + timedelta(FIRST_DAYS)
    assert runs["feat2"].info[market_stats.SPEC.name] <= f"incremental from {first_new_day}"
    # Full rebuild, computed from scratch on the same silver tables, compared row for row.
    read = lambda name: delta_io.read(spark, table(tiny, name))  # noqa: E731
    listings, sales = read("silver.listings"), read("silver.sales")
    full_lf = listing_features.compute(listings, sales, read("bronze.price_changes_raw"))
    full_ms = market_stats.compute(listings, sales, tiny.features.shrinkage_k)
    full_cmp = comparables.compute(listings, sales, read(product_matches.MATCHES_SPEC.name), tiny.features.comparables_k)
    full_ts = training_set.compute(full_lf, full_ms, listings, tiny.features.sold_within_days,
                                   shrinkage_k=tiny.features.shrinkage_k,
                                   brand_window_days=tiny.features.brand_window_days, comparables=full_cmp)
    assert full_cmp.where("cmp_product_sold > 0").count() > 0  # the comparison covers real comparables
    for spec, full in ((listing_features.SPEC, full_lf), (market_stats.SPEC, full_ms), (comparables.SPEC, full_cmp),
                       (training_set.SPEC, full_ts)):
        stored = read(spec.name)
        assert stored.count() == full.count() > 0
        # The spec's docs are the table's column comments and its description the table comment.
        ref = table(tiny, spec.name)
        comments = {r.col_name: r.comment for r in spark.sql(f"DESCRIBE TABLE {ref.sql}").collect()
                    if r.col_name in spec.column_docs}
        assert comments == spec.column_docs
        assert spark.sql(f"DESCRIBE DETAIL {ref.sql}").first()["description"] == spec.description
        assert_df_equality(stored, full, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)


def test_landing_from_another_world_is_refused(spark, tiny, runs) -> None:  # type: ignore[no-untyped-def]
    from pricing.platform.errors import ConfigError

    with pytest.raises(ConfigError, match="seed differ"):
        generate.run(spark, tiny.with_overrides(["simulator.seed=7"]))
