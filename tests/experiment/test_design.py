"""The design helper: the sample-size formula by hand, the variance it reads from history, and its promise
checked by resampling that history: experiments of the size it asks for reach the power it states."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pricing.experiment.analysis import METRICS, estimate
from pricing.experiment.design import (
    MetricVariance,
    all_metric_variances,
    mde_at,
    metric_variance,
    power_at,
    power_table,
    required_sellers,
)
from pricing.experiment.simulate import (
    realise_own_price,
    synthetic_population,
)

SELL_THROUGH = METRICS[0]


def test_sample_size_by_hand() -> None:
    # (z_0.975 + z_0.8)^2 = (1.959964 + 0.841621)^2 = 7.84887; / (0.5 * 0.5 * 0.1^2) -> 3139.5 -> 3140.
    assert required_sellers(1.0, 0.1, 0.05, 0.8, 0.5) == 3140
    # An uneven split needs more sellers: p (1 - p) = 0.16 instead of 0.25.
    assert required_sellers(1.0, 0.1, 0.05, 0.8, 0.2) == math.ceil(7.848879734 / (0.16 * 0.01))
    assert power_at(1.0, 0.1, 3140, 0.05, 0.5) == pytest.approx(0.8, abs=1e-3)
    assert mde_at(1.0, 3140, 0.05, 0.8, 0.5) == pytest.approx(0.1, rel=1e-3)
    assert power_at(1.0, 0.0, 3140, 0.05, 0.5) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="must not be 0"):
        required_sellers(1.0, 0.0, 0.05, 0.8, 0.5)


def test_variance_from_one_listing_per_seller_has_no_design_effect() -> None:
    y = np.array([1, 0, 1, 1, 0, 0, 1, 1], dtype=float)
    frame = pd.DataFrame({"listings": 1, "sold": y, "sold_sq": y, "pre_listings": 1,
                          "pre_sold": np.array([1, 0, 1, 0, 0, 1, 1, 1], dtype=float)})
    v = metric_variance(frame, SELL_THROUGH)
    assert v.baseline == pytest.approx(5 / 8)
    assert v.sigma2 == pytest.approx(np.var(y, ddof=1))
    # Clusters of one listing: the clustered variance is the iid one, up to n / (n - 1).
    assert v.design_effect == pytest.approx(8 / 7)
    assert v.rho == pytest.approx(np.corrcoef(y, frame["pre_sold"])[0, 1])
    assert v.sigma2_cuped == pytest.approx(v.sigma2 * (1 - v.rho**2))


POP = synthetic_population(n_sellers=3000, n_listings=12000, n_pre_listings=36000, seed=1, seller_demand_sd=0.8)


def _window_totals(listings: pd.DataFrame, seed: int, prefix: str = "") -> pd.DataFrame:
    out = realise_own_price(listings, 30, seed=seed)
    g = out.groupby("seller_id")
    frame = pd.DataFrame({"listings": g.size(), "sold": g["sold"].sum().astype(float), "gmv": g["gmv"].sum(),
                          "days": g["days_on_market"].sum()})
    if not prefix:
        frame["sold_sq"] = frame["sold"]
        frame["gmv_sq"] = g["gmv"].apply(lambda x: float((x**2).sum()))
        frame["days_sq"] = g["days_on_market"].apply(lambda x: float((x**2).sum()))
    return frame.add_prefix(prefix).reset_index()


WINDOWS = [POP.pre_listings.iloc[i * 12000:(i + 1) * 12000] for i in range(3)] + [POP.listings]
"""Four consecutive 12,000-listing windows of one marketplace (same sellers, same sizes)."""


def _history(window: int) -> pd.DataFrame:
    """Seller totals of one window at the sellers' own prices, with the window before as pre-period."""
    frame = _window_totals(WINDOWS[window], seed=window)
    pre_totals = _window_totals(WINDOWS[window - 1], seed=10 + window, prefix="pre_")
    return frame.merge(pre_totals, on="seller_id", how="left").fillna(0)


def test_power_table_rows() -> None:
    hist = _history(1)
    variances = all_metric_variances(hist)
    assert [v.metric for v in variances] == [m.name for m in METRICS]
    t = power_table(variances, (0.02, 0.05), {"sell_through": 0.01}, 0.05, 0.8, 0.5)
    st = t[t["metric"] == "sell_through"]
    assert st["mde_kind"].tolist() == ["relative", "relative", "absolute"]
    assert st["mde"].iloc[2] == 0.01 and st["mde"].iloc[1] == pytest.approx(0.05 * st["baseline"].iloc[1])
    # Sellers with persistent differences: a real clustering cost, and CUPED needs fewer sellers.
    assert (t["design_effect"].iloc[:2] > 1.2).all()
    assert (t["sellers_needed_cuped"] <= t["sellers_needed"]).all()
    assert (t.loc[t["metric"] == "sell_through", "sellers_needed_cuped"]
            < 0.8 * t.loc[t["metric"] == "sell_through", "sellers_needed"]).all()
    # Needing 4x the sellers for half the effect is the formula's shape.
    r2, r5 = st["sellers_needed"].iloc[0], st["sellers_needed"].iloc[1]
    assert r2 / r5 == pytest.approx(6.25, rel=0.01)


@pytest.mark.parametrize("cuped", [False, True])
def test_experiments_of_the_designed_size_reach_the_designed_power(cuped: bool) -> None:
    """Size an experiment for a 3% relative lift in sell-through from one history window, then run 400
    experiments of that many sellers resampled from a *later* window of the same marketplace, with the
    effect planted in treatment: the share that reject at alpha = 5% is the design's 80%, within 3 binomial
    standard errors."""
    hist = _history(1)
    v: MetricVariance = metric_variance(hist, SELL_THROUGH)
    mde = 0.03 * v.baseline
    n = required_sellers(v.sigma2_cuped if cuped else v.sigma2, mde, 0.05, 0.8, 0.5)
    pool = _history(3)
    rng = np.random.default_rng(3)
    reps, rejected = 400, 0
    for _ in range(reps):
        s = pool.iloc[rng.integers(0, len(pool), n)]
        treated = rng.permutation(n) < n // 2
        sold = s["sold"].to_numpy() + np.where(treated, mde * s["listings"].to_numpy(), 0.0)
        est = estimate(sold, s["listings"].to_numpy(dtype=float), treated, s["pre_sold"].to_numpy(dtype=float),
                       s["pre_listings"].to_numpy(dtype=float))
        rejected += (est.p_value if cuped else est.p_value_raw) < 0.05
    rate = rejected / reps
    print(f"\ndesigned n={n:,} sellers (CUPED={cuped}, sigma2={v.sigma2:.4f}, rho^2={v.rho**2:.3f}): "
          f"power {rate:.3f} over {reps} experiments", end="")
    assert abs(rate - 0.8) <= 3 * math.sqrt(0.8 * 0.2 / reps)
