"""Non-table state under one root, on a Unity Catalog Volume on Databricks: the configuration insists on it, the
landing stream's reader (Auto Loader on Databricks, the file source locally) keeps its state there, files
executors wrote are handled through the session's Hadoop FileSystem, and the cross-cluster lease lock works on
any FileSystem (here the local one)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from pricing.platform import fs
from pricing.platform.config import load_config
from pricing.platform.errors import ConfigError, JobLockedError
from pricing.platform.locks import job_lock, lease
from pricing.sources.ingest import landing_reader


# ---- configuration -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("target", "catalog"), [("dev", "pricing_dev"), ("prod", "pricing_prod")])
def test_databricks_targets_keep_all_state_on_their_volume(target: str, catalog: str) -> None:
    cfg = load_config(target)
    assert cfg.storage.root == f"/Volumes/{catalog}/ml/state"
    assert cfg.storage.lock == "filesystem" and cfg.ingest.reader == "autoloader"
    for path in (cfg.landing_dir, cfg.state_path(cfg.validate_.data_docs_dir), cfg.state_path(cfg.validate_.gx_dir),
                 cfg.state_path("locks/ingest.lock"), cfg.state_path("task_values")):
        assert path.is_relative_to(cfg.storage.root), path


def test_local_runs_keep_the_file_source_and_flock() -> None:
    cfg = load_config("local")
    assert (cfg.ingest.reader, cfg.storage.lock) == ("files", "flock")
    assert cfg.state_dir.name == ".pricing"


@pytest.mark.parametrize(("overrides", "message"), [
    (["storage.catalog=pricing_dev"], r"storage.root '.pricing' must be a Unity Catalog Volume path"),
    (["storage.catalog=pricing_dev", "storage.root=/dbfs/tmp/state"], r"Unity Catalog Volume path"),
    (["storage.catalog=pricing_dev", "storage.root=/Volumes/pricing_dev/ml/state", "ingest.landing_dir=/tmp/x"],
     r"ingest.landing_dir '/tmp/x' must lie under storage.root"),
])
def test_on_databricks_state_off_the_volume_is_refused(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("local", overrides)


# ---- the landing stream's reader -----------------------------------------------------------------------------------
def test_the_file_source_reads_landing_json_lines_as_text_locally() -> None:
    cfg = load_config("local")
    r = landing_reader(cfg, "listing_sold", str(cfg.landing_dir))
    assert r.format == "text"
    assert r.options == {"recursiveFileLookup": "true", "pathGlobFilter": "*.json"}
    assert r.path == f"{cfg.landing_dir}/listing_sold"
    assert r.checkpoint == str(cfg.state_path("checkpoints/ingest/listing_sold"))


def test_auto_loader_on_databricks_keeps_its_checkpoint_and_schema_on_the_volume() -> None:
    cfg = load_config("prod")
    r = landing_reader(cfg, "listing_created", str(cfg.landing_dir))
    root = "/Volumes/pricing_prod/ml/state"
    assert r.format == "cloudFiles"
    assert r.options == {
        "cloudFiles.format": "text",
        "cloudFiles.schemaLocation": f"{root}/schemas/ingest-autoloader/listing_created",
        "cloudFiles.includeExistingFiles": "true",
        "pathGlobFilter": "*.json",
    }
    assert r.path == f"{root}/landing/listing_created"
    # Its own checkpoint: switching readers re-reads the landing files (duplicates add nothing), never mixes.
    assert r.checkpoint == f"{root}/checkpoints/ingest-autoloader/listing_created"


# ---- files through the Hadoop FileSystem -------------------------------------------------------------------------
def test_small_files_and_renames_go_through_the_filesystem(spark: SparkSession, tmp_path: Path) -> None:
    target = tmp_path / "a" / "note.txt"
    assert fs.read_text(spark, target) is None and not fs.exists(spark, target)
    assert fs.write_text(spark, target, "one\ntwo", overwrite=False)
    assert not fs.write_text(spark, target, "three", overwrite=False), "a conditional create overwrote"
    assert fs.read_text(spark, target) == "one\ntwo" and target.read_text() == "one\ntwo"
    assert fs.write_text(spark, target, "three") and fs.read_text(spark, target) == "three"
    (tmp_path / "a" / "part-0.txt").write_text("x")
    [found] = fs.glob(spark, f"{tmp_path}/*/part-*.txt")
    fs.rename(spark, found, found.removesuffix(".txt") + ".json")
    assert (tmp_path / "a" / "part-0.json").read_text() == "x" and not (tmp_path / "a" / "part-0.txt").exists()
    assert fs.delete(spark, target) and not fs.delete(spark, target)


# ---- the lease lock ----------------------------------------------------------------------------------------------
def test_a_lease_refuses_a_second_run_then_is_released(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "locks" / "ingest.lock"
    with lease(spark, path, "pricing ingest", 1.0, ttl_s=60, settle_s=0):
        held = json.loads(path.read_text())
        assert held["expires_at"] > time.time() + 50 and "pid" in held["holder"]
        t0 = time.monotonic()
        with pytest.raises(JobLockedError, match=r"another pricing ingest is running \(pid .*Nothing was read"), \
                lease(spark, path, "pricing ingest", 0.6, ttl_s=60, settle_s=0):
            pass
        assert time.monotonic() - t0 >= 0.6
    assert not path.exists(), "the lease outlived its run"
    with lease(spark, path, "pricing ingest", 1.0, ttl_s=60, settle_s=0):
        pass


def test_an_expired_lease_of_a_dead_run_is_taken_over(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "locks" / "ingest.lock"
    path.parent.mkdir()
    path.write_text(json.dumps({"token": "dead", "holder": "pid 1 on gone", "expires_at": time.time() - 1}))
    with lease(spark, path, "pricing ingest", 1.0, ttl_s=60, settle_s=0):
        assert json.loads(path.read_text())["token"] != "dead"
    assert not path.exists()


def test_a_held_lease_is_renewed(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "lease"
    with lease(spark, path, "pricing ingest", 1.0, ttl_s=10, settle_s=0):
        first = json.loads(path.read_text())["expires_at"]
        time.sleep(4.5)  # renewed every ttl / 3
        assert json.loads(path.read_text())["expires_at"] > first


def test_the_configured_lock_is_used(spark: SparkSession, tmp_path: Path) -> None:
    for kind in ("flock", "filesystem", "none"):
        cfg = load_config("local", [f"storage.root={tmp_path / kind}", f"storage.lock={kind}"])
        with job_lock(spark, cfg, "ingest.lock", "pricing ingest", 1.0) as held:
            assert str(held) == str(tmp_path / kind / "locks" / "ingest.lock")
            assert Path(held).exists() == (kind != "none")
