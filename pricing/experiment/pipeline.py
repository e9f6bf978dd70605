"""The Spark side of ``pricing experiment simulate | analyse | design``: experiment windows and listings, simulated
outcomes with their true effects, result frames, the SRM check and the power table.  ``simulate`` reads the
simulator's ``truth.listings``; ``analyse`` and ``design`` read only what a real experiment would have, plus
``truth.experiment_effects`` when it exists, to report whether the intervals cover the truth.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pricing.experiment import analysis as an
from pricing.experiment import design as dz
from pricing.experiment import report
from pricing.experiment.frames import (
    EXPERIMENTS_DOCS,
    EXPERIMENTS_SCHEMA,
    OUTCOMES_DOCS,
    OUTCOMES_SCHEMA,
    RESULTS_DOCS,
    RESULTS_SCHEMA,
    SIMULATED_SCHEMA,
    TRUTH_DOCS,
    TRUTH_SCHEMA,
    Windows,
    created_in,
    seller_outcome_totals,
    seller_window_totals,
    with_pre,
)
from pricing.experiment.simulate import (
    EXPECTED_COLUMNS,
    ExperimentDesign,
    policy_prices,
    simulate_listings,
    true_effects,
)
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config, ExperimentConfig
from pricing.platform.errors import ConfigError, DataQualityError, ModelGateError, PricingError
from pricing.platform.rows import first_row, first_value
from pricing.platform.tables import TableRef, table

if TYPE_CHECKING:
    from pricing.price_model.predictor import PricePredictor


OUTCOMES = catalog.ML_EXPERIMENT_OUTCOMES


RESULTS = catalog.ML_EXPERIMENT_RESULTS


EXPERIMENTS = catalog.ML_EXPERIMENTS


TRUTH = catalog.TRUTH_EXPERIMENT_EFFECTS


COLUMN_DOCS: dict[str, dict[str, str]] = {OUTCOMES.logical: OUTCOMES_DOCS, RESULTS.logical: RESULTS_DOCS,
                                          EXPERIMENTS.logical: EXPERIMENTS_DOCS, TRUTH.logical: TRUTH_DOCS}
"""Logical table -> its column descriptions, for every table the experiment jobs write (:func:`replace_rows`)."""


MODEL_POLICIES = ("champion", "challenger")


TRUTH_COLS = ("log_fair_value", "elasticity", "base_hazard", "demand_bonus")


def require(spark: SparkSession, cfg: Config, logical: catalog.Table | str, hint: str) -> TableRef:
    """``logical``'s table, which must exist; fails with ``hint`` (what to run first) when it does not."""
    ref = table(cfg, logical)
    if not delta_io.exists(spark, ref):
        raise PricingError(f"table {logical} ({ref}) does not exist: {hint}")
    return ref


def replace_rows(spark: SparkSession, df: DataFrame, ref: TableRef, experiment_id: str) -> int:
    """Write ``df`` as this experiment's rows: a rerun replaces them (Delta replaceWhere), never duplicates.
    The table's column comments are its :data:`COLUMN_DOCS`."""
    # experiment_id is validated by the config (letters, digits, _ and -): safe inside the predicate.
    delta_io.overwrite(df, ref, replace_where=f"experiment_id = '{experiment_id}'",
                       docs=COLUMN_DOCS.get(ref.logical))
    return delta_io.version(spark, ref)


def design_of(e: ExperimentConfig) -> ExperimentDesign:
    return ExperimentDesign(e.experiment_id, e.treatment_share, e.adoption_rate, e.horizon_days, e.seed,
                            e.lost_treatment_share)


