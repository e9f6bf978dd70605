"""The simulator's landing export and bronze ingestion, on the real stack: every injected bad record is
quarantined with its reason, counts reconcile exactly, re-runs add nothing, new days are picked up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs import generate, ingest
from pricing import delta_io, schemas
from pricing.config import Config
from pricing.landing import FAULTS, export_lines
from pricing.simulator import simulate
from pricing.tables import table

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
    landing = Path(generate.landing_dir(tiny))
    out = {"gen1": generate.run(spark, first)}
    out["lines1"] = _count_lines(landing)
    out["files1"] = {p: p.stat().st_mtime_ns for p in landing.rglob("part-*.json")}
    out["ing1"] = ingest.run(spark, first)
    out["gen2"] = generate.run(spark, tiny)
    out["lines2"] = _count_lines(landing)
    out["ing2"] = ingest.run(spark, tiny)
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
    bronze = sum(delta_io.read(spark, table(tiny, t)).count() for t in schemas.BRONZE_TABLE.values())
    assert c1["inserted"] + c2["inserted"] == bronze
    assert bronze + n_bad + _expected(spark, tiny, "duplicate").count() == runs["lines2"]


def test_bronze_holds_each_good_event_once(spark, tiny, runs) -> None:  # type: ignore[no-untyped-def]
    sim = simulate(spark, tiny.simulator)
    for event_type, bronze_table in schemas.BRONZE_TABLE.items():
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
    refs = [table(tiny, t) for t in (*schemas.BRONZE_TABLE.values(), "bronze.quarantine", "silver.listings",
                                     "silver.sales")]
    versions = [delta_io.version(spark, r) for r in refs]
    gen = generate.run(spark, tiny)
    assert gen.rows_out["new days"] == 0 and not gen.tables
    again = ingest.run(spark, tiny)
    assert again.info["counts"] == {"read": 0, "inserted": 0, "quarantined": 0, "duplicates": 0}
    assert [delta_io.version(spark, r) for r in refs] == versions


def test_landing_from_another_world_is_refused(spark, tiny, runs) -> None:  # type: ignore[no-untyped-def]
    from pricing.errors import ConfigError

    with pytest.raises(ConfigError, match="seed differ"):
        generate.run(spark, tiny.with_overrides(["simulator.seed=7"]))
