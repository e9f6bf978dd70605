"""generate: simulate the marketplace into landing files (JSON lines per event type, one file per day)
and the hidden ``truth.*`` tables that only evaluation code reads.

The export is incremental by day: days already in the landing folder are never rewritten, so a
second run adds nothing and raising ``simulator.export_through`` adds only the new days' files.
A landing folder written with another simulator configuration is refused, never mixed.
"""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pricing.platform import catalog, delta_io
from pricing.platform.config import Config
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.world.export import FAULTS_DOCS, export_lines
from pricing.world.generate import (
    EXPORTED_THROUGH,
    check_manifest,
    export_days,
    export_suggestion_log,
    exported_through,
)
from pricing.world.simulator import TRUTH_CATEGORIES_DOCS, TRUTH_LISTINGS_DOCS, simulate


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("generate")
    sim_cfg = cfg.simulator
    root = cfg.landing_dir
    check_manifest(root, cfg)
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
            export_days(lines, root / event_type, new_days)
    if sim_cfg.exploration == "encouragement" and sim_cfg.price_nudge_share > 0:
        export_suggestion_log(sim.listings, root, max(through, done or through))
    # Written only once every event type's days are in: a crash before it re-exports those days, and
    # ingest drops the repeated events as duplicates (counted), so nothing is lost or doubled.
    (root / EXPORTED_THROUGH).write_text(str(max(through, done or through)))
    all_faults = faults[0].unionByName(faults[1]).unionByName(faults[2]).unionByName(faults[3])
    truth = {catalog.TRUTH_LISTINGS.logical: (sim.truth_listings, TRUTH_LISTINGS_DOCS),
             catalog.TRUTH_CATEGORIES.logical: (sim.truth_categories, TRUTH_CATEGORIES_DOCS),
             catalog.TRUTH_LANDING_FAULTS.logical: (all_faults, FAULTS_DOCS)}
    for logical, (df, docs) in truth.items():
        delta_io.overwrite(df, truth_refs[logical], docs=docs)
        summary.tables[logical] = delta_io.version(spark, truth_refs[logical])
    summary.rows_out[catalog.TRUTH_LANDING_FAULTS.logical] = delta_io.read(spark, truth_refs[catalog.TRUTH_LANDING_FAULTS.logical]).count()
    sim.listings.unpersist()
    summary.info["data_end"] = sim.end_time.isoformat()
    return summary.finish()
