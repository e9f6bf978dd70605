"""Sizing a seller-randomised experiment: power and sample size for a minimum detectable effect.

The variance comes from history, per seller: for a past window as long as the planned experiment, each
metric's per-seller delta-method values ``z_j`` (``analysis.linearise``) give ``sigma2 = var(z)``, so an
arm of ``n`` sellers estimates the metric with variance ``sigma2 / n``.  That already accounts for the
clustering of listings within sellers; ``design_effect`` says how much larger it is than if listings
were independent.  CUPED removes the share ``rho^2`` of it, ``rho`` the correlation of ``z`` with the same
metric's values over the window before (``k_j``), so the CUPED variance is ``sigma2 (1 - rho^2)``.

With a share ``p`` of sellers treated, the effect's variance is ``sigma2 / (n p (1 - p))``, and a two-sided
test at ``alpha`` has power ``1 - beta`` for an effect ``mde`` when
``n = (z_{1-alpha/2} + z_{1-beta})^2 sigma2 / (p (1 - p) mde^2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from pricing.experiment.analysis import METRICS, Metric, linearise, z_quantile

_N = NormalDist()


@dataclass(frozen=True)
class MetricVariance:
    metric: str
    baseline: float
    """The metric over the historical window (ratio of totals)."""
    sigma2: float
    """Per-seller variance of the delta-method values: Var(metric over n sellers) = sigma2 / n."""
    rho: float
    """Correlation of those values with the same metric over the window before (CUPED's covariate)."""
    n_sellers: int
    listings_per_seller: float
    design_effect: float
    """Var(metric) with sellers as clusters / Var(metric) if the same listings were independent."""

    @property
    def sigma2_cuped(self) -> float:
        return self.sigma2 * (1.0 - self.rho**2)


def metric_variance(sellers: pd.DataFrame, metric: Metric) -> MetricVariance:
    """History -> variance.  ``sellers``: one row per seller active in the window, with the window's
    totals (``listings, sold, gmv, days``, and ``gmv_sq, days_sq`` for the design effect) and the previous
    window's (``pre_*``, zeros where the seller had none)."""
    if len(sellers) < 3:
        raise ValueError(f"{metric.name}: {len(sellers)} seller(s) in the historical window; need at least 3")
    num = sellers[metric.numerator].to_numpy(dtype=np.float64)
    den = sellers[metric.denominator].to_numpy(dtype=np.float64)
    r, z = linearise(num, den)
    _, k = linearise(*(sellers[c].to_numpy(dtype=np.float64) for c in metric.covariate))
    sigma2 = float(np.var(z, ddof=1))
    rho = float(np.corrcoef(z, k)[0, 1]) if np.std(k) > 0 and np.std(z) > 0 else 0.0
    # Listing-level variance of the linearised metric, as if listings were independent: the denominators
    # are listing counts or 0/1 indicators with the numerator 0 where the indicator is 0, so
    # sum u^2 = sum y^2 - 2 R sum y + R^2 sum d over listings.
    sq = f"{metric.numerator}_sq"
    deff = float("nan")
    if sq in sellers.columns and den.sum() > 0:
        sum_u2 = sellers[sq].sum() - 2 * r * num.sum() + r**2 * den.sum()
        var_iid = sum_u2 / den.sum() ** 2
        var_cluster = sigma2 / len(sellers)
        deff = float(var_cluster / var_iid) if var_iid > 0 else float("nan")
    return MetricVariance(metric.name, r, sigma2, 0.0 if math.isnan(rho) else rho, len(sellers),
                          float(sellers["listings"].mean()), deff)


def required_sellers(sigma2: float, mde: float, alpha: float, power: float, treatment_share: float) -> int:
    """Sellers (both arms together) for a two-sided test at ``alpha`` to reach ``power`` at effect ``mde``."""
    if mde == 0:
        raise ValueError("the minimum detectable effect must not be 0")
    k = (z_quantile(alpha) + _N.inv_cdf(power)) ** 2
    return int(math.ceil(k * sigma2 / (treatment_share * (1 - treatment_share) * mde**2)))


def power_at(sigma2: float, mde: float, n_sellers: int, alpha: float, treatment_share: float) -> float:
    """Power of the two-sided test with ``n_sellers`` in all (both tails counted)."""
    se = math.sqrt(sigma2 / (n_sellers * treatment_share * (1 - treatment_share)))
    if se == 0:
        return 1.0
    zq = z_quantile(alpha)
    shift = abs(mde) / se
    return _N.cdf(shift - zq) + _N.cdf(-shift - zq)


def mde_at(sigma2: float, n_sellers: int, alpha: float, power: float, treatment_share: float) -> float:
    """The smallest effect detectable with ``power`` by ``n_sellers`` in all (one-tail approximation)."""
    se = math.sqrt(sigma2 / (n_sellers * treatment_share * (1 - treatment_share)))
    return (z_quantile(alpha) + _N.inv_cdf(power)) * se


def power_table(variances: list[MetricVariance], mde_relative: tuple[float, ...], mde_absolute: dict[str, float],
                alpha: float, power: float, treatment_share: float) -> pd.DataFrame:
    """One row per metric and minimum detectable effect: sellers needed (raw and with CUPED), the power
    with the sellers a window of history had, and the MDE those sellers reach."""
    rows = []
    for v in variances:
        mdes = [("relative", m, m * v.baseline) for m in mde_relative]
        if v.metric in mde_absolute:
            a = mde_absolute[v.metric]
            mdes.append(("absolute", a / v.baseline if v.baseline else float("nan"), a))
        for kind, rel, absolute in mdes:
            rows.append({
                "metric": v.metric, "baseline": v.baseline, "mde_kind": kind, "mde": absolute, "mde_relative": rel,
                "sellers_needed": required_sellers(v.sigma2, absolute, alpha, power, treatment_share),
                "sellers_needed_cuped": required_sellers(v.sigma2_cuped, absolute, alpha, power, treatment_share),
                "sellers_available": v.n_sellers,
                "power": power_at(v.sigma2, absolute, v.n_sellers, alpha, treatment_share),
                "power_cuped": power_at(v.sigma2_cuped, absolute, v.n_sellers, alpha, treatment_share),
                "mde_available": mde_at(v.sigma2, v.n_sellers, alpha, power, treatment_share),
                "mde_available_cuped": mde_at(v.sigma2_cuped, v.n_sellers, alpha, power, treatment_share),
                "cuped_variance_reduction": v.rho**2, "design_effect": v.design_effect,
                "listings_per_seller": v.listings_per_seller, "sigma2_per_seller": v.sigma2,
            })
    return pd.DataFrame(rows)


def all_metric_variances(sellers: pd.DataFrame, metrics: tuple[Metric, ...] = METRICS) -> list[MetricVariance]:
    return [metric_variance(sellers, m) for m in metrics]
