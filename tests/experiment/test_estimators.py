"""The estimators on hand-written sellers, against numbers worked out by hand and against independent
formulas (the cluster-robust sandwich by matrix algebra, ANCOVA by least squares, scipy's chi-square)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pricing.experiment.analysis import (
    analyse,
    benjamini_hochberg,
    check_sellers,
    estimate,
    holm,
    linearise,
    srm_test,
)
from pricing.experiment.simulate import (
    ExperimentDesign,
    assign_treatment,
    seller_totals,
)

# Three sellers per arm: (listings, sold).  Control sells 2 of 6 listings, treatment 3 of 4.
CONTROL = [(2, 1), (1, 1), (3, 0)]
TREATMENT = [(1, 0), (2, 2), (1, 1)]


def _arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = CONTROL + TREATMENT
    n = np.array([r[0] for r in rows], dtype=float)
    y = np.array([r[1] for r in rows], dtype=float)
    t = np.array([False] * 3 + [True] * 3)
    return y, n, t


def test_delta_method_on_a_tiny_example_worked_by_hand() -> None:
    y, n, t = _arrays()
    est = estimate(y, n, t, alpha=0.05)
    # Control: R = 2/6, mean listings 2, z = (y - R n) / 2 = (1/6, 1/3, -1/2); var(z, ddof=1) = 7/36; /3 sellers.
    # Treatment: R = 3/4, mean listings 4/3, z = (-9/16, 3/8, 3/16); var = 63/256; /3 sellers.
    v_c, v_t = 7 / 108, 21 / 256
    assert est.control_mean == pytest.approx(1 / 3, abs=1e-12)
    assert est.treatment_mean == pytest.approx(3 / 4, abs=1e-12)
    assert est.effect_raw == pytest.approx(3 / 4 - 1 / 3, abs=1e-12)
    assert est.se_raw == pytest.approx(math.sqrt(v_c + v_t), abs=1e-12)
    z95 = 1.959963984540054
    assert est.ci_low_raw == pytest.approx(5 / 12 - z95 * math.sqrt(v_c + v_t), abs=1e-9)
    assert est.p_value_raw == pytest.approx(2 * stats.norm.sf((5 / 12) / math.sqrt(v_c + v_t)), rel=1e-9)
    # Relative lift T/C - 1 = 1.25; delta method: V_T / C^2 + T^2 V_C / C^4.
    se_lift = math.sqrt(v_t * 9 + (9 / 16) * v_c * 81)
    assert est.relative_lift_raw == pytest.approx(1.25, abs=1e-12)
    assert est.lift_ci_high_raw == pytest.approx(1.25 + z95 * se_lift, abs=1e-9)
    # No covariate: CUPED changes nothing.
    assert (est.effect, est.se, est.theta, est.variance_reduction) == (est.effect_raw, est.se_raw, 0.0, 0.0)


def test_delta_method_equals_the_cluster_robust_sandwich() -> None:
    """Listing-level OLS of y on [1, treated], sandwich meat summed over sellers, each arm's clusters scaled
    by n_arm / (n_arm - 1): the same variance as the seller-level delta method, to rounding."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 9, 60)
    seller = np.repeat(np.arange(60), sizes)
    treated_seller = rng.random(60) < 0.4
    skill = rng.normal(0, 1, 60)
    y = (rng.random(len(seller)) < 1 / (1 + np.exp(-(skill[seller] + 0.3 * treated_seller[seller])))).astype(float)
    X = np.column_stack([np.ones(len(seller)), treated_seller[seller].astype(float)])
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    u = y - X @ beta
    bread = np.linalg.inv(X.T @ X)
    meat = np.zeros((2, 2))
    n_arm = {True: treated_seller.sum(), False: (~treated_seller).sum()}
    for g in range(60):
        s = X[seller == g].T @ u[seller == g]
        meat += np.outer(s, s) * n_arm[bool(treated_seller[g])] / (n_arm[bool(treated_seller[g])] - 1)
    v = bread @ meat @ bread

    sold = np.bincount(seller, weights=y)
    est = estimate(sold, sizes.astype(float), treated_seller)
    assert est.effect_raw == pytest.approx(beta[1], abs=1e-12)
    assert est.se_raw == pytest.approx(math.sqrt(v[1, 1]), rel=1e-10)


