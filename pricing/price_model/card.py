"""What a training run documents about its price model: the markdown model card and the report artifacts
(segment metrics, feature importance, plots) logged to the active MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import mlflow
import pandas as pd

from features.training_set import FEATURE_GROUPS
from pricing.platform.config import Config
from pricing.platform.tables import TableRef
from pricing.price_model import plots
from pricing.price_model.evaluation import behind_a_baseline
from pricing.price_model.predictor import ALL, Intervals, PricePredictor
from pricing.price_model.training import Evaluation, Split, min_segment_coverage


def model_card(cfg: Config, ref: TableRef, version: int, split: Split, rows: dict[str, int], ev: Evaluation,
               predictor: PricePredictor, fit_s: float) -> str:
    """A short markdown card: data window (``ref`` at Delta ``version``, ``split``, ``rows``), the model,
    ``ev``'s metrics against the baselines and the noise floor, its weakest segments, sanity, limits."""
    metrics, base, floor, problems, seg = ev.metrics, ev.baselines, ev.noise_floor, ev.problems, ev.segments
    iv = predictor.intervals
    lines = [
        f"# Model card: `{cfg.mlflow.model_name}`", "",
        "Suggested price (p50) and 80% range (p10-p90) for a secondhand-fashion listing at listing time.", "",
        "## Data",
        f"- Training table: `{ref}` at Delta version {version}",
        f"- Split by listing time; a label is a sale within {split.horizon_days} days of listing, and the windows "
        f"end {split.horizon_days} days before the latest listing ({split.now:%Y-%m-%d %H:%M}), so every label is "
        "known (listings unsold after that many days are in no window)",
        f"- Train: listed before {split.valid_start:%Y-%m-%d %H:%M} ({rows['train']:,} rows); validation (early "
        f"stopping): {split.valid_start:%Y-%m-%d %H:%M} .. {split.calib_start:%Y-%m-%d %H:%M} ({rows['valid']:,}); "
        f"calibration (the range): {split.calib_start:%Y-%m-%d %H:%M} .. {split.test_start:%Y-%m-%d %H:%M} "
        f"({rows['calib']:,}); test (reported, never used to choose anything): {split.test_start:%Y-%m-%d %H:%M} .. "
        f"{split.end:%Y-%m-%d %H:%M} ({rows['test']:,}), beside the promotion gate's own holdout of the same "
        f"weeks ({rows['holdout']:,}; sanity checks and promotion read only these)",
        f"- Features ({len(predictor.features)}): listing attributes, seller history strictly before listing time,"
        " text flags, market stats as of the listing day, the brand's price premium across categories from its "
        "sales before listing time" + (", comparable sales" if cfg.features.comparables else ""), "",
        "## Model",
        f"- xgboost.spark, `reg:squarederror` on log1p(price), {cfg.train.num_workers} workers, "
        f"best iteration {predictor.median.best_iteration if hasattr(predictor.median, 'best_iteration') else 'n/a'}"
        f", fit {fit_s:.0f} s",
        f"- Range: {iv.method}" + _range_text(cfg, iv), "",
        "## Test metrics", "",
        "| model | RMSLE | MAE | MAPE |", "|---|---|---|---|",
        f"| **this model** | **{metrics['rmsle']:.4f}** | {metrics['mae']:.2f} | {metrics['mape']:.3f} |",
        *[f"| baseline: {k.replace('_', ' ')} | {v['rmsle']:.4f} | {v['mae']:.2f} | {v['mape']:.3f} |"
          for k, v in base.items()],
    ]
    if ev.oracle:
        lines.append(f"| structured oracle (true attributes, ridge on the training rows) | {ev.oracle:.4f} | | |")
    if floor:
        lines.append(f"| noise floor (simulator truth) | {floor:.4f} | | |")
    lines += ["", f"80% range: coverage {metrics['coverage_80']:.3f}, mean width {metrics['width_80']:.2f}; "
                  f"pinball p10 {metrics['pinball_p10']:.4f}, p50 {metrics['pinball_p50']:.4f}, "
                  f"p90 {metrics['pinball_p90']:.4f}."]
    if floor:
        lines.append(f"RMSLE / noise floor = **{metrics['rmsle'] / floor:.3f}** (1.0 is the best achievable)"
                     + (f"; / structured oracle = **{metrics['rmsle'] / ev.oracle:.3f}** (a model that knows the "
                        "simulator's form and learns its effects from the same rows)." if ev.oracle else "."))
    worst = seg[seg["rows"] >= cfg.promote.min_segment_rows].nlargest(5, "rmsle")
    lines += ["", f"## Weakest segments (>= {cfg.promote.min_segment_rows} test rows)", "",
              "| segment | value | rows | RMSLE | coverage |", "|---|---|---|---|---|",
              *[f"| {r.segment} | {r.value} | {r.rows:,} | {r.rmsle:.4f} | {r.coverage_80:.3f} |"
                for r in worst.itertuples()],
              "", f"Lowest 80%-range coverage per dimension (>= {cfg.promote.min_segment_rows} test rows):", "",
              "| segment | value | rows | coverage |", "|---|---|---|---|",
              *[f"| {r.segment} | {r.value} | {r.rows:,} | {r.coverage_80:.3f} |"
                for r in min_segment_coverage(seg, cfg.promote.min_segment_rows).itertuples()],
              "", f"Segments known at listing time (>= {cfg.promote.min_segment_rows} test rows) where a baseline, the "
              "best on that segment in hindsight, is as good or better: " + _behind_text(seg, cfg.promote.min_segment_rows)
              + ". (Price bands are left out: they are defined by the sold price, and a constant inside a band beats "
              "any model within it; `segment_metrics.csv` has every segment's best baseline.)",
              "", "Full table: `segment_metrics.csv`.", ""]
    if any(k.startswith("test_rmsle_without_") for k in ev.logged):
        lines += ["## Ablation (`train.ablation`: the median refitted without each feature group)", "",
                  ablation_table(ev.logged)]
    lines += ["## Sanity", "", "passed" if not problems else "\n".join(f"- {p}" for p in problems), "",
              "## Known limits",
              f"- Trained and judged on listings that sold within {split.horizon_days} days: unsold items (priced "
              "too high) are not labels, so suggestions for unusual items lean on their segment's sold prices, and "
              "the figures above say nothing of the listings that never sell.",
              "- Rare brands and categories have little support: the range widens there only as far as the "
              "quantile models learnt it (cqr), or takes the global range (conformal).",
              "- The suggestion is made at listing time; it does not use the seller's asking price.",
              "- Market stats shift with seasons: retrain at least monthly."]
    return "\n".join(lines) + "\n"


