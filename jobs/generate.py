"""generate: simulate the marketplace into landing files (JSON lines per event type, one file per day)
and the hidden ``truth.*`` tables that only evaluation code reads.

The export is incremental by day: days already in the landing folder are never rewritten, so a
second run adds nothing and raising ``simulator.export_through`` adds only the new days' files.
A landing folder written with another simulator configuration is refused, never mixed.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pricing import delta_io
from pricing.config import Config
from pricing.errors import ConfigError
from pricing.landing import export_lines
from pricing.simulator import simulate
from pricing.summary import JobSummary
from pricing.tables import table

MANIFEST = "_simulator.json"


def landing_dir(cfg: Config) -> str:
    return str(cfg.state_path(cfg.ingest.landing_dir))


def _world(cfg: Config) -> dict:
    """What determines the simulated world (everything but how far it has been exported)."""
    return cfg.simulator.model_dump(mode="json", exclude={"export_through", "partitions"})


def _check_manifest(root: Path, cfg: Config) -> None:
    path = root / MANIFEST
    if path.exists():
        found = json.loads(path.read_text())
        if found != _world(cfg):
            changed = sorted(k for k in set(found) | set(_world(cfg)) if found.get(k) != _world(cfg).get(k))
            raise ConfigError(
                f"the landing export in {root} was generated with other simulator settings "
                f"({', '.join(changed)} differ). Use another storage.root, or `make clean-state` to start over."
            )
    else:
        root.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_world(cfg), indent=2, sort_keys=True))


def exported_days(folder: Path) -> set[str]:
    """Days already in a landing folder (complete ones: Spark commits a day's folder as a whole)."""
    if not folder.exists():
        return set()
    return {p.name.split("=", 1)[1] for p in folder.glob("landing_date=*") if any(p.glob("*.json"))}


def _export(lines: DataFrame, out: Path, days: set[str]) -> None:
    (lines.where(F.col("landing_date").cast("string").isin(*sorted(days)))
     .select("landing_date", "value").repartition("landing_date").sortWithinPartitions("value")
     .write.mode("append").partitionBy("landing_date").option("compression", "none")
     .text(str(out)))
    # Spark names the files part-*.txt; the export's contract (and the ingest filter) is *.json.
    for part in out.glob("landing_date=*/part-*.txt"):
        part.rename(part.with_suffix(".json"))


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("generate")
    sim_cfg = cfg.simulator
    root = Path(landing_dir(cfg))
    _check_manifest(root, cfg)
    sim = simulate(spark, sim_cfg)
    last_day = sim.end_time.date() - timedelta(days=1)
    through = min(sim_cfg.export_through or last_day, last_day)
    all_days = {str(sim_cfg.start_date + timedelta(days=i)) for i in range((through - sim_cfg.start_date).days + 1)}
    faults = []
    for event_type, events in sim.events.items():
        lines, injected = export_lines(events, event_type, sim_cfg.seed, sim_cfg.bad_record_rate)
        faults.append(injected.where(F.col("landing_date") <= F.lit(through)))
        out = root / event_type
        new_days = all_days - exported_days(out)
        if new_days:
            _export(lines, out, new_days)
        summary.rows_out[f"{event_type} days"] = len(new_days)
    summary.info["export"] = f"{sim_cfg.start_date} .. {through} ({len(all_days)} days)"
    truth = {"truth.listings": sim.truth_listings, "truth.categories": sim.truth_categories,
             "truth.landing_faults": faults[0].unionByName(faults[1]).unionByName(faults[2]).unionByName(faults[3])}
    for logical, df in truth.items():
        ref = table(cfg, logical)
        delta_io.overwrite(df, ref)
        summary.tables[logical] = delta_io.version(spark, ref)
    summary.rows_out["truth.landing_faults"] = delta_io.read(spark, table(cfg, "truth.landing_faults")).count()
    sim.listings.unpersist()
    summary.info["landing"] = str(root)
    summary.info["data_end"] = sim.end_time.isoformat()
    return summary.finish()



def main(argv: list[str] | None = None) -> int:
    from pricing.cli import main as cli_main

    return cli_main(["generate", *(argv or [])])
