"""Baselines, segments and the noise floor, on hand-written rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.price_model.evaluation import (
    RARE_BRAND,
    UNBRANDED,
    baseline_predictions,
    behind_a_baseline,
    brand_tiers,
    noise_floor,
    segment_metrics,
    with_baselines,
    with_segments,
)
from pricing.price_model.metrics import rmsle

TRAIN = [("A", "tops", "good", 1.0), ("A", "tops", "good", 1.5), (None, "tops", "used", 2.0),
         ("B", "shoes", "good", 4.0)]


def test_baselines_are_medians_of_the_training_weeks_with_brand_shrinkage(spark) -> None:
    train = spark.createDataFrame(TRAIN, "brand string, category string, condition string, label double")
    test = pd.DataFrame({"brand": ["A", "C", None, "B"], "category": ["tops", "tops", "jackets", "shoes"],
                         "condition": ["good", "used", "good", "good"]})
    got = baseline_predictions(train, test, shrinkage_k=2.0)
    # global median of 1, 1.5, 2, 4 is 1.75; tops median 1.5; (A, tops) median 1.25 over n=2 sales
    np.testing.assert_allclose(got["global_median"], [1.75] * 4)
    np.testing.assert_allclose(got["category_condition_median"], [1.25, 2.0, 1.75, 4.0])
    np.testing.assert_allclose(got["brand_category_shrunk"],
                               [(2 * 1.25 + 2 * 1.5) / 4, 1.5, 1.75, (1 * 4.0 + 2 * 4.0) / 3])


def test_brand_tiers_rank_brands_with_enough_sales_by_median_price(spark) -> None:
    rows = [(f"b{i}", float(i)) for i in range(1, 6) for _ in range(3)] + [("rare", 9.0)]
    train = spark.createDataFrame(rows, "brand string, label double")
    tiers = brand_tiers(train, min_sales=3).sort_values("brand").reset_index(drop=True)
    assert tiers.to_dict("list") == {"brand": ["b1", "b2", "b3", "b4", "b5"],
                                     "brand_tier": ["tier 1", "tier 2", "tier 3", "tier 4", "tier 5"]}


def test_segments_label_brand_tier_price_band_and_seller_type() -> None:
    frame = pd.DataFrame({"label": np.log1p([5.0, 30.0, 150.0]), "brand": ["b1", None, "zz"],
                          "category": ["tops", None, "shoes"], "condition": ["good", "used", None],
                          "seller_prior_listings": [0, 4, np.nan]})
    tiers = pd.DataFrame({"brand": ["b1"], "brand_tier": ["tier 2"]})
    out = with_segments(frame, tiers)
    assert out["brand_tier"].tolist() == ["tier 2", UNBRANDED, RARE_BRAND]
    assert out["price_band"].tolist() == ["0-10", "25-50", "100+"]
    assert out["seller_type"].tolist() == ["new", "returning", "unknown"]
    assert out["category"].tolist() == ["tops", "(none)", "shoes"]


def test_segment_metrics_are_computed_within_each_segment() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.0, 4.0])
    frame = pd.DataFrame({"label": y, "p10_log": p - 1, "p50_log": p, "p90_log": p + 0.5, "cat": ["a", "a", "b", "b"]})
    seg = segment_metrics(frame, ["cat"]).set_index("value")
    assert seg.loc["a", "rows"] == 2 and seg.loc["b", "rows"] == 2
    assert seg.loc["a", "rmsle"] == pytest.approx(rmsle(y[:2], p[:2]))
    assert seg.loc["b", "rmsle"] == pytest.approx(rmsle(y[2:], p[2:]))
    # 3.0 lies above [1.0, 2.5]: one of segment b's two rows is outside its range
    assert seg.loc["b", "coverage_80"] == pytest.approx(0.5)


def test_each_segment_is_judged_against_its_best_baseline_in_hindsight() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    p = np.array([1.1, 2.1, 3.5, 4.5, 5.0])
    frame = pd.DataFrame({"label": y, "p10_log": p - 1, "p50_log": p, "p90_log": p + 1,
                          "cat": ["a", "a", "b", "b", "b"]})
    preds = {"flat": np.full(5, 3.0), "close": y + np.array([0.5, 0.5, 0.1, 0.1, 0.1])}
    seg = with_baselines(segment_metrics(frame, ["cat"]), frame, preds, ["cat"]).set_index("value")
    # a: the model (0.1 off) beats both; b: "close" (0.1 off) beats the model (0.5, 0.5, 0 off)
    assert seg.loc["a", "best_baseline"] == "close" and seg.loc["a", "best_baseline_rmsle"] == pytest.approx(0.5)
    assert seg.loc["b", "best_baseline"] == "close" and seg.loc["b", "best_baseline_rmsle"] == pytest.approx(0.1)
    assert behind_a_baseline(seg.reset_index(), min_rows=3)["value"].tolist() == ["b"]
    assert behind_a_baseline(seg.reset_index(), min_rows=4).empty
    # a segment defined by the outcome (the sold-price band) is reported, never counted
    assert behind_a_baseline(seg.reset_index().assign(segment="price_band"), min_rows=3).empty


def test_noise_floor_is_the_error_left_when_fair_value_and_seller_markup_are_known() -> None:
    rng = np.random.default_rng(3)

    def frame(n: int, noise: np.ndarray) -> pd.DataFrame:
        lfo, skill = rng.normal(3.0, 0.7, n), rng.uniform(0, 1, n)
        return pd.DataFrame({"log_fair_observable": lfo, "seller_skill": skill,
                             "label": np.log1p(np.exp(lfo + 0.15 - 0.1 * skill + noise))})

    train = frame(500, np.zeros(500))
    noise = rng.normal(0, 0.3, 400)
    test = frame(400, noise)
    oracle = np.log1p(np.exp(np.log(np.expm1(test["label"])) - noise))
    assert noise_floor(train, test) == pytest.approx(rmsle(test["label"].to_numpy(), oracle.to_numpy()), rel=1e-6)
    assert noise_floor(train.head(5), test) is None


def test_the_oracles_ridge_is_exact_and_equals_scikit_learns_with_its_intercept_unpenalised() -> None:
    from scipy import sparse
    from sklearn.linear_model import Ridge

    from pricing.price_model.oracle import ridge_path, ridge_predict

    rng = np.random.default_rng(3)
    n = 400
    onehot = sparse.csr_matrix((np.ones(n), (np.arange(n), rng.integers(0, 25, n))), shape=(n, 25))
    X = sparse.hstack([onehot, sparse.csr_matrix(rng.normal(size=(n, 3)))]).tocsr()
    y = 2.5 + X @ rng.normal(size=28) + rng.normal(scale=0.3, size=n)
    fitted = ridge_path(X, y, (0.5, 4.0))
    for alpha, w in fitted.items():
        ref = Ridge(alpha=alpha, solver="cholesky").fit(X.toarray(), y)  # a direct solve: exact too
        np.testing.assert_allclose(w[:-1], ref.coef_, rtol=0, atol=1e-9)
        assert w[-1] == pytest.approx(ref.intercept_, abs=1e-9)
        np.testing.assert_allclose(ridge_predict(X, w), ref.predict(X.toarray()), rtol=0, atol=1e-9)
    # The penalty shrinks: a larger one gives a smaller coefficient norm.
    assert np.linalg.norm(fitted[4.0][:-1]) < np.linalg.norm(fitted[0.5][:-1])


def test_structured_oracle_learns_additive_effects_down_to_the_noise() -> None:
    from pricing.price_model.oracle import ATTRIBUTES, structured_oracle

    rng = np.random.default_rng(5)
    brand_effect = dict(zip(["a", "b", "c", "d"], [0.0, 0.5, -0.4, 1.0], strict=True))

    def frame(n: int) -> pd.DataFrame:
        f = pd.DataFrame({a: "x" for a in ATTRIBUTES}, index=range(n))
        f["brand"] = rng.choice(list(brand_effect), n)
        f["is_rare"] = rng.random(n) < 0.2
        f[["is_deadstock", "has_stain", "is_bundle"]] = False
        f["product_id"] = rng.integers(0, 5, n)
        f["seller_skill"] = rng.random(n)
        f["listing_id"] = np.arange(n)
        f["label"] = (3.0 + f["brand"].map(brand_effect) + 0.3 * f["is_rare"] - 0.2 * f["seller_skill"]
                      + 0.1 * f["product_id"] + rng.normal(0, 0.2, n))
        return f

    got = structured_oracle(frame(2000), frame(300), frame(1000))
    assert got is not None and 0.18 < got < 0.22  # the noise's sd: every effect learnt
    assert structured_oracle(frame(10), frame(5), frame(5)) is None
