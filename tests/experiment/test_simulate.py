"""The simulated experiment: deterministic, seller-randomised, policies applied as designed, outcomes
distributed as the demand model says, and the true effect taken from expectations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pricing.experiment.simulate import (
    EXPECTED_COLUMNS,
    ExperimentDesign,
    expected_sums,
    policy_prices,
    pre_period_totals,
    seller_totals,
    simulate_listings,
    synthetic_population,
    true_effects,
    with_pre_period,
)

POP = synthetic_population(n_sellers=800, n_listings=6000, n_pre_listings=6000, seed=21)
DESIGN = ExperimentDesign("exp_t", treatment_share=0.5, adoption_rate=0.6, horizon_days=30, seed=4)


def _run(design: ExperimentDesign = DESIGN, control: str = "own_price", treatment: str = "challenger",
         listings: pd.DataFrame = POP.listings) -> pd.DataFrame:
    return simulate_listings(policy_prices(listings, control, treatment, 0.9), design)  # type: ignore[arg-type]


def test_same_seed_same_rows_whatever_the_batching() -> None:
    whole = _run()
    halves = pd.concat([_run(listings=POP.listings.iloc[:2500]), _run(listings=POP.listings.iloc[2500:])],
                       ignore_index=True)
    pd.testing.assert_frame_equal(whole, halves)
    other = _run(ExperimentDesign("exp_t", 0.5, 0.6, 30, seed=5))
    assert (other["arm"] != whole["arm"]).any()


def test_sellers_are_randomised_as_units_in_the_designed_split() -> None:
    out = _run(ExperimentDesign("exp_t", 0.3, 0.6, 30, seed=4))
    sellers = seller_totals(out)  # raises if a seller had listings in both arms
    n = len(sellers)
    share = sellers["treated"].mean()
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n)
    assert out.groupby("seller_id")["arm"].nunique().max() == 1


def test_policies_are_applied_as_designed() -> None:
    out = _run().merge(POP.listings[["listing_id", "own_price", "challenger_price"]], on="listing_id")
    ctrl, trt = out[out["arm"] == "control"], out[out["arm"] == "treatment"]
    # Control sees no suggestion and keeps its own price.
    assert ctrl["shown_price"].isna().all() and not ctrl["adopted"].any()
    assert (ctrl["price"] == ctrl["own_price"]).all()
    # Treatment sees the challenger's price and takes it with probability 0.6.
    assert (trt["shown_price"] == trt["challenger_price"]).all()
    assert abs(trt["adopted"].mean() - 0.6) < 4 * math.sqrt(0.24 / len(trt))
    assert (np.where(trt["adopted"], trt["challenger_price"], trt["own_price"]) == trt["price"]).all()
    mult = policy_prices(POP.listings.head(3), "own_price", "multiplier", 0.9)
    assert mult["treatment_price"].tolist() == [round(p * 0.9, 2) for p in POP.listings["own_price"].head(3)]
    with pytest.raises(ValueError, match="unknown treatment policy 'discount'"):
        policy_prices(POP.listings, "own_price", "discount", 1.0)  # type: ignore[arg-type]


def test_outcomes_are_consistent_and_censored_at_the_horizon() -> None:
    out = _run()
    sold, unsold = out[out["sold"]], out[~out["sold"]]
    assert (sold["sale_day"] < 30).all() and (sold["days_on_market"] == sold["sale_day"]).all()
    assert (unsold["days_on_market"] == 30.0).all() and unsold["sale_day"].isna().all()
    assert (unsold["gmv"] == 0).all() and (sold["gmv"] == sold["sold_price"]).all()
    # A sale closes at the price after the drops before it, less at most a 15% offer.
    drops = (sold["sale_day"] >= 14).astype(int) + (sold["sale_day"] >= 28).astype(int)
    ceiling = np.round(sold["price"] * 0.9**drops, 2)
    assert (sold["sold_price"] <= ceiling + 1e-9).all() and (sold["sold_price"] >= 0.85 * ceiling - 0.01).all()


def test_realised_outcomes_follow_the_expected_ones() -> None:
    """Per listing, E[sold] and E[GMV] under its own arm (the adoption draw included) must match the draws:
    z-statistics of the totals, |z| < 4."""
    out = pd.concat([_run(ExperimentDesign("exp_t", 0.5, 0.6, h, seed=s)) .assign(h=h)
                     for s, h in ((1, 14), (2, 30), (3, 45))], ignore_index=True)
    arm = out["arm"].to_numpy()
    for metric, col in (("sold", "sold"), ("gmv", "gmv"), ("days", "days_on_market")):
        expected = np.where(arm == "treatment", out[f"exp_{metric}_treatment"], out[f"exp_{metric}_control"])
        resid = out[col].astype(float).to_numpy() - expected
        z = resid.sum() / math.sqrt((resid**2).sum())
        assert abs(z) < 4, (metric, z)


def test_an_aa_test_has_a_true_effect_of_exactly_zero() -> None:
    out = _run(control="champion", treatment="champion")
    truth = true_effects(expected_sums(out), len(out))
    assert truth["effect"].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert truth["metric"].tolist() == ["sell_through", "gmv_per_listing", "days_on_market", "price_accepted"]


def test_true_effects_from_expected_sums() -> None:
    sums = dict(zip(EXPECTED_COLUMNS, [50.0, 60.0, 1000.0, 1100.0, 2000.0, 1800.0], strict=True))
    t = true_effects(sums, 100).set_index("metric")
    assert t.loc["sell_through"].tolist() == pytest.approx([0.5, 0.6, 0.1, 0.2])
    assert t.loc["gmv_per_listing", "effect"] == pytest.approx(1.0)
    assert t.loc["days_on_market", "effect"] == pytest.approx(-2.0)
    assert t.loc["price_accepted"].tolist() == pytest.approx([20.0, 1100 / 60, 1100 / 60 - 20, (1100 / 60) / 20 - 1])


def test_lost_treatment_sellers_skew_the_split() -> None:
    full = seller_totals(_run())
    lossy = seller_totals(_run(ExperimentDesign("exp_t", 0.5, 0.6, 30, seed=4, lost_treatment_share=0.2)))
    assert lossy["treated"].sum() < 0.9 * full["treated"].sum()
    assert (~lossy["treated"]).sum() == (~full["treated"]).sum()


def test_pre_period_totals_join_with_zeros_for_new_sellers() -> None:
    pre = pd.DataFrame({"seller_id": [1, 1, 2], "sold": [True, False, True], "gmv": [10.0, 0.0, 4.0],
                        "days_on_market": [3.0, 30.0, 1.5]})
    cur = pd.DataFrame({"seller_id": [1, 3], "treated": [True, False], "listings": [2, 1], "sold": [1, 0],
                        "gmv": [5.0, 0.0], "days": [31.0, 30.0]})
    out = with_pre_period(cur, pre_period_totals(pre))
    assert out[["seller_id", "pre_listings", "pre_sold", "pre_gmv", "pre_days"]].values.tolist() == [
        [1, 2, 1, 10.0, 33.0], [3, 0, 0, 0.0, 0.0]]


def test_design_is_validated() -> None:
    with pytest.raises(ValueError, match="treatment_share must be inside"):
        ExperimentDesign("x", 1.0, 0.5, 30, 1)
    with pytest.raises(ValueError, match=r"horizon_days must be an integer in \[1, 60\]"):
        ExperimentDesign("x", 0.5, 0.5, 61, 1)
