"""Training and the champion/challenger gate on the real stack: xgboost.spark, Delta, MLflow (SQLite registry).

Each scenario uses its own registered model name in the shared test store, on the training table the
session's workflow built.
"""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from jobs import promote, train
from pricing.platform import delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.tables import table

pytestmark = pytest.mark.slow

WEAK = ["train.booster.max_depth=1", "train.booster.n_estimators=40", "train.booster.learning_rate=0.3"]
"""Stumps: an additive model that still beats the baselines but is clearly worse than depth-6 trees."""
ONE_FIT = ["train.intervals=conformal", "features.comparables=false"]
"""One booster per training run (no quantile boosters, no comparables ablation): what the gate, reproducibility
and tuning scenarios need, at a third of the default's fits.  The default recipe is tested on the workflow's run."""


def _client(cfg: Config) -> MlflowClient:
    tracking.setup(cfg)
    return MlflowClient()


def _champion(cfg: Config) -> int | None:
    return tracking.alias_version(_client(cfg), cfg.mlflow.model_name, tracking.CHAMPION)


def test_a_worse_model_is_never_promoted_and_a_better_one_is(spark, cfg, workflow) -> None:
    gate = cfg.with_overrides(["mlflow.model_name=gate_test", *ONE_FIT])
    weak = gate.with_overrides(WEAK)
    client = _client(gate)

    first = train.run(spark, weak).rows_out["model_version"]
    assert promote.run(spark, gate).info["decision"] == "promoted"  # no champion yet, and it is sane
    assert _champion(gate) == first

    better = train.run(spark, gate).rows_out["model_version"]
    decision = promote.run(spark, gate).info
    assert decision["decision"] == "promoted", decision
    assert _champion(gate) == better
    mv = client.get_model_version(gate.mlflow.model_name, str(better))
    assert mv.tags["promotion_decision"] == "promoted"
    assert float(mv.tags["holdout_rmsle"]) < float(mv.tags["champion_holdout_rmsle"])

    worse = train.run(spark, weak).rows_out["model_version"]
    assert tracking.alias_version(client, gate.mlflow.model_name, tracking.CHALLENGER) == worse  # sane, yet worse
    decision = promote.run(spark, gate).info
    assert decision["decision"] == "rejected" and "not better" in decision["reasons"][0]
    assert _champion(gate) == better
    assert client.get_model_version(gate.mlflow.model_name, str(worse)).tags["promotion_decision"] == "rejected"


def test_same_data_version_and_seed_give_the_same_metrics(spark, cfg, workflow) -> None:
    repro = cfg.with_overrides(["mlflow.model_name=repro_test", *ONE_FIT])
    client = _client(repro)
    runs = [train.run(spark, repro).info["mlflow_run_id"] for _ in range(2)]
    a, b = (client.get_run(r).data for r in runs)
    assert a.params["cfg.train.booster.seed"] == b.params["cfg.train.booster.seed"]
    assert a.params["training_table_version"] == b.params["training_table_version"]
    tested = {k: v for k, v in a.metrics.items() if k.startswith(("test_", "baseline_", "noise_floor"))}
    assert len(tested) > 10
    assert tested == {k: b.metrics[k] for k in tested}


