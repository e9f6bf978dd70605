"""The Databricks Asset Bundle, checked offline: every job against the official models (``databricks-bundles``),
the task graphs, the variables and targets, and its agreement with conf/ and pyproject.toml.  Each failure path
mutates a copy of the real YAML and asserts the message names the bad key or task."""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from databricks.bundles.jobs import DataSecurityMode, Job

from pricing.platform.config import load_config
from pricing.platform.errors import ConfigError
from pricing.platform.spark import CODEGEN_CACHE
from pricing.workflow.bundle import Bundle, load_bundle, load_validated, problems, target_resources
from pricing.workflow.dag import load_tasks
from pricing.workflow.runner import JOBS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_validated(ROOT)


def _params(task: dict[str, Any]) -> list[str]:
    return [str(p) for p in task["python_wheel_task"]["parameters"]]


def _sets(task: dict[str, Any]) -> list[str]:
    params = _params(task)
    return [params[i + 1] for i, p in enumerate(params) if p == "--set"]


# ---- the real bundle -------------------------------------------------------------------------------------------
def test_the_bundle_has_no_problems(bundle: Bundle) -> None:
    assert problems(bundle) == []
    assert set(bundle.jobs) == {"pricing_training", "pricing_scoring"}
    assert {t: bundle.targets[t]["mode"] for t in bundle.targets} == {"dev": "development", "prod": "production"}
    assert bundle.targets["dev"]["presets"]["trigger_pause_status"] == "PAUSED"


def test_the_official_job_model_reads_every_job(bundle: Bundle) -> None:
    for key, job in bundle.jobs.items():
        model = Job.from_dict(job.spec)
        assert [t.task_key for t in model.tasks] == [t["task_key"] for t in job.tasks], key
        # xgboost.spark trains in barrier mode: classic dedicated clusters only, never serverless.
        assert model.job_clusters, key
        for cluster in model.job_clusters:
            assert cluster.new_cluster.data_security_mode == DataSecurityMode.SINGLE_USER, key
        assert all(t.job_cluster_key for t in model.tasks), f"{key}: a task without a job cluster runs serverless"


def test_training_job_order_and_task_values(bundle: Bundle) -> None:
    tasks = load_tasks(ROOT, "pricing_training")
    assert [t.key for t in tasks] == ["generate", "ingest", "match", "features", "validate", "train", "promote", "demand",
                                      "score", "recommend"]
    by_key = {t["task_key"]: t for t in bundle.jobs["pricing_training"].tasks}
    assert "promote.challenger_version={{tasks.train.values.model_version}}" in _sets(by_key["promote"])
    assert "score.champion_version={{tasks.promote.values.champion_version}}" in _sets(by_key["score"])
    assert "train.num_workers=${var.workers}" in _sets(by_key["train"])
    # recommend prices with the champions promote and demand decided on, after the catalogue is scored.
    assert {d["task_key"] for d in by_key["recommend"]["depends_on"]} == {"score", "demand"}
    assert "score.champion_version={{tasks.promote.values.champion_version}}" in _sets(by_key["recommend"])
    assert "recommend.demand_version={{tasks.demand.values.demand_version}}" in _sets(by_key["recommend"])
    for key in ("demand", "recommend"):
        assert "mlflow.demand_model_name=${var.demand_model_name}" in _sets(by_key[key]), key
    # The training cluster gives each xgboost worker a whole node; ETL keeps one task per core.  The demand
    # classifier is xgboost.spark too: on the training cluster after train, so two barrier stages never overlap.
    assert by_key["train"]["job_cluster_key"] == by_key["demand"]["job_cluster_key"] == "training"
    assert [d["task_key"] for d in by_key["demand"]["depends_on"]] == ["train"]
    assert "train.num_workers=${var.workers}" in _sets(by_key["demand"])
    # A wheel on a cluster is no git checkout: the runs and model versions take the commit from the bundle.
    for key in ("train", "demand"):
        assert "mlflow.git_commit=${bundle.git.commit}" in _sets(by_key[key]), key
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in bundle.jobs["pricing_training"].spec["job_clusters"]}
    assert clusters["training"]["spark_conf"]["spark.task.cpus"] == "${var.cores_per_worker}"
    assert "spark.task.cpus" not in clusters["etl"]["spark_conf"]


