"""experiment: design, simulate and read seller-randomised A/B tests of pricing policies.

    pricing experiment simulate   # assignment + outcomes of a simulated experiment -> ml.experiment_outcomes
    pricing experiment analyse    # SRM, balance, CUPED / delta-method effects -> ml.experiment_results + MLflow
    pricing experiment design     # power and sample size from the sellers' historical variance

Settings: the ``experiment`` section of the config.  ``simulate`` needs the simulator's ``truth.listings``
(the true demand of every listing); ``analyse`` and ``design`` read only what a real experiment would
have, plus ``truth.experiment_effects`` when it exists, to report whether the intervals cover the truth.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pricing.experiment import analysis as an
from pricing.experiment import design as dz
from pricing.experiment.frames import (
    EXPERIMENTS_SCHEMA,
    OUTCOMES_SCHEMA,
    RESULTS_SCHEMA,
    SIMULATED_SCHEMA,
    TRUTH_SCHEMA,
    Windows,
    created_in,
)
from pricing.experiment.pipeline import (
    EXPERIMENTS,
    MODEL_POLICIES,
    OUTCOMES,
    RESULTS,
    TRUTH,
    TRUTH_COLS,
    default_start,
    design_of,
    experiment_row,
    history_frame,
    log_experiment_run,
    model_suggestions,
    policy_model_versions,
    recorded_truth,
    render_power_table,
    replace_rows,
    require,
    results_rows,
    seller_frame,
    simulate_batches,
)
from pricing.experiment.simulate import (
    EXPECTED_COLUMNS,
    true_effects,
)
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError, DataQualityError, PricingError
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table


def simulate(spark: SparkSession, cfg: Config) -> JobSummary:
    """Simulate the configured experiment on the latest listings; write its design, outcomes and true effects."""
    summary = JobSummary("experiment simulate")
    e = cfg.experiment
    design = design_of(e)
    silver_ref = require(spark, cfg, catalog.SILVER_LISTINGS, "run `pricing generate` and `pricing ingest` first")
    truth_ref = require(spark, cfg, catalog.TRUTH_LISTINGS,
                         "experiments are simulated from the simulator's true demand (`pricing generate`)")
    versions = policy_model_versions(cfg)
    listings = delta_io.read(spark, silver_ref).select("listing_id", "seller_id", "created_at", "list_price")
    first, last = listings.agg(F.min("created_at"), F.max("created_at")).first()
    if last is None:
        raise PricingError("silver.listings is empty: nothing to experiment on")
    start = e.start_date or default_start(last, e.days)
    w = Windows.of(start, e.days, e.horizon_days, e.pre_period_days)
    if first > w.pre_start:
        raise ConfigError(f"experiment.start_date {start} leaves no room for the pre-period: it would begin "
                          f"{w.pre_start:%Y-%m-%d} (start - horizon_days - pre_period_days) but listings begin "
                          f"{first}; choose a later start or a shorter pre_period_days")
    exp = listings.where(created_in(w.start, w.end) & F.col("seller_id").isNotNull() & (F.col("list_price") > 0))
    truth = delta_io.read(spark, truth_ref).select("listing_id", *TRUTH_COLS)
    frame = exp.join(truth, "listing_id").select(
        "listing_id", "seller_id", F.col("list_price").cast("double").alias("own_price"), *TRUTH_COLS)
    for alias in MODEL_POLICIES:
        if alias in versions:
            from pricing.price_model.promotion import (
                load_version,  # the training stack loads only for model policies
            )

            predictor = load_version(cfg.mlflow.model_name, versions[alias])
            frame = frame.join(model_suggestions(spark, cfg, predictor, exp.select("listing_id"), f"{alias}_price"),
                               "listing_id", "left")
        else:
            frame = frame.withColumn(f"{alias}_price", F.lit(None).cast("double"))
    simulated = frame.mapInPandas(simulate_batches(design, e), SIMULATED_SCHEMA).persist()
    sums = simulated.agg(F.count(F.lit(1)).alias("n"), *[F.sum(c).alias(c) for c in EXPECTED_COLUMNS]).first()
    n = int(sums["n"])
    if n == 0:
        raise PricingError(f"no listings with known truth were created in [{w.start:%Y-%m-%d}, {w.end:%Y-%m-%d}): "
                           "nothing to simulate (check experiment.start_date and days)")
    effects = true_effects({c: float(sums[c]) for c in EXPECTED_COLUMNS}, n)
    now = datetime.now(UTC).replace(tzinfo=None)
    design_row = spark.createDataFrame([(
        e.experiment_id, e.control_policy, e.treatment_policy,
        e.price_multiplier if "multiplier" in (e.control_policy, e.treatment_policy) else None,
        versions.get("champion"), versions.get("challenger"), e.treatment_share, e.adoption_rate, e.horizon_days,
        start, e.days, e.pre_period_days, e.seed, e.lost_treatment_share, now)], EXPERIMENTS_SCHEMA)
    truth_rows = spark.createDataFrame(
        [(e.experiment_id, r.metric, float(r.control), float(r.treatment), float(r.effect), float(r.relative_lift))
         for r in effects.itertuples()], TRUTH_SCHEMA)
    outcomes = simulated.select(*[f.name for f in OUTCOMES_SCHEMA.fields])
    for logical, df in ((OUTCOMES, outcomes), (EXPERIMENTS, design_row), (TRUTH, truth_rows)):
        summary.tables[logical] = replace_rows(spark, df, table(cfg, logical), e.experiment_id)
    arms = {r["arm"]: (r["sellers"], r["listings"]) for r in simulated.groupBy("arm").agg(
        F.countDistinct("seller_id").alias("sellers"), F.count(F.lit(1)).alias("listings")).collect()}
    simulated.unpersist()
    summary.rows_in["experiment listings"] = n
    summary.rows_out[OUTCOMES] = n
    summary.info.update({
        "experiment": f"{e.experiment_id}: {e.control_policy} (control) vs {e.treatment_policy} (treatment)"
                      + (" [A/A test]" if e.control_policy == e.treatment_policy else ""),
        "window": f"listings created {w.start:%Y-%m-%d} .. {w.end - timedelta(days=1):%Y-%m-%d}",
        "arms": {a: {"sellers": s, "listings": c} for a, (s, c) in sorted(arms.items())},
        "models": {k: f"v{v}" for k, v in versions.items()} or "none",
        "true effect": {r.metric: round(float(r.effect), 5) for r in effects.itertuples()},
    })
    return summary.finish()


def analyse(spark: SparkSession, cfg: Config) -> JobSummary:
    """Read the experiment: SRM, balance, effects; write ``ml.experiment_results`` and an MLflow run with the report.
    A failed SRM check is printed, tagged and written, and (``fail_on_srm``) then fails the job."""
    summary = JobSummary("experiment analyse")
    e = cfg.experiment
    design = experiment_row(spark, cfg)
    sellers = seller_frame(spark, cfg, design)
    result = an.analyse(sellers, design["treatment_share"], e.alpha, e.correction, e.srm_alpha, e.balance_alpha)
    truth = recorded_truth(spark, cfg, design["experiment_id"])
    run_id = log_experiment_run(cfg, result, design, truth)
    analysed_at = datetime.now(UTC).replace(tzinfo=None)
    rows = spark.createDataFrame(results_rows(result, design, truth, run_id, analysed_at), RESULTS_SCHEMA)
    summary.tables[RESULTS] = replace_rows(spark, rows, table(cfg, RESULTS), design["experiment_id"])
    summary.rows_in["sellers"] = len(sellers)
    summary.rows_in["listings"] = int(sellers["listings"].sum())
    summary.rows_out[RESULTS] = len(result.results)
    summary.info["srm"] = result.srm.message()
    summary.info["balance"] = "ok" if result.balance_ok else "IMBALANCED: " + ", ".join(
        result.balance.loc[~result.balance["ok"], "covariate"])
    for r in result.results.itertuples():
        line = (f"{r.effect:+.4g} [{r.ci_low:+.4g}, {r.ci_high:+.4g}], lift {100 * r.relative_lift:+.2f}%, "
                f"p_adj={r.p_adjusted:.3g}{' *' if r.significant else ''}, CUPED -{100 * r.variance_reduction:.1f}% var")
        if truth is not None:
            te = float(truth.set_index("metric").loc[r.metric, "effect"])
            line += f", truth {te:+.4g} ({'covered' if r.ci_low <= te <= r.ci_high else 'NOT covered'})"
        summary.info[r.metric] = line
    summary.info["mlflow_run_id"] = run_id
    if not result.srm.ok:
        print(f"\n!!! experiment {design['experiment_id']}: {result.srm.message()} !!!\n", file=sys.stderr, flush=True)
        if e.fail_on_srm:
            raise DataQualityError(f"experiment {design['experiment_id']}: {result.srm.message()}. Results are "
                                   f"recorded in {RESULTS} (srm_ok = false) and MLflow run {run_id}; find the cause "
                                   "(lost units, a broken assignment) before reading any effect")
    return summary.finish()


def design(spark: SparkSession, cfg: Config) -> JobSummary:
    """Power table for the configured MDEs, split, alpha and power, from history; printed and logged to MLflow."""
    summary = JobSummary("experiment design")
    e = cfg.experiment
    frame, w = history_frame(spark, cfg)
    if len(frame) < 3:
        raise PricingError(f"only {len(frame)} seller(s) listed in {w.start:%Y-%m-%d} .. {w.end:%Y-%m-%d}: "
                           "not enough history to estimate a variance")
    table_ = dz.power_table(dz.all_metric_variances(frame), e.mde_relative, dict(e.mde_absolute), e.alpha, e.power,
                            e.treatment_share)
    tracking.setup(cfg)
    with mlflow.start_run(run_name="experiment-design") as active:
        mlflow.set_tags({"job": "experiment-design", "env": cfg.env})
        mlflow.log_params({"history_window": f"{w.start:%Y-%m-%d}..{w.end:%Y-%m-%d}",
                           "pre_period": f"{w.pre_start:%Y-%m-%d}..{w.pre_end:%Y-%m-%d}",
                           "alpha": e.alpha, "power": e.power, "treatment_share": e.treatment_share,
                           "horizon_days": e.horizon_days, "days": e.days, "mde_relative": json.dumps(e.mde_relative),
                           "mde_absolute": json.dumps(dict(e.mde_absolute))})
        for r in table_.itertuples():
            key = f"{r.metric}.mde_" + (f"rel_{r.mde_relative:.4g}" if r.mde_kind == "relative" else f"abs_{r.mde:.4g}")
            mlflow.log_metrics({f"{key}.sellers_needed": r.sellers_needed,
                                f"{key}.sellers_needed_cuped": r.sellers_needed_cuped, f"{key}.power": r.power})
        for r in table_.drop_duplicates("metric").itertuples():
            mlflow.log_metrics({f"{r.metric}.baseline": r.baseline,
                                f"{r.metric}.cuped_variance_reduction": r.cuped_variance_reduction,
                                **({f"{r.metric}.design_effect": r.design_effect}
                                   if np.isfinite(r.design_effect) else {})})
        with tempfile.TemporaryDirectory() as tmp:
            table_.to_csv(Path(tmp) / "power_table.csv", index=False)
            (Path(tmp) / "power_table.md").write_text(render_power_table(table_, w, e))
            mlflow.log_artifacts(tmp, artifact_path="design")
        run_id = active.info.run_id
    summary.rows_in["sellers in history window"] = len(frame)
    summary.info["history"] = f"listings created {w.start:%Y-%m-%d} .. {w.end - timedelta(days=1):%Y-%m-%d}"
    summary.info["power table"] = "\n" + render_power_table(table_, w, e)
    summary.info["mlflow_run_id"] = run_id
    return summary.finish()


ACTIONS: dict[str, Callable[[SparkSession, Config], JobSummary]] = {
    "simulate": simulate, "analyse": analyse, "design": design}


def run(spark: SparkSession, cfg: Config, action: str = "analyse") -> JobSummary:
    """``run(spark, cfg)`` like every job; ``action`` picks simulate, analyse or design."""
    if action not in ACTIONS:
        raise PricingError(f"unknown experiment action {action!r}: {', '.join(ACTIONS)}")
    return ACTIONS[action](spark, cfg)
