"""experiment: design, simulate and read seller-randomised A/B tests of pricing policies.

    pricing experiment simulate   # assignment + outcomes of a simulated experiment -> ml.experiment_outcomes
    pricing experiment analyse    # SRM, balance, CUPED / delta-method effects -> ml.experiment_results + MLflow
    pricing experiment design     # power and sample size from the sellers' historical variance

Settings: the ``experiment`` section of the config.  ``simulate`` needs the simulator's ``truth.listings``
(the true demand of every listing); ``analyse`` and ``design`` read only what a real experiment would
have, plus ``truth.experiment_effects`` when it exists, to report whether the intervals cover the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pricing.experiment import analysis as an
from pricing.experiment.pipeline import (
    MODEL_POLICIES,
    OUTCOMES,
    RESULTS,
    arm_counts,
    check_srm,
    design_of,
    experiment_listings,
    experiment_row,
    experiment_window,
    history_frame,
    log_design_run,
    log_experiment_run,
    model_suggestions,
    policy_model_versions,
    power_table,
    recorded_truth,
    render_power_table,
    replace_rows,
    require,
    result_lines,
    results_frame,
    seller_frame,
    simulate_outcomes,
    simulated_effects,
    simulation_tables,
    with_truth,
)
from pricing.platform import catalog, delta_io
from pricing.platform.config import Config
from pricing.platform.errors import PricingError
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
    start, w = experiment_window(listings, e)
    exp = experiment_listings(listings, w)
    frame = with_truth(exp, delta_io.read(spark, truth_ref))
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
    simulated = simulate_outcomes(frame, design, e).persist()
    n, effects = simulated_effects(simulated, w)
    for entry, df in simulation_tables(spark, simulated, e, versions, start, effects).items():
        summary.tables[entry.logical] = replace_rows(spark, df, table(cfg, entry), e.experiment_id)
    arms = arm_counts(simulated)
    simulated.unpersist()
    effect_rows: Iterable[Any] = effects.itertuples()  # metric, control, treatment, effect, relative_lift
    summary.rows_in["experiment listings"] = n
    summary.rows_out[OUTCOMES.logical] = n
    summary.info.update({
        "experiment": f"{e.experiment_id}: {e.control_policy} (control) vs {e.treatment_policy} (treatment)"
                      + (" [A/A test]" if e.control_policy == e.treatment_policy else ""),
        "window": f"listings created {w.start:%Y-%m-%d} .. {w.end - timedelta(days=1):%Y-%m-%d}",
        "arms": arms,
        "models": {k: f"v{v}" for k, v in versions.items()} or "none",
        "true effect": {r.metric: round(float(r.effect), 5) for r in effect_rows},
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
    rows = results_frame(spark, result, design, truth, run_id)
    summary.tables[RESULTS.logical] = replace_rows(spark, rows, table(cfg, RESULTS), design["experiment_id"])
    summary.rows_in["sellers"] = len(sellers)
    summary.rows_in["listings"] = int(sellers["listings"].sum())
    summary.rows_out[RESULTS.logical] = len(result.results)
    summary.info.update(result_lines(result, truth))
    summary.info["mlflow_run_id"] = run_id
    check_srm(result, design["experiment_id"], run_id, e.fail_on_srm)
    return summary.finish()


def design(spark: SparkSession, cfg: Config) -> JobSummary:
    """Power table for the configured MDEs, split, alpha and power, from history; printed and logged to MLflow."""
    summary = JobSummary("experiment design")
    e = cfg.experiment
    frame, w = history_frame(spark, cfg)
    table_ = power_table(frame, w, e)
    run_id = log_design_run(cfg, table_, w)
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