def test_every_job_cluster_keeps_as_many_generated_classes_as_a_local_session(bundle: Bundle) -> None:
    key, value = CODEGEN_CACHE
    for name, job in bundle.jobs.items():
        for cluster in job.spec["job_clusters"]:
            assert cluster["new_cluster"]["spark_conf"].get(key) == value, (name, cluster["job_cluster_key"])


def test_scoring_job_scores_with_the_current_champion(bundle: Bundle) -> None:
    tasks = load_tasks(ROOT, "pricing_scoring")
    assert [t.key for t in tasks] == ["generate", "ingest", "match", "features", "validate", "score", "recommend"]
    assert all(t.overrides == () for t in tasks)
    recommend = {t["task_key"]: t for t in bundle.jobs["pricing_scoring"].tasks}["recommend"]
    assert "mlflow.demand_model_name=${var.demand_model_name}" in _sets(recommend)


def _cron_hour(expr: str) -> int:
    sec, minute, hour, dom, month, dow = expr.split()
    assert sec == "0" and minute == "0" and hour.isdigit(), expr
    return int(hour)


def test_schedules_weekly_training_daily_scoring_never_overlapping(bundle: Bundle) -> None:
    variables = bundle.target_variables("prod")
    training = bundle.jobs["pricing_training"].spec
    scoring = bundle.jobs["pricing_scoring"].spec
    assert training["schedule"]["timezone_id"] == scoring["schedule"]["timezone_id"] == "UTC"
    t_cron = variables[training["schedule"]["quartz_cron_expression"].removeprefix("${var.").rstrip("}")]
    s_cron = variables[scoring["schedule"]["quartz_cron_expression"].removeprefix("${var.").rstrip("}")]
    assert t_cron.split()[5] in ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"), "training runs weekly"
    assert s_cron.split()[3] in ("*", "?") and s_cron.split()[5] in ("*", "?"), "scoring runs every day"
    # Both jobs ingest through one checkpoint: training must have been stopped before scoring starts.
    assert _cron_hour(t_cron) * 3600 + training["timeout_seconds"] <= _cron_hour(s_cron) * 3600


def test_every_job_and_task_has_limits_retries_and_alerts(bundle: Bundle) -> None:
    for key, job in bundle.jobs.items():
        spec = job.spec
        assert spec["max_concurrent_runs"] == 1 and spec["queue"]["enabled"] is True, key
        assert spec["email_notifications"]["on_failure"] == ["${var.notification_email}"], key
        task_timeouts = [t["timeout_seconds"] for t in job.tasks]
        assert all(0 < s <= spec["timeout_seconds"] for s in task_timeouts), key
        for t in job.tasks:
            assert "max_retries" in t, f"{key}.{t['task_key']}: retries must be a decision, not a default"
        by_key = {t["task_key"]: t for t in job.tasks}
        # A blocking expectation fails identically on every attempt.
        assert by_key["validate"]["max_retries"] == 0, key


def test_every_task_calls_the_pricing_entry_point_with_real_config_keys(bundle: Bundle) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    config = load_config("local").model_dump(by_alias=True)
    for key, job in bundle.jobs.items():
        for t in job.tasks:
            where = f"{key}.{t['task_key']}"
            wheel = t["python_wheel_task"]
            assert wheel["package_name"] == project["name"].replace("-", "_"), where
            assert wheel["entry_point"] in project["scripts"], where
            params = _params(t)
            assert params[:2] == ["--env", "${bundle.target}"], where
            assert params[-1] in JOBS and params[-1] == t["task_key"], where
            for override in _sets(t):
                node: Any = config
                for part in override.split("=", 1)[0].split("."):
                    assert isinstance(node, dict) and part in node, f"{where}: --set {override}: no config key {part!r}"
                    node = node[part]


