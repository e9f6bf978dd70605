"""generate: simulate the marketplace into landing files (JSON lines per event type, one file per day)
and the hidden ``truth.*`` tables that only evaluation code reads.

The export is incremental by day: days already in the landing folder are never rewritten, so a
second run adds nothing and raising ``simulator.export_through`` adds only the new days' files.
A landing folder written with another simulator configuration is refused, never mixed.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pricing.platform import catalog, delta_io
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.sources.landing import MANIFEST
from pricing.world.export import export_lines
from pricing.world.simulator import simulate

EXPORTED_THROUGH = "_exported_through"


def _world(cfg: Config) -> dict:
    """What determines the simulated world (everything but how far it has been exported)."""
    world = cfg.simulator.model_dump(mode="json", exclude={"export_through", "partitions"})
    if not world["price_nudge_share"]:
        # No exploration is the world exports made before it existed: their manifests stay valid.
        del world["price_nudge_share"], world["price_nudge_max"]
    return world


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


def exported_through(root: Path) -> date | None:
    """The last day the export has fully written (recorded after each successful export)."""
    marker = root / EXPORTED_THROUGH
    return date.fromisoformat(marker.read_text().strip()) if marker.exists() else None


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
    root = cfg.landing_dir
    _check_manifest(root, cfg)
    last_day = sim_cfg.start_date + timedelta(days=sim_cfg.days - 1)
    through = min(sim_cfg.export_through or last_day, last_day)
    done = exported_through(root)
    first_new = sim_cfg.start_date if done is None else done + timedelta(days=1)
    new_days = {str(first_new + timedelta(days=i)) for i in range((through - first_new).days + 1)}
    summary.rows_out["new days"] = len(new_days)
    summary.info["export"] = f"{sim_cfg.start_date} .. {max(through, done or through)}"
    summary.info["landing"] = str(root)
    truth_refs = {t.logical: table(cfg, t) for t in (catalog.TRUTH_LISTINGS, catalog.TRUTH_CATEGORIES,
                                                     catalog.TRUTH_LANDING_FAULTS)}
    if not new_days and all(delta_io.exists(spark, r) for r in truth_refs.values()):
        summary.info["note"] = "export already up to date: nothing written"
        return summary.finish()
    sim = simulate(spark, sim_cfg)
    faults = []
    for event_type, events in sim.events.items():
        lines, injected = export_lines(events, event_type, sim_cfg.seed, sim_cfg.bad_record_rate)
        faults.append(injected.where(F.col("landing_date") <= F.lit(max(through, done or through))))
        if new_days:
            _export(lines, root / event_type, new_days)
    # Written only once every event type's days are in: a crash before it re-exports those days, and
    # ingest drops the repeated events as duplicates (counted), so nothing is lost or doubled.
    (root / EXPORTED_THROUGH).write_text(str(max(through, done or through)))
    truth = {catalog.TRUTH_LISTINGS.logical: sim.truth_listings, catalog.TRUTH_CATEGORIES.logical: sim.truth_categories,
             catalog.TRUTH_LANDING_FAULTS.logical: faults[0].unionByName(faults[1]).unionByName(faults[2]).unionByName(faults[3])}
    for logical, df in truth.items():
        delta_io.overwrite(df, truth_refs[logical])
        summary.tables[logical] = delta_io.version(spark, truth_refs[logical])
    summary.rows_out[catalog.TRUTH_LANDING_FAULTS.logical] = delta_io.read(spark, truth_refs[catalog.TRUTH_LANDING_FAULTS.logical]).count()
    sim.listings.unpersist()
    summary.info["data_end"] = sim.end_time.isoformat()
    return summary.finish()
