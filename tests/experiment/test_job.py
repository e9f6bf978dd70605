"""``pricing experiment simulate | analyse | design`` on the real stack (Delta + MLflow), on a small
marketplace written straight into silver and truth tables of its own storage root."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import experiment as job
from pricing.experiment.analysis import METRIC_NAMES
from pricing.experiment.frames import Windows, seller_window_totals
from pricing.experiment.simulate import ExperimentDesign, simulate_listings, synthetic_population
from pricing.platform import delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError, DataQualityError, ModelGateError
from pricing.platform.tables import table
from pricing.workflow.cli import main as cli_main

pytestmark = pytest.mark.slow

T0 = datetime(2025, 1, 1)
DAYS = 150
OVERRIDES = ["experiment.treatment_policy=multiplier", "experiment.price_multiplier=0.85",
             "experiment.days=21", "experiment.pre_period_days=42", "experiment.horizon_days=30",
             "mlflow.experiment=experiment-tests"]


def _marketplace(spark: SparkSession, cfg: Config) -> None:
    """silver.listings and truth.listings of 9,000 listings by up to 1,500 sellers over 150 days, sold as the
    simulator sells them (own prices, drops, offers), cut at the end of the period."""
    pop = synthetic_population(n_sellers=1500, n_listings=9000, n_pre_listings=0, seed=5)
    lst = pop.listings
    rng = np.random.default_rng(5)
    created = pd.to_datetime(T0) + pd.to_timedelta(rng.uniform(0, DAYS, len(lst)), unit="D")
    out = simulate_listings(lst.assign(control_price=np.nan, treatment_price=np.nan),
                            ExperimentDesign("history", 0.5, 0.0, 60, seed=5))
    sold_at = created + pd.to_timedelta(out["sale_day"].to_numpy(), unit="D")
    seen = out["sold"].to_numpy() & (sold_at < pd.to_datetime(T0 + timedelta(days=DAYS)))
    silver = pd.DataFrame({
        "listing_id": lst["listing_id"], "seller_id": lst["seller_id"], "created_at": created,
        "list_price": lst["own_price"], "sold_at": sold_at.where(seen), "sold_price": out["sold_price"].where(seen),
        "status": np.where(seen, "sold", "active"),
    })
    schema = T.StructType([T.StructField("listing_id", T.LongType()), T.StructField("seller_id", T.LongType()),
                           T.StructField("created_at", T.TimestampType()), T.StructField("list_price", T.DoubleType()),
                           T.StructField("sold_at", T.TimestampType()), T.StructField("sold_price", T.DoubleType()),
                           T.StructField("status", T.StringType())])
    delta_io.overwrite(spark.createDataFrame(silver, schema), table(cfg, "silver.listings"))
    truth = lst[["listing_id", "log_fair_value", "elasticity", "base_hazard", "demand_bonus"]]
    delta_io.overwrite(spark.createDataFrame(truth), table(cfg, "truth.listings"))


@pytest.fixture(scope="module")
def ecfg(cfg: Config, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    root: Path = tmp_path_factory.mktemp("experiment-state")
    c = cfg.with_overrides([f"storage.root={root}", *OVERRIDES])
    _marketplace(spark, c)
    return c


@pytest.fixture(scope="module")
def simulated(spark: SparkSession, ecfg: Config):
    return job.simulate(spark, ecfg)


def test_simulate_writes_outcomes_design_and_truth(spark: SparkSession, ecfg: Config, simulated) -> None:
    start = (T0 + timedelta(days=DAYS - 1)).date() - timedelta(days=20)  # the last 21 days with listings
    silver = delta_io.read(spark, table(ecfg, "silver.listings"))
    window = silver.where((F.col("created_at") >= F.lit(datetime(start.year, start.month, start.day)))
                          & (F.col("created_at") < F.lit(datetime(start.year, start.month, start.day) + timedelta(21))))
    outcomes = delta_io.read(spark, table(ecfg, "ml.experiment_outcomes"))
    assert_df_equality(outcomes.select("listing_id", "seller_id"), window.select("listing_id", "seller_id"),
                       ignore_row_order=True, ignore_nullable=True)
    design = delta_io.read(spark, table(ecfg, "ml.experiments")).collect()
    assert len(design) == 1 and design[0]["start_date"] == start and design[0]["treatment_policy"] == "multiplier"
    truth = delta_io.read(spark, table(ecfg, "truth.experiment_effects")).toPandas().set_index("metric")
    assert sorted(truth.index) == sorted(METRIC_NAMES)
    # A 15% price cut for 60% of treatment listings: more sales, sooner, at lower prices.
    assert truth.loc["sell_through", "effect"] > 0 and truth.loc["days_on_market", "effect"] < 0
    assert truth.loc["price_accepted", "effect"] < 0
    # Treatment listings see their own price x 0.85; control sees nothing.
    o = outcomes.join(silver.select("listing_id", "list_price"), "listing_id")
    assert o.where("arm = 'control' AND shown_price IS NOT NULL").count() == 0
    assert o.where("arm = 'treatment' AND abs(shown_price - round(list_price * 0.85, 2)) > 1e-9").count() == 0
    assert simulated.rows_out["ml.experiment_outcomes"] == window.count()


def test_analyse_writes_one_row_per_metric_and_a_readable_mlflow_run(spark: SparkSession, ecfg: Config,
                                                                       simulated) -> None:
    summary = job.analyse(spark, ecfg)
    ref = table(ecfg, "ml.experiment_results")
    res = delta_io.read(spark, ref).toPandas().set_index("metric")
    assert sorted(res.index) == sorted(METRIC_NAMES)
    assert res["srm_ok"].all() and res["experiment_id"].eq("exp_001").all()
    # The control mean of sell-through is the share of control listings sold (CUPED shifts it by
    # theta x the arm's pre-period deviation, so compare the raw read: effect_raw = T - C exactly).
    o = delta_io.read(spark, table(ecfg, "ml.experiment_outcomes")).toPandas()
    by_arm = o.groupby("arm")["sold"].mean()
    assert res.loc["sell_through", "effect_raw"] == pytest.approx(by_arm["treatment"] - by_arm["control"], abs=1e-12)
    assert res.loc["sell_through", "n_listings_control"] == int((o["arm"] == "control").sum())
    truth = delta_io.read(spark, table(ecfg, "truth.experiment_effects")).toPandas().set_index("metric")
    assert res["true_effect"].to_numpy() == pytest.approx(truth.loc[res.index, "effect"].to_numpy())
    assert res["ci_covers_truth"].notna().all()
    assert (res["p_adjusted"] >= res["p_value"]).all() and res["correction"].eq("holm").all()

    tracking.setup(ecfg)
    client = MlflowClient()
    run = client.get_run(summary.info["mlflow_run_id"])
    assert run.data.tags["srm"] == "ok" and run.data.tags["experiment_id"] == "exp_001"
    assert "sell_through.effect" in run.data.metrics and "srm_p_value" in run.data.metrics
    files = {f.path for f in client.list_artifacts(run.info.run_id, "report")}
    assert files == {f"report/{n}" for n in ("report.md", "report.html", "effects.png", "ci_width.png",
                                             "results.csv", "balance.csv")}
    md = Path(client.download_artifacts(run.info.run_id, "report/report.md")).read_text()
    assert "SRM ok" in md and "CUPED variance reduction" in md and "| days to sell (capped at H) |" in md

    # Rerunning replaces the experiment's rows.
    again = job.analyse(spark, ecfg)
    rows = delta_io.read(spark, ref)
    assert rows.count() == 4 and {r[0] for r in rows.select("mlflow_run_id").collect()} == {
        again.info["mlflow_run_id"]}


def test_a_skewed_split_fails_the_srm_check_loudly(spark: SparkSession, ecfg: Config, simulated,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    lossy = ecfg.with_overrides(["experiment.experiment_id=exp_lossy", "experiment.lost_treatment_share=0.5"])
    job.simulate(spark, lossy)
    with pytest.raises(DataQualityError, match="SRM FAILED: the observed split is not the designed one"):
        job.analyse(spark, lossy)
    assert "!!! experiment exp_lossy: SRM FAILED" in capsys.readouterr().err
    rows = delta_io.read(spark, table(ecfg, "ml.experiment_results")).where("experiment_id = 'exp_lossy'")
    assert rows.count() == 4 and {r[0] for r in rows.select("srm_ok").collect()} == {False}
    # The other experiment's rows are untouched.
    assert delta_io.read(spark, table(ecfg, "ml.experiment_results")).where("experiment_id = 'exp_001'").count() == 4


def test_design_prints_and_logs_a_power_table(spark: SparkSession, ecfg: Config) -> None:
    summary = job.design(spark, ecfg.with_overrides(["experiment.mde_absolute={sell_through: 0.05}"]))
    text = summary.info["power table"]
    assert "sellers needed" in text and "with CUPED" in text and "sell_through" in text
    tracking.setup(ecfg)
    client = MlflowClient()
    run = client.get_run(summary.info["mlflow_run_id"])
    assert {f.path for f in client.list_artifacts(run.info.run_id, "design")} == {
        "design/power_table.csv", "design/power_table.md"}
    m = run.data.metrics
    assert m["sell_through.mde_abs_0.05.sellers_needed"] >= m["sell_through.mde_abs_0.05.sellers_needed_cuped"] >= 1
    t = pd.read_csv(client.download_artifacts(run.info.run_id, "design/power_table.csv"))
    assert t.groupby("metric").size().to_dict() == {"days_on_market": 3, "gmv_per_listing": 3,
                                                     "price_accepted": 3, "sell_through": 4}
    assert t["design_effect"].notna().all() and (t["sellers_needed_cuped"] <= t["sellers_needed"]).all()


def test_bad_settings_fail_before_any_write(spark: SparkSession, ecfg: Config, simulated) -> None:
    ref = table(ecfg, "ml.experiment_outcomes")
    before = delta_io.version(spark, ref)
    with pytest.raises(ModelGateError, match="needs the alias `champion`"):
        job.simulate(spark, ecfg.with_overrides(["experiment.control_policy=champion"]))
    with pytest.raises(ConfigError, match="leaves no room for the pre-period"):
        job.simulate(spark, ecfg.with_overrides(["experiment.start_date=2025-02-01"]))
    with pytest.raises(ConfigError, match="experiment_id"):
        ecfg.with_overrides(["experiment.experiment_id=x' OR 1=1"])
    with pytest.raises(ConfigError, match="mde_absolute"):
        ecfg.with_overrides(["experiment.mde_absolute={conversion: 0.1}"])
    assert delta_io.version(spark, ref) == before
    with pytest.raises(Exception, match="no experiment 'exp_none'"):
        job.analyse(spark, ecfg.with_overrides(["experiment.experiment_id=exp_none"]))


def test_the_cli_routes_experiment_actions(ecfg: Config, simulated, capsys: pytest.CaptureFixture[str]) -> None:
    args = [f"storage.root={ecfg.storage.root}", *OVERRIDES, "experiment.experiment_id=exp_none"]
    with pytest.raises(SystemExit) as exit_:
        cli_main([x for a in args for x in ("--set", a)] + ["experiment", "analyze"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "pricing experiment: error: no experiment 'exp_none' in ml.experiments" in err


def test_pre_period_windows_are_half_open_and_resolved_before_the_start(spark: SparkSession) -> None:
    """The covariates only see listings created in [start - H - pre_days, start - H) and their sales within H
    days: every such outcome is known before the experiment starts."""
    w = Windows.of(datetime(2025, 3, 1).date(), days=7, horizon_days=10, pre_period_days=20)
    assert (w.pre_start, w.pre_end) == (datetime(2025, 1, 30), datetime(2025, 2, 19))
    d = timedelta
    rows = [  # listing_id, seller_id, created_at, sold_at, sold_price
        (1, 1, w.pre_start, w.pre_start + d(days=2), 10.0),            # first instant: in, sold on day 2
        (2, 1, w.pre_end - d(seconds=1), w.pre_end - d(seconds=1) + d(days=9.5), 7.0),  # last second: in
        (3, 1, w.pre_start + d(days=1), w.pre_start + d(days=11), 9.0),  # sold on day 10 exactly: not within H
        (4, 1, w.pre_end, w.pre_end + d(days=1), 5.0),                  # created at pre_end: out
        (5, 2, w.pre_start - d(seconds=1), None, None),                 # before the window: out
        (6, 2, w.pre_start + d(days=3), None, None),                    # unsold: H days on market
    ]
    schema = "listing_id long, seller_id long, created_at timestamp, sold_at timestamp, sold_price double"
    got = seller_window_totals(spark.createDataFrame(rows, schema), w.pre_start, w.pre_end, 10, prefix="pre_")
    expected = spark.createDataFrame([(1, 3, 2, 17.0, 2.0 + 9.5 + 10.0), (2, 1, 0, 0.0, 10.0)],
                                     "seller_id long, pre_listings long, pre_sold long, pre_gmv double, pre_days double")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True)


def test_model_suggestions_are_the_p50_rounded_to_price_points(spark: SparkSession, ecfg: Config) -> None:
    """A policy's suggestion is the model's p50 from the listing's as-of features, clamped and rounded as
    ``pricing score`` rounds it (endings .00 / .50 / .99)."""
    import xgboost as xgb

    from pricing.price_model.predictor import Intervals, PricePredictor

    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    booster = xgb.train({"max_depth": 2, "eta": 0.5}, xgb.DMatrix(X, label=3 + X[:, 0] - 0.5 * X[:, 1]), 8)
    predictor = PricePredictor(("f1", "f2"), booster, Intervals())
    feats = pd.DataFrame({"listing_id": np.arange(200, dtype=np.int64), "f1": X[:, 0].astype(float),
                          "f2": X[:, 1].astype(float)})
    delta_io.overwrite(spark.createDataFrame(feats), table(ecfg, "features.training_set"))
    ids = spark.createDataFrame([(i,) for i in range(0, 200, 7)], "listing_id long")
    got = job.model_suggestions(spark, ecfg, predictor, ids, "challenger_price").toPandas().sort_values("listing_id")
    assert got["listing_id"].tolist() == list(range(0, 200, 7))
    p50 = np.expm1(booster.inplace_predict(X[got["listing_id"].to_numpy()]).astype(float))
    price = got["challenger_price"].to_numpy()
    assert np.all(np.abs(price - np.clip(p50, 1.0, 5000.0)) <= 0.5 + 1e-9)
    cents = np.round(price * 100).astype(int) % 100
    assert set(cents) <= {0, 50, 99}
