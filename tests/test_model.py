"""The price model's predictor: interval rules, non-crossing output, serialisation, distributed scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from chispa import assert_df_equality

from pricing.price_model.predictor import ALL, Intervals, PricePredictor, conformal_offsets, score_frame

FEATURES = ("x", "seg")


def _booster(y_shift: float = 0.0, seed: int = 0) -> xgb.Booster:
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(0, 5, 400), rng.integers(0, 3, 400)]).astype(np.float32)
    y = 1.0 + 0.5 * X[:, 0] + y_shift
    b = xgb.train({"max_depth": 3, "eta": 0.3, "nthread": 1}, xgb.DMatrix(X, y), num_boost_round=20)
    b.feature_names = list(FEATURES)
    return b


def test_conformal_offsets_are_residual_quantiles_per_segment_with_a_global_fallback() -> None:
    resid = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, -0.5, 0.5, -0.2, 0.2, 0.1])
    seg = np.array([1, 1, 1, 1, 1, 2, 2, 2, 2, np.nan])
    got = conformal_offsets(resid, seg, (0.1, 0.9), min_rows=5)
    assert set(got) == {ALL, "1"}  # segment 2 has 4 rows < 5: it falls back to the global offsets
    assert got["1"] == pytest.approx((np.quantile([-2, -1, 0, 1, 2], 0.1), np.quantile([-2, -1, 0, 1, 2], 0.9)))
    assert got[ALL] == pytest.approx((np.quantile(resid, 0.1), np.quantile(resid, 0.9)))


def test_offsets_that_do_not_straddle_zero_are_refused() -> None:
    with pytest.raises(ValueError, match="straddle 0"):
        Intervals("conformal", None, {ALL: (0.1, 0.3)})


def test_conformal_ranges_use_each_rows_segment_and_never_cross() -> None:
    iv = Intervals("conformal", "seg", {ALL: (-0.1, 0.1), "2": (-0.5, 0.7)})
    pred = PricePredictor(FEATURES, _booster(), iv)
    X = np.array([[1.0, 0.0], [1.0, 2.0], [1.0, np.nan]], dtype=np.float32)
    lo, mid, hi = pred.predict_log(X)
    np.testing.assert_allclose(lo - mid, [-0.1, -0.5, -0.1])
    np.testing.assert_allclose(hi - mid, [0.1, 0.7, 0.1])
    p10, p50, p90 = pred.predict(X)
    assert (p10 <= p50).all() and (p50 <= p90).all()


def test_quantile_boosters_that_cross_are_sorted_around_the_median() -> None:
    # A "p10" model that predicts above the "p90" one: the output must still be ordered.
    pred = PricePredictor(FEATURES, _booster(0.0), Intervals("quantile"), lower=_booster(0.5), upper=_booster(-0.5))
    X = np.array([[0.5, 1.0], [4.0, 0.0]], dtype=np.float32)
    lo, mid, hi = pred.predict_log(X)
    assert (lo <= mid).all() and (mid <= hi).all()
    np.testing.assert_allclose(hi, np.asarray(_booster(0.5).inplace_predict(X)), rtol=1e-6)


def test_quantile_intervals_need_both_boosters() -> None:
    with pytest.raises(ValueError, match="p10 and p90 boosters"):
        PricePredictor(FEATURES, _booster(), Intervals("quantile"))


def test_predictor_round_trips_through_bytes_and_files(tmp_path) -> None:
    iv = Intervals("conformal", "seg", {ALL: (-0.2, 0.3), "1": (-0.4, 0.1)})
    pred = PricePredictor(FEATURES, _booster(), iv)
    X = np.array([[2.0, 1.0], [3.5, 0.0]], dtype=np.float32)
    for again in (PricePredictor.from_bytes(pred.to_bytes()), PricePredictor.load(pred.save(tmp_path / "m"))):
        assert again.intervals == iv and again.features == FEATURES
        for a, b in zip(again.predict(X), pred.predict(X), strict=True):
            np.testing.assert_array_equal(a, b)


def test_missing_feature_column_is_named() -> None:
    pred = PricePredictor(FEATURES, _booster(), Intervals())
    with pytest.raises(ValueError, match=r"\['seg'\]"):
        pred.matrix(pd.DataFrame({"x": [1.0]}))


def test_score_frame_matches_the_local_predictor(spark) -> None:
    iv = Intervals("conformal", "seg", {ALL: (-0.2, 0.3), "1": (-0.4, 0.1)})
    pred = PricePredictor(FEATURES, _booster(), iv)
    rows = [(1, 0.5, 1), (2, 4.0, 0), (3, None, 1)]
    df = spark.createDataFrame(rows, "listing_id long, x double, seg int")
    X = np.array([[0.5, 1], [4.0, 0], [np.nan, 1]], dtype=np.float32)
    p10, p50, p90 = pred.predict(X)
    expected = spark.createDataFrame(
        [(i, float(a), float(b), float(c)) for i, a, b, c in zip([1, 2, 3], p10, p50, p90, strict=True)],
        "listing_id long, p10 double, p50 double, p90 double")
    assert_df_equality(score_frame(df, pred), expected, ignore_row_order=True, ignore_nullable=True)
