"""The local runner over the real bundle: order, task values handed downstream, saved values for ``--from``, and
the failure paths.  The job functions are replaced by a recorder (the jobs themselves are tested on the real stack
in tests/jobs, test_end_to_end and workflow/test_deployed): what is under test here is what each task is given."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from pricing.platform.config import Config, load_config
from pricing.platform.errors import ConfigError, ModelGateError
from pricing.platform.summary import JobSummary
from pricing.workflow.dag import load_tasks, run_workflow, values_path
from pricing.workflow.task_values import TaskValue, check_values, publish, resolve

ROOT = Path(__file__).resolve().parents[1]
NO_SPARK: SparkSession = None  # type: ignore[assignment]  # the recorder never touches Spark


class Recorder:
    """Runs no job: records the config each task gets and returns the values it is told to publish."""

    def __init__(self, publishes: Mapping[str, dict[str, TaskValue]], fail: str | None = None) -> None:
        self.publishes = publishes
        self.fail = fail
        self.ran: list[str] = []
        self.cfgs: dict[str, Config] = {}

    def __call__(self, job: str, spark: SparkSession, cfg: Config) -> JobSummary:
        self.ran.append(job)
        self.cfgs[job] = cfg
        if job == self.fail:
            raise ModelGateError(f"{job} refused")
        return JobSummary(job, task_values=dict(self.publishes.get(job, {})))


@pytest.fixture
def local_cfg(tmp_path: Path) -> Config:
    return load_config("local", [f"storage.root={tmp_path / 'state'}"])


TRAINING = {"train": {"model_version": 7}, "promote": {"champion_version": 7}, "demand": {"demand_version": 3}}
TRAINING_KEYS = ["generate", "ingest", "match", "features", "validate", "train", "promote", "demand", "score",
                 "recommend"]


# ---- reading the bundle ----------------------------------------------------------------------------------------
def test_local_runner_reads_the_bundle_task_graph_in_order() -> None:
    tasks = load_tasks(ROOT, "pricing_training")
    assert [t.key for t in tasks] == [t.job for t in tasks] == TRAINING_KEYS
    # Bundle variables are meaningless locally, so only the task-value overrides are kept.
    by_key = {t.key: t for t in tasks}
    assert by_key["train"].overrides == ()
    assert by_key["promote"].overrides == ("promote.challenger_version={{tasks.train.values.model_version}}",)
    assert by_key["score"].needs == {"promote"}
    # The demand model needs no price-model champion: it follows train (on the training cluster, never beside it).
    assert by_key["demand"].depends_on == ("train",) and by_key["demand"].needs == set()
    assert set(by_key["recommend"].depends_on) == {"score", "demand"}
    assert by_key["recommend"].needs == {"promote", "demand"}


def test_unknown_job_fails_naming_the_jobs() -> None:
    with pytest.raises(ConfigError, match="no bundle job 'nonexistent'.*jobs are: pricing_scoring, pricing_training"):
        load_tasks(ROOT, "nonexistent")


def test_a_bundle_without_databricks_yml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="databricks.yml not found"):
        load_tasks(tmp_path, "pricing_training")


# ---- task values -----------------------------------------------------------------------------------------------
def test_resolve_substitutes_published_values() -> None:
    values = {"train": {"model_version": 12, "run_id": "abc"}}
    assert resolve("promote.challenger_version={{tasks.train.values.model_version}}", values) == \
        "promote.challenger_version=12"
    assert resolve("x={{ tasks.train.values.run_id }}-{{tasks.train.values.model_version}}", values) == "x=abc-12"
    assert resolve("train.num_workers=2", values) == "train.num_workers=2"


@pytest.mark.parametrize(("param", "values", "known", "message"), [
    ("a={{tasks.trian.values.model_version}}", {}, ["train", "promote"], "names unknown task 'trian'"),
    ("a={{tasks.train.values.model_version}}", {}, ["train", "promote"],
     "needs task 'train', which has not run yet"),
    ("a={{tasks.train.values.model_version}}", {"train": {"run_id": "r"}}, None,
     "task 'train' did not publish 'model_version' \\(it published: run_id\\)"),
    ("a={{job.run_id}}", {}, None, "dynamic value reference {{job.run_id}} cannot be resolved locally"),
])
def test_resolve_names_what_cannot_be_resolved(param: str, values: dict, known: list[str] | None,
                                               message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(param, values, known_tasks=known)


def test_publish_checks_values_the_way_databricks_would() -> None:
    publish({"model_version": 3, "champion_version": ""})  # no Databricks runtime: a check, no call
    assert check_values({"model_version": 3}) == {"model_version": 3}
    with pytest.raises(ConfigError, match="key 'model version' must be"):
        publish({"model version": 3})
    with pytest.raises(ConfigError, match="only str and int"):
        publish({"rmsle": 0.5})
    with pytest.raises(ConfigError, match="limit of 48 KiB"):
        publish({"blob": "x" * 50_000})


# ---- running with task values --------------------------------------------------------------------------------
def test_values_flow_downstream_and_are_saved(local_cfg: Config) -> None:
    rec = Recorder(TRAINING)
    timings = run_workflow(NO_SPARK, local_cfg, runner=rec)
    assert list(timings) == rec.ran == TRAINING_KEYS
    assert rec.cfgs["promote"].promote.challenger_version == 7
    assert rec.cfgs["score"].score.champion_version == 7
    assert rec.cfgs["recommend"].score.champion_version == 7
    assert rec.cfgs["recommend"].recommend.demand_version == 3
    assert rec.cfgs["demand"].recommend.demand_version is None
    assert rec.cfgs["train"].promote.challenger_version is None
    store = values_path(local_cfg, "pricing_training")
    saved = json.loads(store.read_text())
    assert saved["job"] == "pricing_training"
    assert saved["tasks"]["train"] == {"model_version": 7} and saved["tasks"]["promote"] == {"champion_version": 7}
    assert [p.name for p in store.parent.iterdir()] == ["pricing_training.json"]  # no temporary file left


def test_from_a_task_uses_the_values_saved_by_the_last_run(local_cfg: Config) -> None:
    run_workflow(NO_SPARK, local_cfg, runner=Recorder(TRAINING))
    rec = Recorder({})
    assert list(run_workflow(NO_SPARK, local_cfg, from_task="score", runner=rec)) == ["score", "recommend"]
    assert rec.cfgs["score"].score.champion_version == 7
    assert rec.cfgs["recommend"].recommend.demand_version == 3
    # Re-running promote replaces its value; train's saved one is still handed over.
    rec = Recorder({"promote": {"champion_version": 5}, "demand": {"demand_version": 4}})
    run_workflow(NO_SPARK, local_cfg, from_task="promote", runner=rec)
    assert rec.ran == ["promote", "demand", "score", "recommend"]
    assert rec.cfgs["promote"].promote.challenger_version == 7
    assert rec.cfgs["score"].score.champion_version == 5
    assert rec.cfgs["recommend"].score.champion_version == 5 and rec.cfgs["recommend"].recommend.demand_version == 4


def test_from_a_task_without_saved_values_fails_before_running(local_cfg: Config) -> None:
    rec = Recorder(TRAINING)
    store = values_path(local_cfg, "pricing_training")
    with pytest.raises(ConfigError, match=f"use task values of train.*{store} does not exist.*pricing run --job"):
        run_workflow(NO_SPARK, local_cfg, from_task="promote", runner=rec)
    assert rec.ran == []
    # Tasks that need no earlier values start without the file.
    run_workflow(NO_SPARK, local_cfg, from_task="validate", runner=rec)
    assert rec.ran == TRAINING_KEYS[TRAINING_KEYS.index("validate"):]


def test_unreadable_saved_values_are_reported(local_cfg: Config) -> None:
    store = values_path(local_cfg, "pricing_training")
    store.parent.mkdir(parents=True)
    store.write_text('{"job": "pricing_training", "tasks": {"promote": {"champion_version": 1.5}}}')
    with pytest.raises(ConfigError, match="saved task values .* are unreadable .*only str and int"):
        run_workflow(NO_SPARK, local_cfg, from_task="score", runner=Recorder({}))


def test_a_value_not_published_stops_the_task_that_needs_it(local_cfg: Config) -> None:
    rec = Recorder({"promote": {"champion_version": 1}})  # train publishes nothing
    with pytest.raises(ConfigError) as err:
        run_workflow(NO_SPARK, local_cfg, runner=rec)
    assert rec.ran[-1] == "train"
    text = str(err.value)
    assert "task 'promote' failed" in text and "task 'train' did not publish 'model_version'" in text
    assert "not run: demand, score, recommend" in text and "pricing run --job pricing_training --from promote" in text


def test_a_failed_task_stops_the_tasks_after_it(local_cfg: Config) -> None:
    rec = Recorder(TRAINING, fail="validate")
    with pytest.raises(ModelGateError, match="task 'validate' failed: validate refused\n  not run: train, promote, "
                                             "demand, score, recommend\n  resume with: pricing run --job pricing_training --from validate"):
        run_workflow(NO_SPARK, local_cfg, runner=rec)
    assert rec.ran == ["generate", "ingest", "match", "features", "validate"]
    # The tasks that ran are on record, so the resume finds what it needs.
    saved = json.loads(values_path(local_cfg, "pricing_training").read_text())
    assert list(saved["tasks"]) == ["features", "generate", "ingest", "match"]


def test_the_scoring_job_runs_locally_with_the_current_champion(local_cfg: Config) -> None:
    rec = Recorder({})
    assert list(run_workflow(NO_SPARK, local_cfg, job="pricing_scoring", runner=rec)) == \
        ["generate", "ingest", "match", "features", "validate", "score", "recommend"]
    assert rec.cfgs["score"].score.champion_version is None
    assert rec.cfgs["recommend"].recommend.demand_version is None
    assert values_path(local_cfg, "pricing_scoring").exists()