def test_cuped_effect_is_the_ancova_coefficient_and_shrinks_the_interval() -> None:
    """One listing per seller in both periods: the CUPED effect with the pooled within-arm theta is the OLS
    coefficient of treated in y ~ 1 + treated + x."""
    rng = np.random.default_rng(11)
    n = 400
    x = rng.normal(10, 3, n)
    t = rng.random(n) < 0.5
    y = 2 + 0.8 * x + 0.5 * t + rng.normal(0, 1, n)
    ones = np.ones(n)
    est = estimate(y, ones, t, cov_num=x, cov_den=ones)
    coef = np.linalg.lstsq(np.column_stack([ones, t.astype(float), x]), y, rcond=None)[0]
    assert est.effect == pytest.approx(coef[1], abs=1e-10)
    # theta is the pooled within-arm slope of y on x.
    xc = np.concatenate([x[~t] - x[~t].mean(), x[t] - x[t].mean()])
    yc = np.concatenate([y[~t] - y[~t].mean(), y[t] - y[t].mean()])
    assert est.theta == pytest.approx((xc @ yc) / (xc @ xc), rel=1e-10)
    # Variance with the covariate: sum over arms of var(y - theta x) / n_arm.
    resid = y - est.theta * x
    se = math.sqrt(np.var(resid[t], ddof=1) / t.sum() + np.var(resid[~t], ddof=1) / (~t).sum())
    assert est.se == pytest.approx(se, rel=1e-10)
    # x explains most of y's variance (0.8^2 * 9 vs 1): the CUPED interval is much narrower.
    assert est.variance_reduction == pytest.approx(1 - est.se**2 / est.se_raw**2, abs=1e-12)
    assert est.variance_reduction > 0.8
    assert est.ci_width_reduction == pytest.approx(1 - (est.ci_high - est.ci_low) / (est.ci_high_raw - est.ci_low_raw))


def test_sellers_without_a_pre_period_get_a_zero_covariate() -> None:
    num, den = np.array([4.0, 1.0, 0.0, 0.0]), np.array([4.0, 2.0, 0.0, 0.0])
    r, z = linearise(num, den)
    assert r == pytest.approx(5 / 6)
    # Mean denominator 1.5; sellers with no pre-period listing contribute (0 - R * 0) / 1.5 = 0.
    assert z == pytest.approx([(4 - 10 / 3) / 1.5, (1 - 5 / 3) / 1.5, 0.0, 0.0])
    r_none, z_none = linearise(np.zeros(3), np.zeros(3))
    assert math.isnan(r_none) and not z_none.any()


def test_holm_and_benjamini_hochberg_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1, running max -> 0.02, 0.03, 0.06, 0.06.
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted p*4/rank = 0.02, 0.02, 0.04, 0.04, running min from the top.
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert holm(np.array([0.5, 0.9])) == pytest.approx([1.0, 1.0])


def test_srm_flags_a_skewed_split_and_not_a_fair_one() -> None:
    fair = srm_test(1012, 988, 0.5)
    skewed = srm_test(920, 1080, 0.5)
    ref = stats.chisquare([920, 1080], [1000, 1000])
    assert skewed.chi2 == pytest.approx(ref.statistic) and skewed.p_value == pytest.approx(ref.pvalue)
    assert fair.ok and not skewed.ok
    assert "FAILED" in skewed.message() and "treatment share 0.5400 vs designed 0.5000" in skewed.message()
    # An uneven design is judged against its own split.
    assert srm_test(700, 300, 0.3).ok