# ---- simulate --------------------------------------------------------------------------------------------
def policy_model_versions(cfg: Config) -> dict[str, int]:
    """Registry versions of the models the configured policies show; fails before any write when one is
    missing, or when champion-vs-challenger would silently compare a model with itself."""
    e = cfg.experiment
    needed = [p for p in MODEL_POLICIES if p in (e.control_policy, e.treatment_policy)]
    if not needed:
        return {}
    tracking.setup(cfg)
    client = MlflowClient()
    versions: dict[str, int] = {}
    for alias in needed:
        v = tracking.alias_version(client, cfg.mlflow.model_name, alias)
        if v is None:
            raise ModelGateError(
                f"experiment policy {alias!r} needs the alias `{alias}` on model {cfg.mlflow.model_name!r}, "
                f"which does not exist: run `pricing train` (and `pricing promote`), or set "
                f"experiment.treatment_policy=multiplier to test a price multiplier instead")
        versions[alias] = v
    if {e.control_policy, e.treatment_policy} == set(MODEL_POLICIES) and len(set(versions.values())) == 1:
        raise ConfigError(
            f"the challenger is the champion (both v{versions['champion']} of {cfg.mlflow.model_name!r}): "
            "champion vs challenger would be an A/A test. Train a new challenger (`pricing train`), test a "
            "multiplier (experiment.treatment_policy=multiplier), or set both policies to champion for a "
            "deliberate A/A test")
    return versions


def model_suggestions(spark: SparkSession, cfg: Config, predictor: PricePredictor, listing_ids: DataFrame,
                      column: str) -> DataFrame:
    """``listing_id, <column>``: the model's p50 for each listing, from its features as of its listing time
    (``features.training_set``), clamped and rounded to price points exactly as ``pricing score`` does."""
    from pricing.price_model.predictor import score_frame
    from pricing.price_model.scoring import round_to_price_points

    feats = delta_io.read(spark, require(spark, cfg, catalog.TRAINING_SET, "run `pricing features` first"))
    preds = score_frame(feats.join(listing_ids, "listing_id"), predictor)
    clamped = F.least(F.greatest(F.col("p50"), F.lit(cfg.score.min_price)), F.lit(cfg.score.max_price))
    return preds.select("listing_id", round_to_price_points(clamped, cfg.score.price_points).alias(column))


def default_start(last_listing: datetime, days: int) -> date:
    """The first day of the last ``days`` days that have listings."""
    return last_listing.date() - timedelta(days=days - 1)


