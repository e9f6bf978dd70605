"""pricing.world.true_demand against the Spark simulator it describes: expected sale probability, revenue and capped
time on market, summed over simulated listings, match the realised ones within 4 standard errors at four
horizons (day-14 and day-28 drops included); a model that forgets the sellers' demand bonus does not."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from pricing.platform.config import SimulatorConfig
from pricing.world.simulator import HORIZON_DAYS, simulate
from pricing.world.true_demand import DemandParams, daily_hazard, expected_outcomes

HORIZONS = (7, 14, 30, 60)


@pytest.fixture(scope="module")
def simulated(spark) -> pd.DataFrame:
    sim = simulate(spark, SimulatorConfig(seed=3, n_listings=10_000, n_sellers=1_000, n_brands=100, days=240,
                                          partitions=2, bad_record_rate=0.0))
    # Only listings with the full 60 days inside the simulated period: their sale is never cut by its end.
    pdf = sim.listings.where(F.col("created_at") < F.lit(sim.end_time - timedelta(days=HORIZON_DAYS))).select(
        "list_price", "log_fair_value", "elasticity", "base_hazard", "seller_skill", "is_sold", "sold_price",
        ((F.col("sold_at_candidate").cast("double") - F.col("created_at").cast("double")) / 86400).alias("days"),
    ).toPandas()
    sim.listings.unpersist()
    return pdf


def _z_scores(pdf: pd.DataFrame, params: DemandParams, horizon: int) -> dict[str, float]:
    e = expected_outcomes(pdf["list_price"].to_numpy(), params, horizon)
    sold = (pdf["is_sold"] & (pdf["days"] < horizon)).to_numpy()
    # A Bernoulli total has variance sum p (1 - p); revenue and days use the realised residuals (CLT).
    z_sold = (sold.sum() - e.p_sold.sum()) / math.sqrt((e.p_sold * (1 - e.p_sold)).sum())
    gmv = np.where(sold, pdf["sold_price"].fillna(0.0), 0.0) - e.gmv
    days = np.where(sold, pdf["days"], horizon) - e.days_on_market
    return {"sold": float(z_sold), "gmv": float(gmv.sum() / math.sqrt((gmv**2).sum())),
            "days": float(days.sum() / math.sqrt((days**2).sum()))}


def _params(pdf: pd.DataFrame, bonus: bool = True) -> DemandParams:
    return DemandParams(pdf["log_fair_value"].to_numpy(), pdf["elasticity"].to_numpy(),
                        pdf["base_hazard"].to_numpy(),
                        1.0 + 0.6 * pdf["seller_skill"].to_numpy() * (1.0 if bonus else 0.0))


def test_expected_outcomes_match_the_spark_simulator(simulated: pd.DataFrame) -> None:
    assert len(simulated) > 5_000
    for h in HORIZONS:
        z = _z_scores(simulated, _params(simulated), h)
        assert all(abs(v) < 4 for v in z.values()), (h, z)


def test_the_comparison_can_fail(simulated: pd.DataFrame) -> None:
    """The same statistic rejects a model that ignores the seller-skill demand bonus (up to 1.6x the hazard)."""
    z = _z_scores(simulated, _params(simulated, bonus=False), 30)
    assert z["sold"] > 6 and z["days"] < -6, z


def test_closed_form_matches_a_day_by_day_sum() -> None:
    """E[min(T, H)] and P(T < H) from the segment formulas equal a plain sum over days of the daily hazard."""
    rng = np.random.default_rng(0)
    n = 50
    p = DemandParams(rng.normal(3, 0.5, n), rng.uniform(2, 5, n), rng.uniform(0.02, 0.06, n), rng.uniform(1, 1.6, n))
    price = np.exp(p.log_fair_value + rng.normal(0.1, 0.4, n))
    for h in (1, 13, 14, 15, 28, 45, 60):
        survive, p_sold, days, gmv = np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n)
        for d in range(h):
            k = (d >= 14) + (d >= 28)
            hz = daily_hazard(price * 0.9**k, p)
            sale = survive * hz
            p_sold += sale
            days += sale * (d + 0.5)
            gmv += sale * price * 0.9**k * 0.97
            survive = survive * (1 - hz)
        days += survive * h
        e = expected_outcomes(price, p, h)
        np.testing.assert_allclose(e.p_sold, p_sold, rtol=1e-10)
        np.testing.assert_allclose(e.days_on_market, days, rtol=1e-10)
        np.testing.assert_allclose(e.gmv, gmv, rtol=1e-10)
    with pytest.raises(ValueError, match="horizon_days must be an integer"):
        expected_outcomes(price, p, 61)
