"""The price model's predictor: interval rules, non-crossing output, serialisation, distributed scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from chispa import assert_df_equality

from pricing.price_model.predictor import (
    ALL,
    P50_BAND,
    Intervals,
    PricePredictor,
    conformal_offsets,
    conformal_quantile,
    cqr_offsets,
    p50_bands,
    score_frame,
)
from pricing.price_model.training import score_with_labels

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
    with pytest.raises(ValueError, match="quantile intervals need the p10 and p90 boosters"):
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
    # Doubles no float32 holds (0.1, 2.0000001): Spark's cast to float rounds them as numpy (and xgboost) do.
    rows = [(1, 0.5, 1), (2, 4.0, 0), (3, None, 1), (4, 0.1, 0), (5, 2.0000001, 1)]
    df = spark.createDataFrame(rows, "listing_id long, x double, seg int")
    X = np.array([[0.5, 1], [4.0, 0], [np.nan, 1], [0.1, 0], [2.0000001, 1]], dtype=np.float64).astype(np.float32)
    p10, p50, p90 = pred.predict(X)
    expected = spark.createDataFrame(
        [(i, float(a), float(b), float(c)) for i, a, b, c in zip([1, 2, 3, 4, 5], p10, p50, p90, strict=True)],
        "listing_id long, p10 double, p50 double, p90 double")
    assert_df_equality(score_frame(df, pred), expected, ignore_row_order=True, ignore_nullable=True)


def test_evaluation_scores_on_the_driver_as_score_frame_does_on_executors(spark) -> None:
    iv = Intervals("conformal", "seg", {ALL: (-0.2, 0.3), "1": (-0.4, 0.1)})
    pred = PricePredictor(FEATURES, _booster(), iv)
    rows = [(1, 0.5, 1, 2.0, "a"), (2, 4.0, 0, 3.5, "b"), (3, None, 1, 1.0, "a"), (4, 0.1, 0, 0.7, "c"),
            (5, 2.0000001, 1, 4.2, "b")]
    df = spark.createDataFrame(rows, "listing_id long, x double, seg int, label double, brand string")
    # An extra column that is also a feature comes back as it is, beside the predictions.
    got = score_with_labels(df, pred, ("brand", "seg")).sort_values("listing_id").reset_index(drop=True)
    want = (score_frame(df, pred).join(df.select("listing_id", "label", "brand", "seg"), "listing_id").toPandas()
            .sort_values("listing_id").reset_index(drop=True))
    assert list(got.columns) == ["listing_id", "label", "brand", "seg", "p10", "p50", "p90", "p10_log", "p50_log",
                                 "p90_log"]
    for c in ("listing_id", "label", "brand", "seg", "p10", "p50", "p90"):
        assert got[c].tolist() == want[c].tolist(), c
    assert np.allclose(got["p50_log"], np.log1p(want["p50"]))


def test_conformal_quantile_is_the_finite_sample_rank() -> None:
    scores = np.arange(1.0, 11.0)  # 1..10
    assert conformal_quantile(scores, 0.8) == 9.0  # ceil(11 * 0.8) = 9th smallest
    assert conformal_quantile(scores, 0.95) == 10.0  # capped at the largest


def test_cqr_offsets_shift_each_side_to_its_miss_rate_per_segment() -> None:
    y = np.zeros(20)
    q_lo = np.linspace(-1.0, 0.9, 20)  # labels below q_lo where q_lo > 0: 9 of 20
    q_hi = np.full(20, -0.5)  # every label lies above q_hi, by 0.5
    seg = np.array([1.0] * 10 + [2.0] * 9 + [np.nan])
    got = cqr_offsets(y, q_lo, q_hi, seg, (0.1, 0.9), min_rows=10)
    assert set(got) == {ALL, "1"}  # segment 2 has 9 rows < 10
    assert got[ALL][0] == pytest.approx(-conformal_quantile(q_lo - y, 0.9))
    assert got[ALL][1] == pytest.approx(0.5)
    assert got["1"][0] == pytest.approx(-conformal_quantile(q_lo[:10], 0.9))
    # After the shift, at most 10% of calibration labels fall below p10
    assert np.mean(y < q_lo + got[ALL][0]) <= 0.1


def test_cqr_ranges_shift_the_quantile_boosters_per_segment_and_never_cross() -> None:
    iv = Intervals("cqr", "seg", {ALL: (-0.1, 0.2), "2": (0.3, -0.4)})
    pred = PricePredictor(FEATURES, _booster(0.0), iv, lower=_booster(-0.5), upper=_booster(0.5))
    X = np.array([[1.0, 0.0], [1.0, 2.0]], dtype=np.float32)
    lo, mid, hi = pred.predict_log(X)
    q_lo, q_hi = (np.asarray(b.inplace_predict(X), dtype=np.float64) for b in (_booster(-0.5), _booster(0.5)))
    np.testing.assert_allclose(lo, [q_lo[0] - 0.1, min(q_lo[1] + 0.3, mid[1])], rtol=1e-6)
    np.testing.assert_allclose(hi, [q_hi[0] + 0.2, max(q_hi[1] - 0.4, mid[1])], rtol=1e-6)
    assert (lo <= mid).all() and (mid <= hi).all()
    again = PricePredictor.from_bytes(pred.to_bytes())
    np.testing.assert_array_equal(again.predict_log(X)[0], lo)
    with pytest.raises(ValueError, match="cqr intervals need the p10 and p90 boosters"):
        PricePredictor(FEATURES, _booster(), iv)


def test_p50_band_segments_use_the_rows_own_median_prediction() -> None:
    median = _booster()
    X = np.array([[0.2, 0.0], [4.5, 0.0]], dtype=np.float32)  # a cheap and a dear prediction
    mid = np.asarray(median.inplace_predict(X), dtype=np.float64)
    edge = float(mid.mean())
    iv = Intervals("conformal", P50_BAND, {ALL: (-0.1, 0.1), "1": (-0.6, 0.4)}, bands=(edge,))
    pred = PricePredictor(FEATURES, median, iv)
    lo, mid2, hi = pred.predict_log(X)
    np.testing.assert_allclose(lo - mid2, [-0.1, -0.6])  # band 0 has no offsets of its own: the global ones
    np.testing.assert_allclose(hi - mid2, [0.1, 0.4])
    assert PricePredictor.from_bytes(pred.to_bytes()).intervals == iv
    assert p50_bands(np.arange(10.0), 2) == (4.5,)