def simulate_batches(design: ExperimentDesign, e: ExperimentConfig
                      ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            frame = policy_prices(pdf, e.control_policy, e.treatment_policy, e.price_multiplier)
            out = simulate_listings(frame, design)
            out.insert(0, "experiment_id", design.experiment_id)
            yield out[[f.name for f in SIMULATED_SCHEMA.fields]]

    return run_batches


def simulate_outcomes(frame: DataFrame, design: ExperimentDesign, e: ExperimentConfig) -> DataFrame:
    """``simulate_batches`` over ``frame`` (listings, true demand, policy prices): ``SIMULATED_SCHEMA`` rows."""
    return frame.mapInPandas(simulate_batches(design, e), SIMULATED_SCHEMA)


def experiment_window(listings: DataFrame, e: ExperimentConfig) -> tuple[date, Windows]:
    """The experiment's first day (``experiment.start_date``, or ``default_start`` of the latest listing) and its
    windows; fails when ``listings`` is empty or the pre-period would begin before the first listing."""
    first, last = first_row(listings.agg(F.min("created_at"), F.max("created_at")))
    if last is None:
        raise PricingError("silver.listings is empty: nothing to experiment on")
    start = e.start_date or default_start(last, e.days)
    w = Windows.of(start, e.days, e.horizon_days, e.pre_period_days)
    if first > w.pre_start:
        raise ConfigError(f"experiment.start_date {start} leaves no room for the pre-period: it would begin "
                          f"{w.pre_start:%Y-%m-%d} (start - horizon_days - pre_period_days) but listings begin "
                          f"{first}; choose a later start or a shorter pre_period_days")
    return start, w


def experiment_listings(listings: DataFrame, w: Windows) -> DataFrame:
    """The listings the experiment covers: created in ``w``, with a seller and a positive list price."""
    return listings.where(created_in(w.start, w.end) & F.col("seller_id").isNotNull() & (F.col("list_price") > 0))


def with_truth(exp: DataFrame, truth: DataFrame) -> DataFrame:
    """``listing_id, seller_id, own_price`` and the true demand (``TRUTH_COLS``) of each listing of ``exp``."""
    return exp.join(truth.select("listing_id", *TRUTH_COLS), "listing_id").select(
        "listing_id", "seller_id", F.col("list_price").cast("double").alias("own_price"), *TRUTH_COLS)


def simulated_effects(simulated: DataFrame, w: Windows) -> tuple[int, pd.DataFrame]:
    """Listings simulated and the true effects (``true_effects`` of the summed expected outcomes); fails when
    no listing was simulated."""
    sums = first_row(simulated.agg(F.count(F.lit(1)).alias("n"), *[F.sum(c).alias(c) for c in EXPECTED_COLUMNS]))
    n = int(sums["n"])
    if n == 0:
        raise PricingError(f"no listings with known truth were created in [{w.start:%Y-%m-%d}, {w.end:%Y-%m-%d}): "
                           "nothing to simulate (check experiment.start_date and days)")
    return n, true_effects({c: float(sums[c]) for c in EXPECTED_COLUMNS}, n)


def design_frame(spark: SparkSession, e: ExperimentConfig, versions: dict[str, int], start: date) -> DataFrame:
    """The experiment's row of ``ml.experiments`` (``EXPERIMENTS_SCHEMA``), created now (UTC)."""
    created_at = datetime.now(UTC).replace(tzinfo=None)
    return spark.createDataFrame([(
        e.experiment_id, e.control_policy, e.treatment_policy,
        e.price_multiplier if "multiplier" in (e.control_policy, e.treatment_policy) else None,
        versions.get("champion"), versions.get("challenger"), e.treatment_share, e.adoption_rate, e.horizon_days,
        start, e.days, e.pre_period_days, e.seed, e.lost_treatment_share, created_at)], EXPERIMENTS_SCHEMA)


def truth_frame(spark: SparkSession, experiment_id: str, effects: pd.DataFrame) -> DataFrame:
    """The experiment's rows of ``truth.experiment_effects`` (``TRUTH_SCHEMA``), one per metric."""
    rows: Iterable[Any] = effects.itertuples()  # metric, control, treatment, effect, relative_lift
    return spark.createDataFrame(
        [(experiment_id, r.metric, float(r.control), float(r.treatment), float(r.effect), float(r.relative_lift))
         for r in rows], TRUTH_SCHEMA)


def simulation_tables(spark: SparkSession, simulated: DataFrame, e: ExperimentConfig, versions: dict[str, int],
                      start: date, effects: pd.DataFrame) -> dict[catalog.Table, DataFrame]:
    """What ``simulate`` writes, by logical table: the outcomes (``OUTCOMES_SCHEMA`` columns of ``simulated``),
    the design row and the true effects."""
    outcomes = simulated.select(*[f.name for f in OUTCOMES_SCHEMA.fields])
    return {OUTCOMES: outcomes, EXPERIMENTS: design_frame(spark, e, versions, start),
            TRUTH: truth_frame(spark, e.experiment_id, effects)}


def arm_counts(simulated: DataFrame) -> dict[str, dict[str, int]]:
    """arm -> sellers and listings, arms in order."""
    arms = {r["arm"]: (r["sellers"], r["listings"]) for r in simulated.groupBy("arm").agg(
        F.countDistinct("seller_id").alias("sellers"), F.count(F.lit(1)).alias("listings")).collect()}
    return {a: {"sellers": s, "listings": c} for a, (s, c) in sorted(arms.items())}


# ---- analyse ---------------------------------------------------------------------------------------------
def experiment_row(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    """The experiment's design as ``simulate`` recorded it."""
    e = cfg.experiment
    ref = require(spark, cfg, EXPERIMENTS, "run `pricing experiment simulate` first")
    rows = delta_io.read(spark, ref).where(F.col("experiment_id") == e.experiment_id).collect()
    if not rows:
        known = [r[0] for r in delta_io.read(spark, ref).select("experiment_id").distinct().collect()]
        raise PricingError(f"no experiment {e.experiment_id!r} in {EXPERIMENTS} (known: {', '.join(sorted(known))}); "
                           "set experiment.experiment_id or run `pricing experiment simulate`")
    return rows[0].asDict()


def seller_frame(spark: SparkSession, cfg: Config, design: dict[str, Any]) -> pd.DataFrame:
    """One row per seller of the experiment: arm, experiment totals and pre-period totals (aggregated in
    Spark; only this seller-level frame reaches the driver)."""
    exp_id = design["experiment_id"]
    outcomes = delta_io.read(spark, require(spark, cfg, OUTCOMES, "run `pricing experiment simulate` first")).where(
        F.col("experiment_id") == exp_id)
    sellers = seller_outcome_totals(outcomes)
    w = Windows.of(design["start_date"], design["days"], design["horizon_days"], design["pre_period_days"])
    listings = delta_io.read(spark, require(spark, cfg, catalog.SILVER_LISTINGS, "run `pricing ingest` first"))
    pre = seller_window_totals(listings, w.pre_start, w.pre_end, design["horizon_days"], prefix="pre_")
    frame = with_pre(sellers, pre).toPandas()
    if frame.empty:
        raise PricingError(f"experiment {exp_id!r} has no outcome rows in {OUTCOMES}")
    mixed = frame[frame["n_arms"] > 1]
    if len(mixed):
        raise DataQualityError(f"{len(mixed)} seller(s) of experiment {exp_id!r} have listings in both arms "
                               f"(e.g. seller {int(mixed['seller_id'].iloc[0])}): the unit of randomisation is "
                               "the seller, so the outcomes are not a valid seller-randomised experiment")
    return frame.drop(columns=["n_arms"]).astype({"treated": bool})


def recorded_truth(spark: SparkSession, cfg: Config, exp_id: str) -> pd.DataFrame | None:
    ref = table(cfg, TRUTH)
    if not delta_io.exists(spark, ref):
        return None
    t = delta_io.read(spark, ref).where(F.col("experiment_id") == exp_id).toPandas()
    return t if len(t) else None


def results_rows(result: an.Analysis, design: dict[str, Any], truth: pd.DataFrame | None, run_id: str | None,
                 analysed_at: datetime) -> list[tuple[Any, ...]]:
    """Rows of ``ml.experiment_results`` (``RESULTS_SCHEMA`` order), one per metric."""
    t = truth.set_index("metric")["effect"] if truth is not None else None
    rows = []
    r: Any  # a row of result.results: its fields are the result columns
    for r in result.results.itertuples():
        te = float(t[r.metric]) if t is not None and r.metric in t.index else None
        f = lambda x: None if x is None or not np.isfinite(x) else float(x)  # noqa: E731
        rows.append((
            design["experiment_id"], r.metric, analysed_at, run_id, design["control_policy"],
            design["treatment_policy"], int(r.n_sellers_control), int(r.n_sellers_treatment),
            int(r.n_listings_control), int(r.n_listings_treatment),
            f(r.control_mean), f(r.treatment_mean), f(r.effect), f(r.se), f(r.ci_low), f(r.ci_high), f(r.p_value),
            f(r.p_adjusted), result.correction, bool(r.significant), f(r.relative_lift), f(r.lift_ci_low),
            f(r.lift_ci_high), f(r.effect_raw), f(r.se_raw), f(r.ci_low_raw), f(r.ci_high_raw), f(r.p_value_raw),
            f(r.theta), f(r.variance_reduction), f(r.ci_width_reduction), f(result.srm.p_value),
            bool(result.srm.ok), bool(result.balance_ok), te,
            None if te is None else bool(r.ci_low <= te <= r.ci_high),
        ))
    return rows


def results_frame(spark: SparkSession, result: an.Analysis, design: dict[str, Any], truth: pd.DataFrame | None,
                  run_id: str | None) -> DataFrame:
    """``results_rows`` as a ``RESULTS_SCHEMA`` frame, analysed now (UTC)."""
    analysed_at = datetime.now(UTC).replace(tzinfo=None)
    return spark.createDataFrame(results_rows(result, design, truth, run_id, analysed_at), RESULTS_SCHEMA)


def result_lines(result: an.Analysis, truth: pd.DataFrame | None) -> dict[str, str]:
    """The read-out in words: ``srm``, ``balance`` and one line per metric (effect, CI, lift, adjusted p,
    CUPED's variance reduction, and whether the interval covers the true effect when it is known)."""
    lines = {"srm": result.srm.message(), "balance": "ok" if result.balance_ok else "IMBALANCED: " + ", ".join(
        result.balance.loc[~result.balance["ok"], "covariate"])}
    r: Any  # a row of result.results: its fields are the result columns
    for r in result.results.itertuples():
        line = (f"{r.effect:+.4g} [{r.ci_low:+.4g}, {r.ci_high:+.4g}], lift {100 * r.relative_lift:+.2f}%, "
                f"p_adj={r.p_adjusted:.3g}{' *' if r.significant else ''}, CUPED -{100 * r.variance_reduction:.1f}% var")
        if truth is not None:
            te = float(truth.set_index("metric").loc[r.metric, "effect"])
            line += f", truth {te:+.4g} ({'covered' if r.ci_low <= te <= r.ci_high else 'NOT covered'})"
        lines[r.metric] = line
    return lines


def check_srm(result: an.Analysis, experiment_id: str, run_id: str, fail: bool) -> None:
    """A failed SRM check is printed loudly to stderr and, when ``fail`` (``experiment.fail_on_srm``), raised."""
    if result.srm.ok:
        return
    print(f"\n!!! experiment {experiment_id}: {result.srm.message()} !!!\n", file=sys.stderr, flush=True)
    if fail:
        raise DataQualityError(f"experiment {experiment_id}: {result.srm.message()}. Results are "
                               f"recorded in {RESULTS} (srm_ok = false) and MLflow run {run_id}; find the cause "
                               "(lost units, a broken assignment) before reading any effect")


def log_experiment_run(cfg: Config, result: an.Analysis, design: dict[str, Any], truth: pd.DataFrame | None) -> str:
    e = cfg.experiment
    tracking.setup(cfg)
    shown = {k: (str(v) if isinstance(v, date | datetime) else v) for k, v in design.items()}
    with mlflow.start_run(run_name=f"experiment-{design['experiment_id']}") as active:
        mlflow.set_tags({"job": "experiment-analyse", "env": cfg.env, "experiment_id": design["experiment_id"],
                         "srm": "ok" if result.srm.ok else "FAILED",
                         "balance": "ok" if result.balance_ok else "imbalanced"})
        mlflow.log_params({f"design.{k}": v for k, v in shown.items() if v is not None})
        mlflow.log_params({"alpha": e.alpha, "correction": e.correction, "srm_alpha": e.srm_alpha,
                           "balance_alpha": e.balance_alpha})
        metrics = {"srm_p_value": result.srm.p_value, "srm_chi2": result.srm.chi2,
                   "n_sellers_control": result.srm.n_control, "n_sellers_treatment": result.srm.n_treatment}
        t = truth.set_index("metric") if truth is not None else None
        r: Any  # a row of result.results: its fields are the result columns
        for r in result.results.itertuples():
            for k in ("effect", "ci_low", "ci_high", "p_value", "p_adjusted", "relative_lift", "effect_raw",
                      "ci_low_raw", "ci_high_raw", "variance_reduction", "ci_width_reduction"):
                metrics[f"{r.metric}.{k}"] = getattr(r, k)
            if t is not None and r.metric in t.index:
                metrics[f"{r.metric}.true_effect"] = float(t.loc[r.metric, "effect"])
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "report.md").write_text(report.markdown(result, shown, truth))
            (d / "report.html").write_text(report.html(result, shown, truth))
            for name, fig in (("effects.png", report.plot_effects(result, truth)),
                              ("ci_width.png", report.plot_ci_widths(result))):
                fig.savefig(d / name, dpi=110)
                report.plt.close(fig)
            result.results.to_csv(d / "results.csv", index=False)
            result.balance.to_csv(d / "balance.csv", index=False)
            mlflow.log_artifacts(str(d), artifact_path="report")
        return str(active.info.run_id)


# ---- design ----------------------------------------------------------------------------------------------
def history_frame(spark: SparkSession, cfg: Config) -> tuple[pd.DataFrame, Windows]:
    """Per seller: totals over the latest window as long as the experiment whose outcomes are all known,
    and over the pre-period before it, exactly as ``analyse`` would build them."""
    e = cfg.experiment
    listings = delta_io.read(spark, require(spark, cfg, catalog.SILVER_LISTINGS, "run `pricing ingest` first"))
    last: datetime | None = first_value(listings.agg(F.max("created_at")))
    if last is None:
        raise PricingError("silver.listings is empty: no history to size an experiment from")
    # Outcomes are known up to the data's end: the window must end horizon_days before it.
    start = last.date() + timedelta(days=1) - timedelta(days=e.horizon_days + e.days)
    w = Windows.of(start, e.days, e.horizon_days, e.pre_period_days)
    cur = seller_window_totals(listings, w.start, w.end, e.horizon_days, squares=True)
    pre = seller_window_totals(listings, w.pre_start, w.pre_end, e.horizon_days, prefix="pre_")
    frame = with_pre(cur.where(F.col("seller_id").isNotNull()), pre).toPandas()
    return frame, w


def render_power_table(t: pd.DataFrame, w: Windows, e: ExperimentConfig) -> str:
    shown = pd.DataFrame({
        "metric": t["metric"], "baseline": t["baseline"].map(lambda x: f"{x:.4g}"),
        "MDE": [f"{a:.4g} ({100 * r:.1f}%)" for a, r in zip(t["mde"], t["mde_relative"], strict=True)],
        "sellers needed": t["sellers_needed"].map(lambda x: f"{x:,}"),
        "with CUPED": t["sellers_needed_cuped"].map(lambda x: f"{x:,}"),
        f"power @ {int(t['sellers_available'].iloc[0]):,} sellers": t["power"].map(lambda x: f"{x:.2f}"),
        "with CUPED ": t["power_cuped"].map(lambda x: f"{x:.2f}"),
        "CUPED var. red.": t["cuped_variance_reduction"].map(lambda x: f"{100 * x:.1f}%"),
        "design effect": t["design_effect"].map(lambda x: f"{x:.2f}"),
    })
    head = (f"Two-sided alpha={e.alpha}, power={e.power}, treatment share={e.treatment_share}, "
            f"{e.days}-day experiment, outcomes within {e.horizon_days} days; variance from sellers listing "
            f"{w.start:%Y-%m-%d}..{w.end - timedelta(days=1):%Y-%m-%d}.")
    return head + "\n" + shown.to_string(index=False)


def power_table(frame: pd.DataFrame, w: Windows, e: ExperimentConfig) -> pd.DataFrame:
    """``design.power_table`` for the configured MDEs from ``history_frame``'s sellers; fails with fewer than 3."""
    if len(frame) < 3:
        raise PricingError(f"only {len(frame)} seller(s) listed in {w.start:%Y-%m-%d} .. {w.end:%Y-%m-%d}: "
                           "not enough history to estimate a variance")
    return dz.power_table(dz.all_metric_variances(frame), e.mde_relative, dict(e.mde_absolute.items()), e.alpha, e.power,
                          e.treatment_share)


def log_design_run(cfg: Config, table_: pd.DataFrame, w: Windows) -> str:
    """An MLflow run ``experiment-design``: the settings, sellers needed and power per metric and MDE, baselines,
    CUPED's variance reduction, design effects, and ``design/power_table.{csv,md}``.  Returns its id."""
    e = cfg.experiment
    tracking.setup(cfg)
    with mlflow.start_run(run_name="experiment-design") as active:
        mlflow.set_tags({"job": "experiment-design", "env": cfg.env})
        mlflow.log_params({"history_window": f"{w.start:%Y-%m-%d}..{w.end:%Y-%m-%d}",
                           "pre_period": f"{w.pre_start:%Y-%m-%d}..{w.pre_end:%Y-%m-%d}",
                           "alpha": e.alpha, "power": e.power, "treatment_share": e.treatment_share,
                           "horizon_days": e.horizon_days, "days": e.days, "mde_relative": json.dumps(e.mde_relative),
                           "mde_absolute": json.dumps(dict(e.mde_absolute))})
        r: Any  # a row of table_: its fields are the power table's columns
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
        return str(active.info.run_id)
