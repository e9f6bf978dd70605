"""Reading a seller-randomised experiment: SRM, pre-period balance, effects with cluster-robust and
CUPED-adjusted intervals, relative lifts, and a multiple-metric guard.

Input: one row per **seller** (the unit of randomisation) with ``treated`` and the seller's totals over
the experiment (``listings, sold, gmv, days``) and over the pre-period (``pre_listings, pre_sold,
pre_gmv, pre_days``).  Listing-level rows are never the unit: a seller's listings share its skill and
its prices, so treating them as independent understates the variance.

**Ratio metrics and the delta method.**  Every metric is a ratio of seller totals, ``R = sum Y / sum
N`` (sell-through = sold / listings, GMV per listing = gmv / listings, days on market = days /
listings, price accepted = gmv / sold).  Per arm, the delta method linearises it into per-seller
values ``z_j = (Y_j - R N_j) / mean(N)`` with mean 0, and ``Var(R) = var(z) / n_sellers``.  This is the
cluster-robust (CR1-type, per arm) sandwich variance of the listing-level difference in means: the
tests check it against that sandwich computed by matrix algebra.

**CUPED.**  Each metric's covariate is the same ratio over the seller's pre-period listings (created
and resolved before the experiment started, so unaffected by it), linearised the same way (``k_j``; a
seller without pre-period listings has ``k_j = 0``).  ``theta = sum z k / sum k^2`` pooled within arms
(the ANCOVA slope: the adjusted effect equals the OLS coefficient of the arm with the covariate),
adjusted arm means ``R_a - theta (Rx_a - Rx)``, variance ``var(z - theta k) / n`` per arm.

**Intervals and tests** are large-sample normal (hundreds of sellers per arm or more); p-values are
two-sided.  **Relative lift** ``T / C - 1`` gets a delta-method interval from the two arms' variances.

**Multiple metrics.**  Four metrics are read at once, so the chance that at least one crosses alpha by
luck is well above alpha.  The default guard is **Holm** (step-down Bonferroni): it controls the
family-wise error rate, the right promise for a ship decision read off a handful of metrics, is never
less powerful than Bonferroni, and holds under any dependence (GMV and sell-through are strongly
correlated).  Benjamini-Hochberg (``bh``, false-discovery rate) suits screening many metrics, where a
few false leads are acceptable; it is available but not the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd

Correction = Literal["holm", "bh"]
_N = NormalDist()


@dataclass(frozen=True)
class Metric:
    name: str
    numerator: str
    denominator: str
    label: str
    unit: str

    @property
    def covariate(self) -> tuple[str, str]:
        """The same ratio over the pre-period (``pre_<numerator> / pre_<denominator>``)."""
        return f"pre_{self.numerator}", f"pre_{self.denominator}"


METRICS: tuple[Metric, ...] = (
    Metric("sell_through", "sold", "listings", "sell-through within H days", "share"),
    Metric("gmv_per_listing", "gmv", "listings", "GMV per listing", "GBP"),
    Metric("days_on_market", "days", "listings", "days to sell (capped at H)", "days"),
    Metric("price_accepted", "gmv", "sold", "price accepted (sold listings)", "GBP"),
)
METRIC_NAMES = tuple(m.name for m in METRICS)
SELLER_INPUT = ("treated", "listings", "sold", "gmv", "days", "pre_listings", "pre_sold", "pre_gmv", "pre_days")


def normal_p_value(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2.0)) if math.isfinite(z) else float("nan")


def z_quantile(alpha: float) -> float:
    """``z`` with ``P(|Z| > z) = alpha``."""
    return _N.inv_cdf(1.0 - alpha / 2.0)


# ---- sample-ratio mismatch -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SrmResult:
    n_control: int
    n_treatment: int
    expected_share: float
    observed_share: float
    chi2: float
    p_value: float
    ok: bool
    """False: the split differs from the design by more than chance (p < srm_alpha); distrust the effects."""

    def message(self) -> str:
        verdict = "ok" if self.ok else "FAILED: the observed split is not the designed one; do not trust the effects"
        return (f"SRM {verdict} (sellers control={self.n_control:,} treatment={self.n_treatment:,}, "
                f"treatment share {self.observed_share:.4f} vs designed {self.expected_share:.4f}, "
                f"chi2={self.chi2:.2f}, p={self.p_value:.3g})")


def srm_test(n_control: int, n_treatment: int, treatment_share: float, srm_alpha: float = 0.001) -> SrmResult:
    """Chi-square goodness of fit (1 df) of the seller counts per arm against the designed split.

    Counted in sellers, the unit of randomisation: listing counts are clustered, and a chi-square on them
    would flag perfectly fair splits.  ``srm_alpha`` is small (0.001 by convention) because the check
    runs on every experiment and a false alarm stops a read-out.
    """
    n = n_control + n_treatment
    if n == 0:
        raise ValueError("no sellers in the experiment")
    exp_t, exp_c = n * treatment_share, n * (1 - treatment_share)
    chi2 = (n_treatment - exp_t) ** 2 / exp_t + (n_control - exp_c) ** 2 / exp_c
    p = math.erfc(math.sqrt(chi2 / 2.0))  # chi-square with 1 df: P(X > x) = P(|Z| > sqrt(x))
    return SrmResult(n_control, n_treatment, treatment_share, n_treatment / n, chi2, p, p >= srm_alpha)


# ---- multiple-testing guard ------------------------------------------------------------------------------
def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate, any dependence)."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (false-discovery rate)."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def adjust(p: np.ndarray, correction: Correction) -> np.ndarray:
    if correction == "holm":
        return holm(p)
    if correction == "bh":
        return benjamini_hochberg(p)
    raise ValueError(f"unknown correction {correction!r}: holm or bh")


# ---- the estimators --------------------------------------------------------------------------------------
def linearise(num: np.ndarray, den: np.ndarray) -> tuple[float, np.ndarray]:
    """``(R, z)``: the ratio of totals and its per-unit delta-method linearisation (mean 0, ``Var(R) ~ var(z)/n``).
    Units with ``den = 0`` contribute ``z = 0`` (nothing to average); all-zero ``den`` gives ``R = nan``."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    total = den.sum()
    if total <= 0:
        return float("nan"), np.zeros_like(num)
    r = num.sum() / total
    return float(r), (num - r * den) / den.mean()