def test_wheel_libraries_point_at_the_built_artifact(bundle: Bundle) -> None:
    artifact = bundle.config["artifacts"]["pricing_wheel"]
    out_dir = re.search(r"-w (\S+)", artifact["build"]).group(1)  # type: ignore[union-attr]
    dist = (ROOT / artifact["path"] / out_dir).resolve()
    for job in bundle.jobs.values():
        for t in job.tasks:
            # Paths in a resource file are relative to that file, not to the bundle root.
            wheels = [(job.source.parent / lib["whl"]).parent.resolve() for lib in t["libraries"]]
            assert wheels == [dist], f"{job.key}.{t['task_key']}: {t['libraries']}"


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_conf_agrees_with_the_bundle_target(bundle: Bundle, target: str) -> None:
    v = bundle.target_variables(target)
    cfg = load_config(target)
    assert cfg.storage.catalog == v["catalog"]
    assert cfg.storage.schemas["ml"] == v["schema"]
    assert cfg.mlflow.experiment == v["experiment"]
    assert cfg.mlflow.model_name == v["model_name"]
    assert cfg.mlflow.demand_model_name == v["demand_model_name"]
    for name in ("model_name", "demand_model_name"):
        assert v[name].startswith(f"{v['catalog']}.{v['schema']}.") and v[name].count(".") == 2, name
    assert cfg.train.num_workers == int(v["workers"])
    # Non-table state on the target's Volume, the same path the tasks pass.
    assert cfg.storage.root == f"/Volumes/{v['catalog']}/{v['schema']}/{v['state_volume']}"


# ---- failure paths, on a mutated copy of the real YAML -----------------------------------------------------------
def _copy(tmp_path: Path, mutate: Callable[[dict[str, Any]], None], file: str = "resources/pricing_training.yml") -> Path:
    (tmp_path / "resources").mkdir()
    shutil.copy(ROOT / "databricks.yml", tmp_path / "databricks.yml")
    for f in (ROOT / "resources").glob("*.yml"):
        shutil.copy(f, tmp_path / "resources" / f.name)
    doc = yaml.safe_load((tmp_path / file).read_text())
    mutate(doc)
    (tmp_path / file).write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp_path


def _task(doc: dict[str, Any], key: str, job: str = "pricing_training") -> dict[str, Any]:
    return next(t for t in doc["resources"]["jobs"][job]["tasks"] if t["task_key"] == key)


def _rename(d: dict[str, Any], old: str, new: str) -> None:
    d[new] = d.pop(old)


def test_the_copy_itself_is_valid(tmp_path: Path) -> None:
    assert problems(load_bundle(_copy(tmp_path, lambda doc: None))) == []


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: _rename(_task(d, "features"), "depends_on", "depend_on"),
     r"tasks\[features\]: unknown key 'depend_on' for Task \(did you mean 'depends_on'\?\)"),
    (lambda d: _rename(_task(d, "train"), "max_retries", "max_retires"),
     r"tasks\[train\]: unknown key 'max_retires' for Task \(did you mean 'max_retries'\?\)"),
    (lambda d: _rename(d["resources"]["jobs"]["pricing_training"], "max_concurrent_runs", "max_concurent_runs"),
     r"resources\.jobs\.pricing_training: unknown key 'max_concurent_runs' for Job"),
    (lambda d: _rename(d["resources"]["jobs"]["pricing_training"]["job_clusters"][1]["new_cluster"],
                       "num_workers", "num_worker"),
     r"job_clusters\[training\]\.new_cluster: unknown key 'num_worker' for ClusterSpec \(did you mean "
     r"'num_workers'\?\)"),
    (lambda d: d["resources"]["jobs"]["pricing_training"]["job_clusters"][0]["new_cluster"].update(
        data_security_mode="SINGLE_USR"),
     r"new_cluster\.data_security_mode: 'SINGLE_USR' is not a valid DataSecurityMode"),
    (lambda d: _task(d, "score").update(timeout_seconds="an hour"),
     r"tasks\[score\]\.timeout_seconds: invalid literal for int\(\)"),
])
def test_the_official_models_reject_a_bad_key_naming_it(tmp_path: Path, mutate: Callable[[dict[str, Any]], None],
                                                          expected: str) -> None:
    found = problems(load_bundle(_copy(tmp_path, mutate)))
    assert len(found) == 1 and re.search(expected, found[0]), found
    assert found[0].startswith(str(tmp_path / "resources" / "pricing_training.yml"))


def test_a_misspelt_key_also_stops_the_local_runner(tmp_path: Path) -> None:
    root = _copy(tmp_path, lambda d: _rename(_task(d, "promote"), "depends_on", "depend_on"))
    with pytest.raises(ConfigError, match=r"tasks\[promote\]: unknown key 'depend_on'"):
        load_tasks(root, "pricing_training")


