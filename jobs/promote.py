"""promote: champion/challenger gate.  Both models are scored on the same most-recent holdout; `champion`
moves to the challenger only if it is better overall by the configured margin and no major segment gets
worse beyond a tolerance.  The decision and its reasons are tagged on the version and printed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

from jobs.train import EVAL_COLS, _scored, labelled, time_split
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config, PromoteConfig
from pricing.platform.errors import ModelGateError
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.price_model.evaluation import overall_metrics, segment_metrics, with_segments
from pricing.price_model.predictor import PricePredictor

GATE_SEGMENTS = ("category", "condition", "seller_type")
"""Segments the gate guards: defined by what is known before the sale.  Not the sold-price band (a segment
chosen by the outcome favours models that shrink toward the middle) and not brand tiers (learnt from one model's
training weeks)."""
EMPTY_TIERS = pd.DataFrame({"brand": pd.Series(dtype=object), "brand_tier": pd.Series(dtype=object)})


def load_version(name: str, version: int) -> PricePredictor:
    """The predictor (boosters, features, interval rule) of one registered version."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
    return model.predictor  # type: ignore[no-any-return]


@dataclass(frozen=True)
class HoldoutResult:
    rmsle: float
    coverage_80: float
    rows: int
    segments: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    """(dimension, value) -> (RMSLE, rows)."""


def evaluate_on_holdout(spark: SparkSession, cfg: Config, predictor: PricePredictor) -> HoldoutResult:
    """Score ``predictor`` on the current most-recent test weeks of the training table."""
    test = time_split(labelled(delta_io.read(spark, table(cfg, catalog.TRAINING_SET))), cfg).test
    missing = [f for f in predictor.features if f not in test.columns]
    if missing:
        raise ModelGateError(f"the model needs feature columns the training table no longer has: {missing}")
    frame = with_segments(_scored(test, predictor, EVAL_COLS), EMPTY_TIERS)
    m = overall_metrics(frame)
    seg = segment_metrics(frame, GATE_SEGMENTS)
    return HoldoutResult(m["rmsle"], m["coverage_80"], int(m["rows"]),
                         {(r.segment, r.value): (r.rmsle, int(r.rows)) for r in seg.itertuples()})


def decide(challenger: HoldoutResult, champion: HoldoutResult | None, p: PromoteConfig) -> tuple[bool, list[str]]:
    """Pure gate.  Promote when there is no champion, or when the challenger beats it overall by
    ``min_improvement`` **and** is no worse than ``max_segment_regression`` (relative RMSLE) on any segment
    with at least ``min_segment_rows`` holdout rows.  Returns the decision and every reason behind it."""
    if champion is None:
        return True, ["no champion yet; the challenger passed its sanity checks and beats the baselines"]
    reasons = []
    needed = champion.rmsle * (1 - p.min_improvement)
    better = challenger.rmsle < needed
    reasons.append(f"overall RMSLE {challenger.rmsle:.5f} vs champion {champion.rmsle:.5f}"
                   + (f" (needs < {needed:.5f})" if p.min_improvement else "")
                   + (": better" if better else ": not better"))
    regressions = []
    for key, (c_rmsle, rows) in challenger.segments.items():
        if key not in champion.segments or rows < p.min_segment_rows:
            continue
        base = champion.segments[key][0]
        if c_rmsle > base * (1 + p.max_segment_regression):
            regressions.append(f"{key[0]}={key[1]} RMSLE {c_rmsle:.4f} vs {base:.4f} "
                               f"(+{c_rmsle / base - 1:.1%}, {rows:,} rows)")
    if regressions:
        reasons.append(f"worse than the champion by more than {p.max_segment_regression:.0%} on "
                       f"{len(regressions)} major segment(s): " + "; ".join(regressions))
    else:
        reasons.append(f"no major segment (>= {p.min_segment_rows} rows) worse by more than "
                       f"{p.max_segment_regression:.0%}")
    return better and not regressions, reasons


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("promote")
    tracking.setup(cfg)
    client = MlflowClient()
    name = cfg.mlflow.model_name
    chal_v = tracking.alias_version(client, name, tracking.CHALLENGER)
    champ_v = tracking.alias_version(client, name, tracking.CHAMPION)
    info: dict[str, Any] = {"challenger": chal_v, "champion_before": champ_v}
    summary.task_values["champion_version"] = champ_v if champ_v is not None else ""
    expected = cfg.promote.challenger_version
    if expected is not None and chal_v != expected:
        sanity = client.get_model_version(name, str(expected)).tags.get("sanity", "")
        if sanity and sanity != "passed":
            # The version this workflow trained is not fit to serve: nothing to gate, the champion stays.
            client.set_model_version_tag(name, str(expected), "promotion_decision", "rejected")
            client.set_model_version_tag(name, str(expected), "promotion_reason", f"failed sanity: {sanity}"[:5000])
            info.update({"decision": "rejected", "reasons": [f"v{expected} failed its sanity checks: {sanity}"],
                         "champion_after": champ_v})
            summary.info.update(info)
            return summary.finish()
        raise ModelGateError(f"the train task registered version {expected}, but alias `challenger` points at "
                             f"{chal_v}: another run changed the registry; re-run the workflow")
    if chal_v is None:
        info["decision"] = "no challenger (the last model failed its sanity checks or none was trained)"
        summary.info.update(info)
        return summary.finish()
    if chal_v == champ_v:
        info["decision"] = f"v{chal_v} is already champion"
        summary.info.update(info)
        return summary.finish()
    chal = evaluate_on_holdout(spark, cfg, load_version(name, chal_v))
    champ = None
    if champ_v is not None:
        try:
            champ = evaluate_on_holdout(spark, cfg, load_version(name, champ_v))
        except ModelGateError as exc:
            raise ModelGateError(f"champion v{champ_v} cannot be scored on the current holdout ({exc}); "
                                 f"compare the two versions by hand and move the alias with the MLflow client") from None
    promote, reasons = decide(chal, champ, cfg.promote)
    reason = "; ".join(reasons)
    tags = {"promotion_decision": "promoted" if promote else "rejected", "promotion_reason": reason[:5000],
            "holdout_rmsle": f"{chal.rmsle:.5f}", "holdout_rows": str(chal.rows)}
    if champ is not None:
        tags.update({"champion_version_compared": str(champ_v), "champion_holdout_rmsle": f"{champ.rmsle:.5f}"})
    for k, v in tags.items():
        client.set_model_version_tag(name, str(chal_v), k, v)
    if promote:
        client.set_registered_model_alias(name, tracking.CHAMPION, str(chal_v))
    after = chal_v if promote else champ_v
    summary.task_values["champion_version"] = after if after is not None else ""
    info.update({"decision": tags["promotion_decision"], "reasons": reasons, "champion_after": after,
                 "holdout_rmsle": {"challenger": round(chal.rmsle, 5),
                                   "champion": None if champ is None else round(champ.rmsle, 5)}})
    summary.info.update(info)
    return summary.finish()
