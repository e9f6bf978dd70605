"""Step 4 of the ``demand`` job: the fitted demand model judged on the test listings (which chose nothing).

Test metrics of the served model and of the naive one (the classifier's own price slope), per-segment
elasticities (against the simulator's truth when it exists: evaluation only), a monotonicity check, and the
sanity checks that decide whether the model may serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

from pricing.demand_model.estimator import ALL, cloglog_slope
from pricing.demand_model.training import (
    ELASTICITY_BAND,
    ESTIMATORS,
    MONOTONE_GRID,
    SAMPLE_ROWS,
    DemandFit,
    DemandSplit,
    Exploration,
    check_monotone,
    clipped_log_loss,
    curves_frame,
    sanity,
    test_frame,
)
from pricing.optimisation import plots as optimisation_plots
from pricing.optimisation.evaluation import elasticity_against_truth
from pricing.platform.config import Config


@dataclass(frozen=True)
class DemandEvaluation:
    """What the demand job logs, registers and gates with."""

    test: DataFrame
    """The test listings (``fitted.valued`` from ``split.test_start``): the champion is scored on them too."""
    sample: DataFrame
    """At most about ``SAMPLE_ROWS`` test listings: the demand curves and the model's input example."""
    y: np.ndarray
    """Test labels (sold within the horizon)."""
    p: np.ndarray
    """The served model's sale probability at each test listing's asking price."""
    curves: pd.DataFrame
    """``curves_frame`` over ``MONOTONE_GRID`` then the naive-elasticity band, with the ``naive`` slope."""
    report: pd.DataFrame
    """Elasticity per segment (against the truth when it exists): ``elasticity.csv``."""
    truth: dict[str, float] | None
    """Elasticity errors against the simulator's truth, when it exists."""
    metrics: dict[str, float]
    problems: list[str]
    """``sanity``'s reasons the model is not fit to serve; empty when it passes."""

    @property
    def verdict(self) -> str:
        """``passed``, or the problems joined by ``; `` (the ``sanity`` tag)."""
        return "passed" if not self.problems else "; ".join(self.problems)