def test_a_dependency_on_an_unknown_task_is_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path, lambda d: _task(d, "features").update(depends_on=[{"task_key": "ingset"}]))
    found = problems(load_bundle(root))
    assert found == [f"{root / 'resources' / 'pricing_training.yml'}: job 'pricing_training': task 'features' "
                     "depends on unknown task 'ingset'; tasks are generate, ingest, match, features, validate, "
                     "train, promote, demand, score, recommend"]
    with pytest.raises(ConfigError, match="task 'features' depends on unknown task 'ingset'"):
        load_tasks(root, "pricing_training")


def test_a_dependency_cycle_is_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path, lambda d: _task(d, "generate").update(depends_on=[{"task_key": "score"}]))
    found = problems(load_bundle(root))
    assert len(found) == 1 and "dependency cycle" in found[0] and "score" in found[0], found


def test_a_task_value_from_a_task_that_is_not_upstream_is_rejected(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _task(d, "validate")["python_wheel_task"]["parameters"][-1:-1] = [
            "--set", "promote.challenger_version={{tasks.train.values.model_version}}"]

    found = problems(load_bundle(_copy(tmp_path, mutate)))
    assert len(found) == 1, found
    assert ("task 'validate' references {{tasks.train.values.model_version}}, but 'train' is not upstream of "
            "'validate'") in found[0]


def test_a_task_value_from_a_task_the_job_does_not_have_is_rejected(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _task(d, "score", "pricing_scoring")["python_wheel_task"]["parameters"][-1:-1] = [
            "--set", "score.champion_version={{tasks.promote.values.champion_version}}"]

    root = _copy(tmp_path, mutate, "resources/pricing_scoring.yml")
    found = problems(load_bundle(root))
    assert len(found) == 1 and "task 'score' references {{tasks.promote.values.champion_version}}, but there is " \
                               "no task 'promote'" in found[0], found
    with pytest.raises(ConfigError, match="no task 'promote'"):
        load_tasks(root, "pricing_scoring")


def test_an_undeclared_variable_is_rejected(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        params = _task(d, "train")["python_wheel_task"]["parameters"]
        params[params.index("train.num_workers=${var.workers}")] = "train.num_workers=${var.worker}"

    found = problems(load_bundle(_copy(tmp_path, mutate)))
    assert len(found) == 1 and "${var.worker} names undeclared variable 'worker'" in found[0], found


def test_targets_may_only_set_declared_variables_and_must_give_each_a_value(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["targets"]["prod"]["variables"]["clusters"] = 3
        del d["variables"]["schema"]["default"]
        del d["targets"]["prod"]["variables"]["schema"]

    found = problems(load_bundle(_copy(tmp_path, mutate, "databricks.yml")))
    assert sorted(p.split(": ", 1)[1] for p in found) == [
        "target 'prod' sets undeclared variable 'clusters'",
        "variable 'schema' has no default and target 'prod' does not set it",
    ]


def test_unknown_top_level_and_target_keys_are_rejected(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _rename(d, "variables", "varaibles")
        d["targets"]["prod"]["mode"] = "prod"

    found = problems(load_bundle(_copy(tmp_path, mutate, "databricks.yml")))
    assert any("unknown top-level key 'varaibles' (did you mean 'variables'?)" in p for p in found), found
    assert any("target 'prod': mode 'prod' is not one of development, production" in p for p in found), found


# ---- Unity Catalog objects, state on a Volume, run_as and permissions -------------------------------------------
STATE_ROOT = "storage.root=/Volumes/${var.catalog}/${var.schema}/${var.state_volume}"


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_each_target_declares_its_unity_catalog_objects(bundle: Bundle, target: str) -> None:
    from databricks.bundles.experiments import MlflowExperiment
    from databricks.bundles.registered_models import RegisteredModel
    from databricks.bundles.schemas import Schema
    from databricks.bundles.volumes import Volume, VolumeType

    cfg = load_config(target)
    catalog = cfg.storage.catalog
    schemas = target_resources(bundle, target, "schemas")
    # One schema per storage layer, in the target's catalog, each documented.
    assert {(s["catalog_name"], s["name"]) for s in schemas.values()} == \
        {(catalog, name) for name in cfg.storage.schemas.values()}
    assert all(Schema.from_dict(s).comment for s in schemas.values())
    volumes = target_resources(bundle, target, "volumes")
    state = Volume.from_dict(volumes["state"])
    assert state.volume_type == VolumeType.MANAGED and state.comment
    assert f"/Volumes/{state.catalog_name}/{state.schema_name}/{state.name}" == cfg.storage.root
    models = {k: RegisteredModel.from_dict(m) for k, m in target_resources(bundle, target, "registered_models").items()}
    assert {f"{m.catalog_name}.{m.schema_name}.{m.name}" for m in models.values()} == \
        {cfg.mlflow.model_name, cfg.mlflow.demand_model_name}
    for key, m in models.items():
        assert m.comment and m.grants, key
        assert all(g.principal and g.privileges for g in m.grants), key
    experiments = [MlflowExperiment.from_dict(e) for e in target_resources(bundle, target, "experiments").values()]
    assert [e.name for e in experiments] == [cfg.mlflow.experiment]


def test_every_task_keeps_its_state_on_the_volume_and_local_runs_do_not(bundle: Bundle) -> None:
    for key, job in bundle.jobs.items():
        for t in job.tasks:
            assert STATE_ROOT in _sets(t), f"{key}.{t['task_key']}"
        # The local runner drops bundle substitutions: local runs keep conf/local.yml's .pricing/.
        for task in load_tasks(ROOT, key):
            assert not any(o.startswith("storage.root=") for o in task.overrides), task.key


def test_prod_runs_as_a_service_principal_with_group_permissions(bundle: Bundle) -> None:
    prod = bundle.targets["prod"]
    assert prod["run_as"] == {"service_principal_name": "${var.service_principal}"}
    assert {"level": "CAN_MANAGE", "group_name": "${var.admin_group}"} in prod["permissions"]
    assert {"level": "CAN_VIEW", "group_name": "users"} in prod["permissions"]
    assert "run_as" not in bundle.targets["dev"]
    # Schemas keep their names in development mode, or dev tables would not be where conf/dev.yml says.
    assert bundle.config["experimental"]["skip_name_prefix_for_schema"] is True


UC = "resources/unity_catalog.yml"


@pytest.mark.parametrize(("file", "mutate", "expected"), [
    (UC, lambda d: _rename(d["resources"]["volumes"]["state"], "volume_type", "volume_typ"),
     r"resources\.volumes\.state: unknown key 'volume_typ' for Volume \(did you mean 'volume_type'\?\)"),
    (UC, lambda d: d["resources"]["volumes"]["state"].update(volume_type="MANAGD"),
     r"resources\.volumes\.state\.volume_type: 'MANAGD' is not a valid VolumeType"),
    (UC, lambda d: _rename(d["resources"]["registered_models"]["price"], "comment", "coment"),
     r"resources\.registered_models\.price: unknown key 'coment' for RegisteredModel \(did you mean 'comment'\?\)"),
    (UC, lambda d: d["resources"]["schemas"]["silver"]["grants"][1].update(privileges=["USE_SCHEMA", "SELCT"]),
     r"resources\.schemas\.silver\.grants\[\$\{var\.reader_group\}\]\.privileges: 'SELCT' is not a valid Privilege"),
    (UC, lambda d: d["resources"]["schemas"]["truth"].pop("catalog_name"),
     r"resources\.schemas\.truth: missing required key\(s\) catalog_name for Schema"),
    (UC, lambda d: _rename(d["resources"]["experiments"]["pricing"], "name", "nmae"),
     r"resources\.experiments\.pricing: unknown key 'nmae' for MlflowExperiment"),
    (UC, lambda d: _rename(d["resources"], "volumes", "volume"),
     r"unknown resource type 'volume' \(did you mean 'volumes'\?\)"),
    ("databricks.yml", lambda d: d["targets"]["prod"]["permissions"][0].update(level="CAN_MANAGES"),
     r"target 'prod': permissions\[0\]: level 'CAN_MANAGES' is not one of CAN_VIEW, CAN_RUN, CAN_MANAGE"),
    ("databricks.yml", lambda d: _rename(d["targets"]["prod"]["run_as"], "service_principal_name", "service_principal"),
     r"target 'prod': run_as: unknown key 'service_principal' for run_as \(did you mean 'service_principal_name'\?\)"),
])
def test_a_typo_in_a_unity_catalog_object_or_access_rule_is_reported(
        tmp_path: Path, file: str, mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
    found = problems(load_bundle(_copy(tmp_path, mutate, file)))
    assert found and all(p.startswith(str(tmp_path / file)) for p in found), found
    assert any(re.search(expected, p) for p in found), found
