"""Pins on the headline figures: on the session's small simulated world (fixed seed), the champion the workflow
trained stays within a ratio of the noise floor and within a coverage band, overall and per segment; the same
check fails for the same model fed shuffled features.  No training here: it reuses the ``workflow`` fixture's
model and training table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.tables import table
from pricing.price_model.evaluation import (
    SEGMENTS,
    brand_tiers,
    overall_metrics,
    segment_metrics,
    with_segments,
)
from pricing.price_model.predictor import PricePredictor
from pricing.price_model.promotion import load_version
from pricing.price_model.training import (
    EVAL_COLS,
    SimulatorTruth,
    Split,
    simulator_noise_floor,
    simulator_truth,
    time_split,
)

pytestmark = pytest.mark.slow

MAX_RATIO = 1.6
"""Test RMSLE / noise floor on the small world (about 4k training rows): the model measured 1.438 (2026-12-04, with
the brand premium; 1.71 before it); the same model on shuffled features is far above (its error is about the
global median's, a ratio near 2.5)."""
MAX_BRAND_PREMIUM_DELTA = -0.05
"""The brand premium's worth in the ablation (test RMSLE with it less without it): measured -0.100 (0.4704 against
0.5704).  A premium that reads nothing, or noise, is worth about 0."""
COVERAGE = (0.72, 0.88)
"""Overall 80%-range coverage band on the small world's ~400 test rows (measured 0.806)."""
MIN_SEGMENT_COVERAGE = 0.6
"""Lowest coverage allowed in any price band, brand tier or category with ``MIN_SEGMENT_ROWS`` test rows
(measured 0.687; a 100-row segment's coverage has a standard error near 0.04)."""
MIN_SEGMENT_ROWS = 100
"""The small world has too few test rows for the issue's 200-row segments; this many still say something."""


def pin_problems(ratio: float, coverage: float, segment_coverage: float) -> list[str]:
    """What breaks the pins; empty when the figures hold."""
    problems = []
    if ratio > MAX_RATIO:
        problems.append(f"RMSLE / noise floor {ratio:.3f} > {MAX_RATIO}")
    if not COVERAGE[0] <= coverage <= COVERAGE[1]:
        problems.append(f"coverage {coverage:.3f} outside {COVERAGE}")
    if segment_coverage < MIN_SEGMENT_COVERAGE:
        problems.append(f"lowest segment coverage {segment_coverage:.3f} < {MIN_SEGMENT_COVERAGE}")
    return problems


def figures(cfg: Config, split: Split, truth: SimulatorTruth, predictor: PricePredictor, test: pd.DataFrame,
            shuffle: bool = False) -> tuple[float, float, float]:
    """(RMSLE / noise floor, coverage, lowest coverage among price bands, brand tiers and categories) of
    ``predictor`` on the test rows; ``shuffle``: each feature column permuted across rows first."""
    X = predictor.matrix(test)
    if shuffle:
        rng = np.random.default_rng(0)
        X = np.column_stack([rng.permutation(X[:, j]) for j in range(X.shape[1])])
    p10, p50, p90 = predictor.predict_log(X)
    frame = with_segments(test.assign(p10_log=p10, p50_log=p50, p90_log=p90),
                          brand_tiers(split.train, cfg.train.brand_tier_min_sales))
    floor = simulator_noise_floor(truth, frame)
    assert floor is not None
    m = overall_metrics(frame)
    seg = segment_metrics(frame, [s for s in SEGMENTS if s in ("price_band", "brand_tier", "category")])
    return m["rmsle"] / floor, m["coverage_80"], float(seg[seg["rows"] >= MIN_SEGMENT_ROWS]["coverage_80"].min())


@pytest.fixture(scope="module")
def champion(spark, cfg: Config, workflow
             ) -> tuple[Split, SimulatorTruth, PricePredictor, pd.DataFrame, dict[str, float]]:
    tracking.setup(cfg)
    client = MlflowClient()
    version = client.get_model_version_by_alias(cfg.mlflow.model_name, tracking.CHAMPION)
    predictor = load_version(cfg.mlflow.model_name, int(version.version))
    split = time_split(delta_io.read(spark, table(cfg, catalog.TRAINING_SET)), cfg)
    cols = ["listing_id", "label", *EVAL_COLS, *[c for c in predictor.features if c not in EVAL_COLS]]
    test = split.test.select(*cols).toPandas()
    truth = simulator_truth(spark, cfg, split)  # read once for both figures
    assert truth is not None, "the small world writes its truth tables"
    return split, truth, predictor, test, client.get_run(version.run_id).data.metrics


def test_pins_hold_for_the_trained_model(cfg: Config, champion) -> None:
    split, truth, predictor, test, logged = champion
    ratio, coverage, seg_cov = figures(cfg, split, truth, predictor, test)
    # The same figures the training run logged (the pins guard what is reported, not a private recomputation).
    assert ratio == pytest.approx(logged["rmsle_over_noise_floor"], rel=1e-4)
    assert coverage == pytest.approx(logged["test_coverage_80"], abs=1e-9)
    assert pin_problems(ratio, coverage, seg_cov) == [], (ratio, coverage, seg_cov)


def test_pins_fail_for_a_model_fed_shuffled_features(cfg: Config, champion) -> None:
    split, truth, predictor, test, _ = champion
    ratio, coverage, seg_cov = figures(cfg, split, truth, predictor, test, shuffle=True)
    problems = pin_problems(ratio, coverage, seg_cov)
    assert any("noise floor" in p for p in problems), (ratio, coverage, seg_cov)


def test_the_brand_premium_is_worth_what_was_reported(champion) -> None:
    """``train.ablation`` is on in the test workflow: the refit without the brand premium is far worse."""
    *_, logged = champion
    assert logged["test_rmsle_delta_brand_premium"] <= MAX_BRAND_PREMIUM_DELTA, logged["test_rmsle_delta_brand_premium"]
