"""generate: simulate the marketplace into landing files (JSON lines per event type, one folder per day)
and the hidden ``truth.*`` tables that only evaluation code reads."""

from __future__ import annotations

import shutil

from pyspark.sql import SparkSession

from pricing import delta_io
from pricing.config import Config
from pricing.simulator import simulate
from pricing.summary import JobSummary
from pricing.tables import table


def landing_dir(cfg: Config) -> str:
    return str(cfg.state_path(cfg.ingest.landing_dir))


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("generate")
    sim = simulate(spark, cfg.simulator)
    root = landing_dir(cfg)
    for event_type, df in sim.events.items():
        out = f"{root}/{event_type}"
        # Regenerating replaces the export whole; ingest dedups on event id, so nothing doubles.
        shutil.rmtree(out, ignore_errors=True)
        # One file per day, rows in event order: the shape of an app's daily export.
        (df.repartition("event_date").sortWithinPartitions("event_time", "event_id")
         .write.mode("overwrite").partitionBy("event_date").json(out))
        summary.rows_out[event_type] = df.count()
    for logical, df in (("truth.listings", sim.truth_listings), ("truth.categories", sim.truth_categories)):
        ref = table(cfg, logical)
        delta_io.overwrite(df, ref)
        summary.tables[logical] = delta_io.version(spark, ref)
    sim.listings.unpersist()
    summary.info["landing"] = root
    summary.info["data_end"] = sim.end_time.isoformat()
    return summary.finish()


def main(argv: list[str] | None = None) -> int:
    from pricing.cli import main as cli_main

    return cli_main(["generate", *(argv or [])])
