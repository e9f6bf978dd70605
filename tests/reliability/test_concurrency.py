"""Concurrency: two scorings of one date at once never leave duplicate or mixed rows (Delta's commit conflicts
are retried, or reported); two ingests at once neither lose nor double an event (a job lock, and an insert-only
MERGE on event_id behind it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from delta.exceptions import ConcurrentAppendException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import ingest, score
from pricing.platform import delta_io
from pricing.platform.config import Config
from pricing.platform.errors import ConcurrentWriteError, JobLockedError
from pricing.platform.locks import exclusive
from pricing.platform.tables import TableRef, table
from tests.reliability.support import (
    BRONZE,
    INGEST_TABLES,
    SCORING_DATE,
    assert_same_rows,
    assert_tables_equal,
    copy_landing,
    tiny_cfg,
    together,
)


def test_conflicts_are_retried_then_reported_by_table(tmp_path: Path) -> None:
    ref = TableRef("ml.price_suggestions", path=str(tmp_path / "t"))
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConcurrentAppendException("Files were added to the root of the table by a concurrent update.")
        return "committed"

    assert delta_io.with_retries(ref, "overwrite", flaky, backoff_s=0) == "committed"
    assert len(attempts) == 3

    def always() -> None:
        raise ConcurrentAppendException("Files were added by a concurrent update.")

    with pytest.raises(ConcurrentWriteError, match=r"ml\.price_suggestions.*lost 4 commit races.*nothing of this"):
        delta_io.with_retries(ref, "overwrite", always, backoff_s=0)


@pytest.mark.slow
def test_racing_replacements_of_one_date_leave_one_whole_run(spark: SparkSession, tmp_path: Path) -> None:
    ref = TableRef("ml.t", path=str(tmp_path / "t"))
    base = spark.range(200).select(F.col("id").alias("listing_id"), F.lit("2025-01-01").cast("date").alias("d"))
    delta_io.overwrite(base.withColumn("run", F.lit("old")), ref)
    for day in ("2025-01-01", "2025-01-02"):  # an existing date, then one the table does not hold yet
        runs = [base.withColumn("d", F.lit(day).cast("date")).withColumn("run", F.lit(name)) for name in "AB"]
        results = together(*[lambda df=df, day=day: delta_io.overwrite(df, ref, replace_where=f"d = DATE'{day}'")
                             for df in runs])
        assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, ConcurrentWriteError)]
        got = delta_io.read(spark, ref).where(F.col("d") == F.lit(day))
        assert got.count() == 200 and got.select("listing_id").distinct().count() == 200
        assert got.select("run").distinct().count() == 1, "rows of two runs mixed"
    assert delta_io.read(spark, ref).count() == 400


@pytest.mark.slow
def test_two_scorings_of_one_date_at_once(spark: SparkSession, ref: Config) -> None:
    cfg = ref.with_overrides(["score.scoring_date=2025-03-05"])
    out = table(ref, "ml.price_suggestions")
    results = together(lambda: score.run(spark, cfg), lambda: score.run(spark, cfg))
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, ConcurrentWriteError)], results
    assert any(not isinstance(r, Exception) for r in results)
    assert "dbutils" not in sys.modules, "MLflow's stand-in for dbutils was left behind by two loads at once"
    got = delta_io.read(spark, out).where("scoring_date = DATE'2025-03-05'")
    # One whole run: every active listing once, all rows from the same run (one scoring time, one model).
    assert got.count() == got.select("listing_id").distinct().count()
    assert got.select("scored_at", "model_version").distinct().count() == 1, "rows of two runs mixed"
    want = delta_io.read(spark, out).where(f"scoring_date = DATE'{SCORING_DATE}'")
    assert_same_rows(got.drop("scored_at", "scoring_date", "feature_table_version"),
                     want.drop("scored_at", "scoring_date", "feature_table_version"), "the raced scoring")


@pytest.mark.slow
def test_two_ingests_at_once_lose_and_double_nothing(spark: SparkSession, ref: Config, tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path / "state")
    copy_landing(ref, cfg)
    results = together(lambda: ingest.run(spark, cfg), lambda: ingest.run(spark, cfg))
    assert not [r for r in results if isinstance(r, Exception)], results
    inserted = [sum(v for k, v in r.rows_out.items() if k in BRONZE) for r in results]
    total = sum(delta_io.read(spark, table(ref, t)).count() for t in BRONZE)
    assert sorted(inserted) == [0, total], "the second ingest re-inserted, or the two split the events"
    assert_tables_equal(spark, cfg, ref, INGEST_TABLES)


HOLDER = """
import sys, time
from pathlib import Path
from pricing.platform.locks import exclusive
with exclusive(Path(sys.argv[1]), "pricing ingest", 5):
    print("held", flush=True)
    time.sleep(600)
"""


def test_the_ingest_lock_refuses_a_second_run_and_dies_with_its_holder(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / ingest.LOCK
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE,
                              start_new_session=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        t0 = time.monotonic()
        with pytest.raises(JobLockedError, match=rf"another pricing ingest is running \(pid {holder.pid} .*Nothing was"), \
                exclusive(lock, "pricing ingest", 1.0):
            pass
        assert time.monotonic() - t0 >= 1.0
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # a SIGKILLed holder: the kernel releases its lock
        holder.wait()
    with exclusive(lock, "pricing ingest", 2.0):
        pass