@dataclass(frozen=True)
class Estimate:
    """One metric's read-out.  ``effect`` etc. are CUPED-adjusted; ``*_raw`` are without the covariate."""

    metric: str
    control_mean: float
    treatment_mean: float
    effect: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    relative_lift: float
    lift_ci_low: float
    lift_ci_high: float
    effect_raw: float
    se_raw: float
    ci_low_raw: float
    ci_high_raw: float
    p_value_raw: float
    relative_lift_raw: float
    lift_ci_low_raw: float
    lift_ci_high_raw: float
    theta: float
    variance_reduction: float
    """``1 - Var(CUPED effect) / Var(raw effect)``."""
    ci_width_reduction: float
    """``1 - width(CUPED CI) / width(raw CI)`` = ``1 - sqrt(1 - variance_reduction)``."""


def _lift(t: float, c: float, var_t: float, var_c: float, z: float) -> tuple[float, float, float]:
    if not c:
        return float("nan"), float("nan"), float("nan")
    lift = t / c - 1.0
    se = math.sqrt(var_t / c**2 + t**2 * var_c / c**4)
    return lift, lift - z * se, lift + z * se


def estimate(num: np.ndarray, den: np.ndarray, treated: np.ndarray, cov_num: np.ndarray | None = None,
             cov_den: np.ndarray | None = None, alpha: float = 0.05, metric: str = "") -> Estimate:
    """Difference in a ratio metric between arms, per seller, raw and CUPED-adjusted (see module doc).

    Without a covariate (or with one that never varies) the CUPED columns equal the raw ones.
    """
    treated = np.asarray(treated, dtype=bool)
    arms = (~treated, treated)
    if min(int(a.sum()) for a in arms) < 2:
        raise ValueError(f"{metric or 'metric'}: each arm needs at least 2 sellers, got "
                         f"control={int((~treated).sum())}, treatment={int(treated.sum())}")
    zq = z_quantile(alpha)
    r, zs, rx, ks = [], [], [], []
    for a in arms:
        ra, za = linearise(num[a], den[a])
        r.append(ra)
        zs.append(za)
        if cov_num is not None and cov_den is not None:
            rxa, ka = linearise(cov_num[a], cov_den[a])
        else:
            rxa, ka = float("nan"), np.zeros(int(a.sum()))
        rx.append(rxa)
        ks.append(ka)
    var_raw = [float(np.var(za, ddof=1)) / len(za) for za in zs]
    sum_kk = sum(float(k @ k) for k in ks)
    theta = sum(float(za @ k) for za, k in zip(zs, ks, strict=True)) / sum_kk if sum_kk > 0 else 0.0
    if theta and cov_num is not None and cov_den is not None:
        rx_all = float(np.sum(cov_num) / np.sum(cov_den))
        adj = [ra - theta * (rxa - rx_all) for ra, rxa in zip(r, rx, strict=True)]
    else:
        adj = list(r)
    var_cv = [float(np.var(za - theta * k, ddof=1)) / len(za) for za, k in zip(zs, ks, strict=True)]

    def read(means: list[float], var: list[float]) -> tuple[float, float, float, float, float, float, float, float]:
        effect = means[1] - means[0]
        se = math.sqrt(var[0] + var[1])
        p = normal_p_value(effect / se) if se > 0 else (0.0 if effect else 1.0)
        lift, lo, hi = _lift(means[1], means[0], var[1], var[0], zq)
        return effect, se, effect - zq * se, effect + zq * se, p, lift, lo, hi

    e_cv, se_cv, lo_cv, hi_cv, p_cv, l_cv, llo_cv, lhi_cv = read(adj, var_cv)
    e_r, se_r, lo_r, hi_r, p_r, l_r, llo_r, lhi_r = read(r, var_raw)
    vr = 1.0 - (se_cv**2 / se_r**2) if se_r > 0 else 0.0
    return Estimate(metric, adj[0], adj[1], e_cv, se_cv, lo_cv, hi_cv, p_cv, l_cv, llo_cv, lhi_cv,
                    e_r, se_r, lo_r, hi_r, p_r, l_r, llo_r, lhi_r, theta, vr,
                    1.0 - math.sqrt(max(0.0, 1.0 - vr)))


