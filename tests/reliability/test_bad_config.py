"""Bad config and arguments fail with a clear message before any write: unknown keys, wrong types, missing
tables, and names carrying SQL.  (Config-file level checks live in ``tests/test_config.py``; these go through the
``pricing`` command and the jobs themselves.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from pricing.platform import delta_io
from pricing.platform.errors import ConfigError, MissingTableError, ModelGateError
from pricing.platform.tables import TableRef, table
from pricing.workflow.cli import main, run_job
from tests.reliability.support import tiny_cfg

SQL = ["x; DROP TABLE silver.listings", "x`y", "o'hare", 'a"b', "a b", "a--b", "a/*b*/", "a.b"]


def _cli(capsys: pytest.CaptureFixture[str], root: Path, *sets: str, job: str = "score") -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*[a for s in (f"storage.root={root}", *sets) for a in ("--set", s)], job])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert not root.exists(), "a failed configuration created state"
    return err


@pytest.mark.parametrize(("sets", "expected"), [
    (["train.num_wrokers=2"], "unknown key"),
    (["nosuchsection.key=1"], "unknown key"),
    (["train.num_workers=two"], "train.num_workers"),
    (["train.num_workers=0"], "train.num_workers"),
    (["score.scoring_date=yesterday"], "score.scoring_date"),
    (["simulator.bad_record_rate=0.9"], "simulator.bad_record_rate"),
    (["storage.schemas={bronze: 'b; DROP TABLE x', silver: s, features: f, ml: m, truth: t}"], "identifier"),
    (["storage.catalog=main`; DROP SCHEMA x"], "identifier"),
    (["mlflow.model_name=price'); DELETE FROM x; --"], "identifier"),
    (["storage.root=/tmp/a`b"], "back-quote"),
])
def test_bad_settings_exit_2_with_the_key_named_before_anything_is_written(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, sets: list[str], expected: str) -> None:
    err = _cli(capsys, tmp_path / "state", *sets)
    assert expected in err and "error:" in err


@pytest.mark.parametrize("bad", SQL)
def test_table_names_carrying_sql_are_refused(bad: str) -> None:
    cfg = tiny_cfg(Path("/nonexistent"))
    with pytest.raises(ConfigError):
        table(cfg, f"bronze.{bad}")
    with pytest.raises(ConfigError):
        table(cfg, f"{bad}.listings")
    # Names reaching SQL are back-quoted part by part; a path carrying a back-quote is refused.
    assert TableRef("x", full_name="main.bronze.listings").sql == "`main`.`bronze`.`listings`"
    with pytest.raises(ConfigError, match="back-quote"):
        _ = TableRef("x", path="/tmp/a`; DROP TABLE y").sql


def test_merge_keys_carrying_back_quotes_are_refused(spark: SparkSession, tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path)
    ref = table(cfg, "bronze.listings_raw")
    with pytest.raises(ValueError, match="back-quote"):
        delta_io.merge(spark, spark.range(1), ref, ["id` = 1 OR `x"])
    assert not delta_io.exists(spark, ref)


@pytest.mark.parametrize(("job", "error", "names"), [
    ("features", MissingTableError, "silver.listings"),
    ("match", MissingTableError, "silver.listings"),
    ("train", MissingTableError, "features.training_set"),
    ("score", ModelGateError, "champion"),
])
def test_a_job_whose_input_tables_are_missing_says_which_and_writes_nothing(
        spark: SparkSession, tmp_path: Path, job: str, error: type[Exception], names: str) -> None:
    cfg = tiny_cfg(tmp_path / "state")
    with pytest.raises(error) as err:
        run_job(job, spark, cfg)
    assert names in str(err.value) and "pricing" in str(err.value)
    assert not list((cfg.state_dir / "warehouse").glob("*/*/_delta_log")), "a table was written"