def test_the_run_carries_what_a_reviewer_needs(spark, cfg, workflow) -> None:
    client = _client(cfg)
    champion = client.get_model_version_by_alias(cfg.mlflow.model_name, tracking.CHAMPION)
    run = client.get_run(champion.run_id)
    artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
    artifacts |= {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
    assert {"model_card.md", "segment_metrics.csv", "config.yml", "plots/feature_importance.png",
            "plots/residuals.png", "plots/calibration.png"} <= artifacts
    m = run.data.metrics
    for key in ("test_rmsle", "test_mae", "test_mape", "test_pinball_p10", "test_pinball_p50", "test_pinball_p90",
                "test_coverage_80", "test_width_80", "noise_floor_rmsle", "rmsle_over_noise_floor",
                "structured_oracle_rmsle", "rmsle_over_structured_oracle", "test_coverage_80_min_segment",
                "holdout_rmsle", "holdout_coverage_80", "holdout_best_baseline_rmsle"):
        assert key in m, key
    # The split by listing time: its windows and rows are on the run; the gate's holdout is not the test rows.
    p = run.data.params
    assert p["valid_start"] < p["calib_start"] < p["test_start"] < p["test_end"]
    assert int(p["rows_test"]) > 0 and int(p["rows_holdout"]) > 0
    assert run.data.tags["intervals"] == "cqr"
    assert len(client.get_metric_history(run.info.run_id, "valid_rmse")) > 5  # per-iteration validation loss
    assert run.data.params["training_table_version"].isdigit()
    assert run.data.tags["git_commit"] and run.data.params["cfg.train.num_workers"] == "1"
    assert run.data.params["xgboost_threads_per_worker"] == "2"  # one local worker with both cores of local[2]
    inputs = run.inputs.dataset_inputs
    assert [d.dataset.name for d in inputs] == ["features.training_set"]
    assert inputs[0].tags[0].value == "training"
    # The profile is the table version's exact row count (MLflow's own pickles every row into Python to count).
    version = int(run.data.params["training_table_version"])
    rows = delta_io.read(spark, table(cfg, "features.training_set"), version=version).count()
    assert json.loads(inputs[0].dataset.profile) == {"approx_count": rows}
    segments = client.download_artifacts(run.info.run_id, "segment_metrics.csv")
    with open(segments) as fh:
        dims = {line.split(",")[0] for line in fh.readlines()[1:]}
    assert dims == {"category", "brand_tier", "price_band", "condition", "seller_type"}
    # MLflow 3 links: the version is the run's logged model, which carries the run's metrics; the model card is
    # the version's description; the version names the commit the run did.
    (output,) = run.outputs.model_outputs
    assert champion.source == f"models:/{output.model_id}"
    linked = {x.key: x.value for x in mlflow.get_logged_model(output.model_id).metrics or []}
    assert linked["test_rmsle"] == m["test_rmsle"] and linked["test_coverage_80"] == m["test_coverage_80"]
    with open(client.download_artifacts(run.info.run_id, "model_card.md")) as fh:
        assert champion.description == fh.read()
    assert champion.tags["git_commit"] == run.data.tags["git_commit"]


def test_demand_and_scoring_runs_link_their_models_and_outputs(spark, cfg, workflow) -> None:
    client = _client(cfg)
    demand = client.get_model_version_by_alias(cfg.mlflow.demand_model_name, tracking.CHAMPION)
    run = client.get_run(demand.run_id)
    (output,) = run.outputs.model_outputs
    assert demand.source == f"models:/{output.model_id}"
    linked = {x.key: x.value for x in mlflow.get_logged_model(output.model_id).metrics or []}
    assert linked["test_logloss"] == run.data.metrics["test_logloss"]
    assert demand.tags["git_commit"] == run.data.tags["git_commit"]
    # The scoring run names the model version it used and the Delta version it wrote: that version of
    # ml.price_suggestions holds its scoring date's rows, all priced by that model version.
    exp = client.get_experiment_by_name(cfg.mlflow.experiment).experiment_id
    score = client.search_runs([exp], "tags.job = 'score'", order_by=["attributes.start_time DESC"])[0].data
    assert score.params["model_uri"] == f"models:/{cfg.mlflow.model_name}/{score.params['model_version']}"
    written = delta_io.read(spark, table(cfg, "ml.price_suggestions"), version=int(score.params["output_table_version"]))
    versions = written.where(F.col("scoring_date") == F.lit(score.tags["scoring_date"]).cast("date")).select(
        "model_version").distinct().collect()
    assert [r.model_version for r in versions] == [int(score.params["model_version"])]


def test_tuning_runs_each_trial_as_a_nested_run(spark, cfg, workflow) -> None:
    tuned = cfg.with_overrides(["mlflow.model_name=tuning_test", *ONE_FIT, "train.tuning.enabled=true",
                                "train.tuning.n_trials=2", "train.booster.n_estimators=20"])
    client = _client(tuned)
    parent = train.run(spark, tuned).info["mlflow_run_id"]
    exp = client.get_run(parent).info.experiment_id
    trials = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(r.info.run_name for r in trials) == ["trial-0", "trial-1"]
    assert all("valid_rmsle" in r.data.metrics for r in trials)
    best = min(r.data.metrics["valid_rmsle"] for r in trials)
    assert client.get_run(parent).data.metrics["tuning_best_valid_rmsle"] == pytest.approx(best)


def test_too_many_workers_fail_fast_with_a_clear_message(spark, cfg, workflow) -> None:
    from pricing.platform.errors import ConfigError

    with pytest.raises(ConfigError, match=r"num_workers=3 .* only 2 tasks at once"):
        train.run(spark, cfg.with_overrides(["train.num_workers=3"]))
