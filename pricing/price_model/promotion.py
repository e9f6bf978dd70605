"""The champion/challenger gate: both models scored on the same holdout of their own; `champion` moves only if
the challenger is better overall by the configured margin and no major segment gets worse beyond a tolerance."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config, PromoteConfig
from pricing.platform.errors import ModelGateError
from pricing.platform.tables import table
from pricing.price_model.evaluation import overall_metrics, segment_metrics, with_segments
from pricing.price_model.predictor import PricePredictor
from pricing.price_model.training import EVAL_COLS, score_with_labels, time_split

GATE_SEGMENTS = ("category", "condition", "seller_type")


"""Segments the gate guards: defined by what is known before the sale.  Not the sold-price band (a segment
chosen by the outcome favours models that shrink toward the middle) and not brand tiers (learnt from one model's
training weeks)."""


EMPTY_TIERS = pd.DataFrame({"brand": pd.Series(dtype=object), "brand_tier": pd.Series(dtype=object)})


def load_version(name: str, version: int) -> PricePredictor:
    """The predictor (boosters, features, interval rule) of one registered version, as this package's
    :class:`PricePredictor` (a model logged from code defines its own copy of the class when loaded)."""
    model = tracking.load_code_model(name, version)
    return PricePredictor.from_bytes(model.predictor.to_bytes())


@dataclass(frozen=True)
class HoldoutResult:
    rmsle: float
    coverage_80: float
    rows: int
    segments: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    """(dimension, value) -> (RMSLE, rows)."""


def evaluate_on_holdout(spark: SparkSession, cfg: Config, predictor: PricePredictor) -> HoldoutResult:
    """Score ``predictor`` on the gate's own holdout of the training table's current test window
    (:attr:`Split.holdout`: ``promote.holdout_share`` of its listings, by a stable hash): never the rows whose
    figures a training run reports, and never rows a model of this table trained, stopped or calibrated on."""
    test = time_split(delta_io.read(spark, table(cfg, catalog.TRAINING_SET)), cfg).holdout
    missing = [f for f in predictor.features if f not in test.columns]
    if missing:
        raise ModelGateError(f"the model needs feature columns the training table no longer has: {missing}")
    frame = with_segments(score_with_labels(test, predictor, EVAL_COLS), EMPTY_TIERS)
    m = overall_metrics(frame)
    seg: Iterable[Any] = segment_metrics(frame, GATE_SEGMENTS).itertuples()  # segment, value, rmsle, rows
    return HoldoutResult(m["rmsle"], m["coverage_80"], int(m["rows"]),
                         {(r.segment, r.value): (r.rmsle, int(r.rows)) for r in seg})


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