# ---- pre-period balance ----------------------------------------------------------------------------------
def balance(sellers: pd.DataFrame, balance_alpha: float = 0.01) -> pd.DataFrame:
    """Pre-period balance between arms on seller-level covariates, one row each.

    Covariates: pre-period listings per seller, the share of sellers with a pre-period, and each metric's
    pre-period value per seller (among sellers with one).  ``smd`` is the standardised mean difference
    ``(mean_T - mean_C) / sqrt((var_T + var_C) / 2)``; ``p_value`` a Welch (normal) test; ``p_adjusted``
    Holm over the covariates; ``ok`` is ``p_adjusted >= balance_alpha``.  Randomisation balances the
    arms in expectation, so a failure points at a broken assignment, not at bad luck, unless n is tiny.
    """
    t = sellers["treated"].to_numpy(dtype=bool)
    pre_n = sellers["pre_listings"].to_numpy(dtype=np.float64)
    covs: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "pre_listings": (pre_n, np.ones_like(pre_n, dtype=bool)),
        "has_pre_period": ((pre_n > 0).astype(np.float64), np.ones_like(pre_n, dtype=bool)),
    }
    for m in METRICS:
        cn, cd = m.covariate
        d = sellers[cd].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            covs[f"pre_{m.name}"] = (sellers[cn].to_numpy(dtype=np.float64) / d, d > 0)
    rows = []
    for name, (x, valid) in covs.items():
        xc, xt = x[valid & ~t], x[valid & t]
        if len(xc) < 2 or len(xt) < 2:
            rows.append((name, float("nan"), float("nan"), float("nan"), float("nan")))
            continue
        vc, vt = float(np.var(xc, ddof=1)), float(np.var(xt, ddof=1))
        diff = float(xt.mean() - xc.mean())
        sd = math.sqrt((vc + vt) / 2.0)
        se = math.sqrt(vc / len(xc) + vt / len(xt))
        rows.append((name, float(xc.mean()), float(xt.mean()), diff / sd if sd > 0 else 0.0,
                     normal_p_value(diff / se) if se > 0 else 1.0))
    out = pd.DataFrame(rows, columns=["covariate", "control_mean", "treatment_mean", "smd", "p_value"])
    p = out["p_value"].to_numpy()
    ok_p = ~np.isnan(p)
    out["p_adjusted"] = np.nan
    out.loc[ok_p, "p_adjusted"] = holm(p[ok_p])
    out["ok"] = ~(out["p_adjusted"] < balance_alpha)
    return out