def _behind_text(seg: pd.DataFrame, min_rows: int) -> str:
    """At most five, so that the card stays a short registry description."""
    behind = behind_a_baseline(seg, min_rows)
    text = "none" if behind.empty else "; ".join(
        f"{r['segment']} {r['value']} ({r['rmsle']:.4f} against {str(r['best_baseline']).replace('_', ' ')} "
        f"{r['best_baseline_rmsle']:.4f})" for r in behind.head(5).to_dict("records"))
    return text + (f"; and {len(behind) - 5} more" if len(behind) > 5 else "")


def _range_text(cfg: Config, iv: Intervals) -> str:
    if iv.method == "quantile":
        return " boosting (p10 and p90 models, uncalibrated)"
    where = (f" per `{iv.segment_feature}` ({len(iv.offsets) - 1} segments with >= {cfg.train.interval_min_rows} "
             "calibration rows, the rest global)" if iv.segment_feature else " (one global adjustment)")
    lo, hi = iv.offsets[ALL]
    if iv.method == "cqr":
        return (", conformalised quantile regression: p10 and p90 boosters, each side shifted on the calibration "
                f"window{where}: p10 = q10 x exp({lo:+.3f}), p90 = q90 x exp({hi:+.3f}) globally")
    return f", split-conformal{where}: p10 = p50 x exp({lo:+.3f}), p90 = p50 x exp({hi:+.3f}) globally"


def ablation_table(metrics: dict[str, float]) -> str:
    """The ablation (``train.ablation``) as a Markdown table, ``ablation.md`` in the run: each feature group's
    effect on test RMSLE (the refit without it against the model)."""
    groups = [g for g in FEATURE_GROUPS if f"test_rmsle_without_{g}" in metrics]
    lines = ["| without | test RMSLE | model's | effect of the group |", "|---|---|---|---|"]
    lines += [f"| {g} | {metrics[f'test_rmsle_without_{g}']:.4f} | {metrics['test_rmsle']:.4f} | "
              f"{metrics[f'test_rmsle_delta_{g}']:+.4f} |" for g in groups]
    return "\n".join(lines) + "\n"


def log_report(tmp: Path, ev: Evaluation, predictor: PricePredictor) -> None:
    """Into the active MLflow run: ``segment_metrics.csv`` (and as a table), ``feature_importance.json`` (total
    gain, largest first), the plots (importance, residuals, calibration, segment RMSLE) and, with
    ``train.ablation``, ``ablation.md``; files go via ``tmp``."""
    test, seg = ev.test, ev.segments
    if any(k.startswith("test_rmsle_without_") for k in ev.logged):
        mlflow.log_text(ablation_table(ev.logged), "ablation.md")
    seg.to_csv(tmp / "segment_metrics.csv", index=False)
    mlflow.log_artifact(str(tmp / "segment_metrics.csv"))
    mlflow.log_table(seg, "segment_metrics.json")
    gain = cast(dict[str, float], predictor.median.get_score(importance_type="total_gain"))
    mlflow.log_dict(dict(sorted(gain.items(), key=lambda kv: -kv[1])), "feature_importance.json")
    for png in (plots.feature_importance(gain, tmp / "feature_importance.png"),
                plots.residuals(test["label"].to_numpy(), test["p50_log"].to_numpy(), tmp / "residuals.png"),
                plots.calibration(test["label"].to_numpy(), test["p10_log"].to_numpy(), test["p50_log"].to_numpy(),
                                  test["p90_log"].to_numpy(), tmp / "calibration.png"),
                plots.segment_rmsle(seg, tmp / "segment_rmsle.png")):
        mlflow.log_artifact(str(png), "plots")
