"""The landing export of a simulated world, incremental by day: days already exported are never rewritten, and a
landing folder written with other simulator settings is refused (its manifest records them), never mixed.

Where files live: the landing folder is under ``storage.root`` (a Unity Catalog Volume on Databricks).  The day
files are written by executors, so they are renamed through the session's Hadoop FileSystem
(:mod:`pricing.platform.fs`), never with the driver's ``pathlib``.  The manifest and the ``_exported_through``
marker are small files only the driver writes and reads, before and after the Spark write; on Databricks
``/Volumes`` is FUSE-mounted on the driver, so ``pathlib`` on them reads and writes the Volume itself.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricing.platform import fs
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError
from pricing.sources.exploration import SUGGESTION_LOG
from pricing.sources.landing import MANIFEST

EXPORTED_THROUGH = "_exported_through"


def _world(cfg: Config) -> dict:
    """What determines the simulated world (everything but how far it has been exported)."""
    world = cfg.simulator.model_dump(mode="json", exclude={"export_through", "partitions"})
    if world["exploration"] == "nudge":
        # The nudge design is the world exports made before encouragement existed: their manifests stay valid.
        del world["exploration"], world["suggestion_adoption"]
    if not world["price_nudge_share"]:
        # No exploration is the world exports made before it existed: their manifests stay valid.
        del world["price_nudge_share"], world["price_nudge_max"]
        world.pop("exploration", None), world.pop("suggestion_adoption", None)
    return world


def export_suggestion_log(listings: DataFrame, root: Path, through: date) -> None:
    """The encouragement experiment's log (``SUGGESTION_LOG``) for the listings created up to ``through``:
    rewritten whole (the same rows on a rerun), before the export marker, so a crash rewrites it."""
    (listings.where((F.col("suggestion") != 0) & (F.to_date("created_at") <= F.lit(through)))
     .select("listing_id", F.col("suggestion_adopted").alias("adopted"))
     .coalesce(1).write.mode("overwrite").parquet(str(root / SUGGESTION_LOG)))


def check_manifest(root: Path, cfg: Config) -> None:
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


def export_days(lines: DataFrame, out: Path, days: set[str]) -> None:
    (lines.where(F.col("landing_date").cast("string").isin(*sorted(days)))
     .select("landing_date", "value").repartition("landing_date").sortWithinPartitions("value")
     .write.mode("append").partitionBy("landing_date").option("compression", "none")
     .text(str(out)))
    # Spark names the files part-*.txt; the export's contract (and the ingest filter) is *.json.  Executors wrote
    # them: rename through the FileSystem Spark wrote with (a Volume or cloud path as well as a local one).
    spark = lines.sparkSession
    for part in fs.glob(spark, f"{out}/landing_date=*/part-*.txt"):
        fs.rename(spark, part, part.removesuffix(".txt") + ".json")