def evaluate(spark: SparkSession, cfg: Config, fitted: DemandFit, split: DemandSplit,
             design: Exploration | None) -> DemandEvaluation:
    """Log loss, AUC, Brier score of the served and naive models on the test listings (and on their nudged
    ones), the monotonicity check on a sample, per-segment elasticities (exploration and naive; with
    ``design``, the overall estimate and its standard error), the survival layer's shape, the fit times, the
    comparison with the simulator's truth when it exists, and the sanity checks."""
    d = cfg.demand
    predictor, elasticity, frailty = fitted.predictor, fitted.elasticity, fitted.frailty
    test = fitted.valued.where(F.col("as_of") >= F.lit(split.test_start))
    scored = test_frame(test, predictor)
    y, p, p_naive = scored["y"].to_numpy(), scored["p"].to_numpy(), scored["p_naive"].to_numpy()
    base = float(y.mean())
    metrics: dict[str, float] = {
        "test_logloss": clipped_log_loss(y, p), "test_auc": float(roc_auc_score(y, p)) if 0 < base < 1 else float("nan"),
        "test_brier": float(np.mean((p - y) ** 2)), "test_base_rate": base, "test_mean_p": float(p.mean()),
        "base_rate_logloss": clipped_log_loss(y, np.full_like(y, base)), "naive_test_logloss": clipped_log_loss(y, p_naive),
        "realisation": fitted.realisation, "value_fit_seconds": fitted.value_seconds,
        "classifier_fit_seconds": fitted.classifier_seconds,
        "best_iteration": float(getattr(predictor.classifier, "best_iteration", -1)),
    }
    nudged_test = scored["nudged"].to_numpy()
    if nudged_test.any():
        metrics["test_logloss_nudged"] = clipped_log_loss(y[nudged_test], p[nudged_test])
        metrics["naive_test_logloss_nudged"] = clipped_log_loss(y[nudged_test], p_naive[nudged_test])
    sample = test.sample(fraction=min(1.0, SAMPLE_ROWS / max(split.rows["test"], 1)), seed=d.booster.seed)
    band = np.linspace(-ELASTICITY_BAND, ELASTICITY_BAND, 5)
    curves = curves_frame(sample, predictor, np.concatenate([MONOTONE_GRID, band]))
    k = len(MONOTONE_GRID)
    metrics.update(check_monotone(curves, k))
    naive_p = curves[[f"n{k + i}" for i in range(len(band))]].to_numpy()
    curves["naive"] = cloglog_slope(np.tile(band, (len(curves), 1)), naive_p)
    per_seg = curves.groupby("segment").agg(rows=("naive", "size"), naive=("naive", "mean")).reset_index()
    if design is not None:
        table_ = fitted.elasticity_table
        per_seg = per_seg.merge(table_, on="segment", how="outer")
        per_seg["exploration"] = per_seg["exploration"].fillna(elasticity[ALL])
        per_seg["rows"] = per_seg["rows"].fillna(0)
        metrics.update({"elasticity_overall": elasticity[ALL],
                        "elasticity_overall_se": float(table_.attrs["overall_se"]),
                        "nudged_rows": float(table_.attrs["nudged_rows"]),
                        "elasticity_expected_corr": float(table_.attrs["expected_corr"])})
        for name in [c for c in ESTIMATORS if c in per_seg]:
            per_seg[name] = per_seg[name].fillna(table_.attrs[f"{name}_overall"])
            metrics[f"elasticity_{name}_overall"] = float(table_.attrs[f"{name}_overall"])
        metrics.update({f"{key}": float(table_.attrs[key]) for key in ("take_up", "selection_cut", "selection_raise")
                        if key in table_.attrs})
    metrics["naive_elasticity_mean"] = float(curves["naive"].mean())
    if frailty:
        metrics["frailty_k"] = float(frailty["frailty_k"])
        metrics.update({f"exposure_g_{int(t)}d": float(v) for t, v in
                        zip(frailty["exposure_knots"], frailty["exposure_values"], strict=True) if t in (14, 28, 60, 120)})
        metrics.update({f"realisation_from_{int(t)}d": float(v) for t, v in
                        zip(frailty["exposure_knots"], frailty.get("realisation_values", ()), strict=False)
                        if t in (0, 14, 28, 42)})
    estimators = per_seg[["segment", "rows", *[c for c in ("exploration", *ESTIMATORS, "naive") if c in per_seg]]]
    truth = elasticity_against_truth(spark, cfg, estimators[estimators["rows"] > 0], d.elasticity_segment)
    if truth is not None:
        metrics.update({f"elasticity_truth_{k}": v for k, v in truth[1].items()})
    return DemandEvaluation(test, sample, y, p, curves, truth[0] if truth is not None else per_seg,
                            None if truth is None else truth[1], metrics, sanity(metrics, predictor))


def log_report(tmp: Path, ev: DemandEvaluation, identification: str) -> None:
    """Into the active MLflow run: ``elasticity.csv`` and the plots (elasticities, the mean served and naive
    demand curves over ``MONOTONE_GRID``, the reliability diagram); files go via ``tmp``."""
    ev.report.to_csv(tmp / "elasticity.csv", index=False)
    mlflow.log_artifact(str(tmp / "elasticity.csv"))
    k = len(MONOTONE_GRID)
    served_mean = ev.curves[[f"s{i}" for i in range(k)]].mean().to_numpy()
    naive_mean = ev.curves[[f"n{i}" for i in range(k)]].mean().to_numpy()
    named = {"served (" + identification + ")": served_mean, "naive (observational slope)": naive_mean}
    for png in (optimisation_plots.elasticities(ev.report, tmp / "elasticity.png"),
                optimisation_plots.demand_curves(MONOTONE_GRID, named, tmp / "demand_curves.png"),
                optimisation_plots.reliability(ev.y, ev.p, tmp / "calibration.png")):
        mlflow.log_artifact(str(png), "plots")