def test_srm_detected_on_a_deliberately_skewed_assignment() -> None:
    sellers = np.arange(4000)
    fair = assign_treatment(sellers, ExperimentDesign("srm", 0.5, 0.6, 30, seed=1))
    skewed = assign_treatment(sellers, ExperimentDesign("srm", 0.55, 0.6, 30, seed=1))
    # Both read against the 50/50 design: the 55% assignment is caught, the fair one is not.
    assert srm_test(int((~fair).sum()), int(fair.sum()), 0.5).ok
    bad = srm_test(int((~skewed).sum()), int(skewed.sum()), 0.5)
    assert not bad.ok and bad.p_value < 1e-6


def _sellers(n: int, seed: int, treated: np.ndarray | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    listings = rng.integers(1, 6, n)
    pre = rng.integers(0, 8, n)
    quality = rng.normal(0.5, 0.15, n).clip(0.05, 0.95)
    sold = rng.binomial(listings, quality)
    pre_sold = rng.binomial(pre, quality)
    return pd.DataFrame({
        "seller_id": np.arange(n), "treated": rng.random(n) < 0.5 if treated is None else treated,
        "listings": listings, "sold": sold, "gmv": sold * 20.0, "days": listings * 10.0,
        "pre_listings": pre, "pre_sold": pre_sold, "pre_gmv": pre_sold * 20.0, "pre_days": pre * 10.0,
    })


def test_balance_flags_an_assignment_that_followed_the_pre_period() -> None:
    fair = analyse(_sellers(2000, 5), 0.5)
    assert fair.balance_ok
    rigged = _sellers(2000, 5)
    # "Randomisation" that put the sellers with the best pre-period sell-through in treatment.
    rate = rigged["pre_sold"] / rigged["pre_listings"].replace(0, np.nan)
    rigged["treated"] = (rate > rate.median()).to_numpy()
    out = analyse(rigged, 0.5)
    bad = out.balance.set_index("covariate")
    assert not out.balance_ok
    assert not bad.loc["pre_sell_through", "ok"] and bad.loc["pre_sell_through", "smd"] > 1.0
    assert bad.loc["pre_days_on_market", "ok"]  # days are 10 per listing in both arms: balanced


def test_analyse_results_have_one_row_per_metric_with_the_guard() -> None:
    out = analyse(_sellers(600, 9), 0.5, correction="holm")
    res = out.results.set_index("metric")
    assert list(res.index) == ["sell_through", "gmv_per_listing", "days_on_market", "price_accepted"]
    assert res["p_adjusted"].to_numpy() == pytest.approx(holm(res["p_value"].to_numpy()))
    assert (res["significant"] == (res["p_adjusted"] < 0.05)).all()
    # Days are exactly 10 per listing in every seller: no variance, no effect, p = 1.
    assert res.loc["days_on_market", "effect"] == 0.0 and res.loc["days_on_market", "p_value"] == 1.0
    assert int(res["n_sellers_control"].iloc[0] + res["n_sellers_treatment"].iloc[0]) == 600


def test_bad_inputs_fail_with_a_clear_message() -> None:
    s = _sellers(10, 1)
    with pytest.raises(ValueError, match=r"lacks columns \['pre_days'\]"):
        check_sellers(s.drop(columns=["pre_days"]))
    with pytest.raises(ValueError, match="fill absent pre-periods with 0"):
        check_sellers(s.assign(pre_gmv=np.nan))
    with pytest.raises(ValueError, match="at least 2 sellers"):
        y, n, _ = _arrays()
        estimate(y, n, np.array([True, False, False, False, False, False]))
    both = pd.DataFrame({"seller_id": [7, 7, 8], "arm": ["control", "treatment", "control"], "sold": [1, 0, 1],
                         "gmv": [5.0, 0.0, 3.0], "days_on_market": [2.0, 30.0, 1.0]})
    with pytest.raises(ValueError, match="1 seller\\(s\\) appear in both arms, e.g. seller 7"):
        seller_totals(both)