# ---- the whole read-out ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Analysis:
    srm: SrmResult
    balance: pd.DataFrame
    results: pd.DataFrame
    """One row per metric: the ``Estimate`` fields, ``p_adjusted``, ``significant`` and the arms' sizes."""
    alpha: float
    correction: Correction

    @property
    def balance_ok(self) -> bool:
        return bool(self.balance["ok"].all())


def check_sellers(sellers: pd.DataFrame) -> None:
    missing = [c for c in SELLER_INPUT if c not in sellers.columns]
    if missing:
        raise ValueError(f"the seller frame lacks columns {missing}; it needs {list(SELLER_INPUT)}")
    nums = sellers[list(SELLER_INPUT[1:])]
    if nums.isna().any().any() or (nums < 0).any().any():
        raise ValueError("seller totals must be non-negative numbers (no nulls): fill absent pre-periods with 0")
    if (sellers["listings"] <= 0).any():
        raise ValueError("every seller in the experiment needs at least one listing")


def analyse(sellers: pd.DataFrame, treatment_share: float, alpha: float = 0.05, correction: Correction = "holm",
            srm_alpha: float = 0.001, balance_alpha: float = 0.01,
            metrics: tuple[Metric, ...] = METRICS) -> Analysis:
    """SRM, balance and every metric's estimate, with ``p_adjusted`` over the metrics by ``correction``."""
    check_sellers(sellers)
    t = sellers["treated"].to_numpy(dtype=bool)
    srm = srm_test(int((~t).sum()), int(t.sum()), treatment_share, srm_alpha)
    col = lambda c: sellers[c].to_numpy(dtype=np.float64)  # noqa: E731
    ests = [estimate(col(m.numerator), col(m.denominator), t, col(m.covariate[0]), col(m.covariate[1]),
                     alpha, m.name) for m in metrics]
    res = pd.DataFrame([e.__dict__ for e in ests])
    res["p_adjusted"] = adjust(res["p_value"].to_numpy(), correction)
    res["significant"] = res["p_adjusted"] < alpha
    res["n_sellers_control"], res["n_sellers_treatment"] = srm.n_control, srm.n_treatment
    for arm, mask in (("control", ~t), ("treatment", t)):
        res[f"n_listings_{arm}"] = int(sellers.loc[mask, "listings"].sum())
    return Analysis(srm, balance(sellers, balance_alpha), res, alpha, correction)
