"""A seller-randomised pricing experiment, simulated on listings whose demand is known.

Unit of randomisation: the **seller**.  A seller's listings compete for the same buyers and the seller
learns from one listing's suggestion when pricing the next, so listing-level randomisation would leak
treatment into control; every listing of a seller gets the seller's arm.

Per listing (``simulate_listings``, a row-wise pure function, so it runs unchanged in Spark's
``mapInPandas`` and in a numpy test loop):

* arm: treatment when ``U(seed, experiment, seller_id) < treatment_share`` (hashed, so the same seed and
  experiment id give the same split whatever the partitioning);
* the arm's policy shows a suggested price (control: none, i.e. the seller's own price, or the
  champion's; treatment: the challenger's, or a multiplier on the own price); the seller adopts it with
  probability ``adoption_rate``, else keeps the own asking price;
* outcomes drawn exactly as ``pricing.world.simulator`` draws them (``pricing.world.true_demand``): sold within ``H``
  days, sold price (after the day-14/28 drops and an accepted offer), GMV (sold price, or 0), and days
  on market **capped at H**.  Censoring: an unsold listing counts ``H`` days.  That restricted mean is
  defined for every listing, so arms compare like with like; the mean time to sell *among sold
  listings* would compare different listings in each arm (the treatment changes which ones sell).
* the expected outcomes under *both* arms (over the adoption and sale draws) from ``pricing.world.true_demand``:
  the true effect is computed from those expectations, never from the realised draws.

``lost_treatment_share`` drops that share of treatment sellers from the output, the way lost logging
or a bot filter loses units in a real experiment: a fault to inject when testing the SRM check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from pricing.world.true_demand import (
    DemandParams,
    ExpectedOutcomes,
    check_horizon,
    draw_sale_day,
    drops_before,
    expected_outcomes,
    offer_discount,
)

Policy = Literal["own_price", "champion", "challenger", "multiplier"]
POLICIES: tuple[str, ...] = ("own_price", "champion", "challenger", "multiplier")
"""own_price: no suggestion; champion / challenger: that model's p50; multiplier: own price x factor.
The same policy in both arms is an A/A test (true effect 0), the way to check the whole read-out."""
CONTROL = "control"
TREATMENT = "treatment"

LISTING_INPUT = ("listing_id", "seller_id", "own_price", "control_price", "treatment_price", "log_fair_value",
                 "elasticity", "base_hazard", "demand_bonus")
"""What ``simulate_listings`` reads: ids, the seller's own asking price, each arm's suggested price
(nan: no suggestion, the seller keeps the own price), and the listing's true demand parameters."""

OUTCOME_COLUMNS = ("listing_id", "seller_id", "arm", "shown_price", "adopted", "price", "sold", "sale_day",
                   "days_on_market", "sold_price", "gmv")
"""What an experiment observes per listing (``ml.experiment_outcomes``)."""

EXPECTED_COLUMNS = tuple(f"exp_{m}_{a}" for m in ("sold", "gmv", "days") for a in (CONTROL, TREATMENT))
"""The listing's expected outcomes under each arm (truth: only the true-effect computation reads them)."""


@dataclass(frozen=True)
class ExperimentDesign:
    experiment_id: str
    treatment_share: float
    adoption_rate: float
    horizon_days: int
    seed: int
    lost_treatment_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.treatment_share < 1.0:
            raise ValueError(f"treatment_share must be inside (0, 1), got {self.treatment_share}")
        if not 0.0 <= self.adoption_rate <= 1.0:
            raise ValueError(f"adoption_rate must be inside [0, 1], got {self.adoption_rate}")
        if not 0.0 <= self.lost_treatment_share < 1.0:
            raise ValueError(f"lost_treatment_share must be inside [0, 1), got {self.lost_treatment_share}")
        check_horizon(self.horizon_days)


# ---- counter-based randomness: a draw is a hash of (seed, purpose, id), never a stream position --------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    # uint64 array arithmetic wraps modulo 2**64, which is what the mixer wants.
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_uniform(seed: int, salt: str, ids: np.ndarray) -> np.ndarray:
    """Deterministic U(0, 1) per id for (seed, salt): the same id always gets the same draw, in any batch."""
    key = int.from_bytes(hashlib.blake2b(f"{seed}:{salt}".encode(), digest_size=8).digest(), "little")
    x = np.asarray(ids, dtype=np.int64).astype(np.uint64) ^ np.uint64(key)
    x = _splitmix64(_splitmix64(x))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def assign_treatment(seller_ids: np.ndarray, design: ExperimentDesign) -> np.ndarray:
    """True for sellers in treatment: ``U(seed, "assign:<experiment>", seller) < treatment_share``."""
    u = hashed_uniform(design.seed, f"assign:{design.experiment_id}", seller_ids)
    return u < design.treatment_share


def _lost(seller_ids: np.ndarray, treated: np.ndarray, design: ExperimentDesign) -> np.ndarray:
    if design.lost_treatment_share <= 0:
        return np.zeros(len(seller_ids), dtype=bool)
    u = hashed_uniform(design.seed, f"lost:{design.experiment_id}", seller_ids)
    return treated & (u < design.lost_treatment_share)


# ---- policies --------------------------------------------------------------------------------------------
def policy_prices(listings: pd.DataFrame, control: Policy, treatment: Policy,
                  multiplier: float = 1.0) -> pd.DataFrame:
    """``listings`` with ``control_price`` and ``treatment_price``: what each arm's policy suggests.

    Reads ``own_price`` and, as the policies need them, ``champion_price`` / ``challenger_price`` (a
    model's suggestion; nan where it could not score the listing: that seller then sees none).
    ``multiplier`` suggests the seller's own price times the factor.
    """
    prices = {
        "own_price": lambda: np.full(len(listings), np.nan),
        "champion": lambda: listings["champion_price"].to_numpy(dtype=np.float64),
        "challenger": lambda: listings["challenger_price"].to_numpy(dtype=np.float64),
        "multiplier": lambda: np.round(listings["own_price"].to_numpy(dtype=np.float64) * multiplier, 2),
    }
    for arm, policy in (("control", control), ("treatment", treatment)):
        if policy not in prices:
            raise ValueError(f"unknown {arm} policy {policy!r}: one of {', '.join(POLICIES)}")
    return listings.assign(control_price=prices[control](), treatment_price=prices[treatment]())


# ---- one experiment --------------------------------------------------------------------------------------
def _params(df: pd.DataFrame) -> DemandParams:
    return DemandParams(*(df[c].to_numpy(dtype=np.float64)
                          for c in ("log_fair_value", "elasticity", "base_hazard", "demand_bonus")))


def _expected_under(suggested: np.ndarray, keep: ExpectedOutcomes, own: np.ndarray, params: DemandParams,
                    design: ExperimentDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E[sold], E[GMV], E[days on market] over the adoption draw: adopt the suggestion or keep the own price."""
    has = ~np.isnan(suggested)
    sugg = expected_outcomes(np.where(has, suggested, own), params, design.horizon_days)
    a = np.where(has, design.adoption_rate, 0.0)
    return tuple(a * getattr(sugg, m) + (1 - a) * getattr(keep, m)
                 for m in ("p_sold", "gmv", "days_on_market"))


def simulate_listings(listings: pd.DataFrame, design: ExperimentDesign) -> pd.DataFrame:
    """Assign, apply the arm's policy, draw outcomes: one row per listing with ``OUTCOME_COLUMNS`` and
    ``EXPECTED_COLUMNS`` (rows of lost sellers are dropped).  Row-wise: any batching gives the same rows."""
    missing = [c for c in LISTING_INPUT if c not in listings.columns]
    if missing:
        raise ValueError(f"simulate_listings needs columns {missing}")
    ids = listings["listing_id"].to_numpy(dtype=np.int64)
    sellers = listings["seller_id"].to_numpy(dtype=np.int64)
    own = listings["own_price"].to_numpy(dtype=np.float64)
    if (~np.isfinite(own) | (own <= 0)).any():
        raise ValueError("own_price must be a positive number for every listing")
    params = _params(listings)
    treated = assign_treatment(sellers, design)
    ctrl = listings["control_price"].to_numpy(dtype=np.float64)
    trt = listings["treatment_price"].to_numpy(dtype=np.float64)
    shown = np.where(treated, trt, ctrl)
    salt = design.experiment_id
    adopted = ~np.isnan(shown) & (hashed_uniform(design.seed, f"adopt:{salt}", ids) < design.adoption_rate)
    price = np.where(adopted, shown, own)

    u_seg = [hashed_uniform(design.seed, f"sale{k}:{salt}", ids) for k in range(3)]
    sale_day = draw_sale_day(price, params, u_seg, hashed_uniform(design.seed, f"salefrac:{salt}", ids))
    h = design.horizon_days
    sold = sale_day < h  # nan compares False: never sold
    discount = offer_discount(hashed_uniform(design.seed, f"offer:{salt}", ids),
                              hashed_uniform(design.seed, f"offer_size:{salt}", ids))
    sold_price = np.where(sold, np.round(price * 0.9 ** drops_before(np.where(sold, sale_day, 0.0))
                                         * (1 - discount), 2), np.nan)
    cols = {
        "listing_id": ids, "seller_id": sellers, "arm": np.where(treated, TREATMENT, CONTROL),
        "shown_price": shown, "adopted": adopted, "price": price, "sold": sold,
        "sale_day": np.where(sold, sale_day, np.nan),
        "days_on_market": np.where(sold, np.minimum(sale_day, h), float(h)),
        "sold_price": sold_price, "gmv": np.where(sold, sold_price, 0.0),
    }
    keep = expected_outcomes(own, params, design.horizon_days)
    for arm, sugg in ((CONTROL, ctrl), (TREATMENT, trt)):
        cols[f"exp_sold_{arm}"], cols[f"exp_gmv_{arm}"], cols[f"exp_days_{arm}"] = _expected_under(
            sugg, keep, own, params, design)
    lost = _lost(sellers, treated, design)
    out = pd.DataFrame(cols)
    return out.loc[~lost].reset_index(drop=True) if lost.any() else out


def true_effects(expected_sums: dict[str, float], n_listings: int) -> pd.DataFrame:
    """The true effect of each metric, from the sums of ``EXPECTED_COLUMNS`` over the experiment's listings.

    Per-listing metrics are ratios of totals over the same listings, so the effect is the expected
    treatment total minus the expected control total over ``n_listings``; the price accepted is expected
    GMV over expected sales in each arm.  Columns: metric, control, treatment, effect, relative_lift.
    """
    rows = []
    for metric, num, den in (("sell_through", "sold", None), ("gmv_per_listing", "gmv", None),
                             ("days_on_market", "days", None), ("price_accepted", "gmv", "sold")):
        c, t = (expected_sums[f"exp_{num}_{a}"] / (expected_sums[f"exp_{den}_{a}"] if den else n_listings)
                for a in (CONTROL, TREATMENT))
        rows.append((metric, c, t, t - c, t / c - 1 if c else float("nan")))
    return pd.DataFrame(rows, columns=["metric", "control", "treatment", "effect", "relative_lift"])


def expected_sums(outcomes: pd.DataFrame) -> dict[str, float]:
    return {c: float(outcomes[c].sum()) for c in EXPECTED_COLUMNS}


# ---- per-seller totals: what the analysis reads ----------------------------------------------------------
SELLER_TOTALS = ("listings", "sold", "gmv", "days")
PRE_TOTALS = tuple(f"pre_{c}" for c in SELLER_TOTALS)


def _sums(seller_ids: np.ndarray, **values: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Per-seller sums with ``np.bincount`` (sorted unique seller ids, their counts, and each column's sums)."""
    uniq, idx = np.unique(seller_ids, return_inverse=True)
    counts = np.bincount(idx, minlength=len(uniq))
    return uniq, counts, {k: np.bincount(idx, weights=np.asarray(v, dtype=np.float64), minlength=len(uniq))
                          for k, v in values.items()}


def seller_totals(outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per seller: ``seller_id, treated, listings, sold, gmv, days`` (sums over its listings).
    A seller in both arms is a broken randomisation and fails here."""
    treated = (outcomes["arm"] == TREATMENT).to_numpy()
    uniq, counts, s = _sums(outcomes["seller_id"].to_numpy(), treated=treated, sold=outcomes["sold"].to_numpy(),
                            gmv=outcomes["gmv"].to_numpy(), days=outcomes["days_on_market"].to_numpy())
    mixed = (s["treated"] > 0) & (s["treated"] < counts)
    if mixed.any():
        raise ValueError(f"{int(mixed.sum())} seller(s) appear in both arms, e.g. seller {int(uniq[mixed][0])}: "
                         "the unit of randomisation is the seller")
    return pd.DataFrame({"seller_id": uniq, "treated": s["treated"] > 0, "listings": counts.astype(np.int64),
                         "sold": np.rint(s["sold"]).astype(np.int64), "gmv": s["gmv"], "days": s["days"]})


def pre_period_totals(pre_outcomes: pd.DataFrame) -> pd.DataFrame:
    """``seller_id, pre_listings, pre_sold, pre_gmv, pre_days`` from realised pre-period listing outcomes
    (columns ``seller_id, sold, gmv, days_on_market``)."""
    uniq, counts, s = _sums(pre_outcomes["seller_id"].to_numpy(), sold=pre_outcomes["sold"].to_numpy(),
                            gmv=pre_outcomes["gmv"].to_numpy(), days=pre_outcomes["days_on_market"].to_numpy())
    return pd.DataFrame({"seller_id": uniq, "pre_listings": counts.astype(np.int64),
                         "pre_sold": np.rint(s["sold"]).astype(np.int64), "pre_gmv": s["gmv"],
                         "pre_days": s["days"]})


def with_pre_period(sellers: pd.DataFrame, pre: pd.DataFrame) -> pd.DataFrame:
    """Sellers with their pre-period totals; a seller with no earlier listing gets zeros (the analysis
    then gives it a zero covariate, which is still a pre-treatment quantity)."""
    out = sellers.merge(pre, on="seller_id", how="left")
    for c in PRE_TOTALS:
        out[c] = out[c].fillna(0)
    return out


# ---- a synthetic marketplace with the simulator's structure (tests and demos) ----------------------------
@dataclass(frozen=True)
class Population:
    listings: pd.DataFrame
    """Experiment-period listings: ids, truth, ``own_price``, ``champion_price``, ``challenger_price``."""
    pre_listings: pd.DataFrame
    """The same sellers' earlier listings (ids, truth, ``own_price``)."""


def synthetic_population(n_sellers: int, n_listings: int, n_pre_listings: int, seed: int,
                         champion_noise: float = 0.30, challenger_noise: float = 0.15,
                         seller_demand_sd: float = 0.0) -> Population:
    """A marketplace drawn like ``pricing.world.simulator``'s, in numpy and in milliseconds.

    Sellers have a skill (experience / 5, capped at 1) that lowers their markup and raises demand; the
    listing count per seller is as skewed as the simulator's (``seller = floor(S U^2)``).  Each category
    has its own elasticity and base hazard.  The champion and the challenger suggest the observable fair
    value with log-normal errors (``*_noise``): the item noise is hidden from both, as from a real model.
    ``seller_demand_sd`` > 0 adds a persistent seller-level demand factor ``exp(sd N(0, 1))`` (photos,
    reputation) that the simulator does not have: sellers then differ more, as on real marketplaces.
    """
    rng = np.random.default_rng(seed)
    skill = np.minimum(1.0, rng.exponential(2.0, n_sellers) / 5.0)
    seller_factor = np.exp(seller_demand_sd * rng.normal(size=n_sellers))
    n_cat = 100
    cat_elasticity = 2.0 + 3.0 * rng.random(n_cat)
    cat_hazard = 0.02 + 0.04 * rng.random(n_cat)
    cat_level = rng.normal(2.9, 0.5, n_cat)

    def draw(n: int, first_id: int) -> pd.DataFrame:
        seller = np.floor(n_sellers * rng.random(n) ** 2).astype(np.int64)
        cat = rng.integers(0, n_cat, n)
        s = skill[seller]
        lfo = cat_level[cat] + rng.normal(0.0, 0.45, n)
        lfv = lfo + 0.28 * rng.normal(size=n)
        markup = (0.18 - 0.12 * s) + (0.35 - 0.2 * s) * rng.normal(size=n)
        return pd.DataFrame({
            "listing_id": np.arange(first_id, first_id + n, dtype=np.int64), "seller_id": seller,
            "log_fair_observable": lfo, "log_fair_value": lfv, "elasticity": cat_elasticity[cat],
            "base_hazard": cat_hazard[cat], "demand_bonus": (1.0 + 0.6 * s) * seller_factor[seller],
            "own_price": np.maximum(2.0, np.round(np.exp(lfv + markup))),
        })

    pre = draw(n_pre_listings, 0)
    cur = draw(n_listings, n_pre_listings)
    cur["champion_price"] = np.round(np.exp(cur["log_fair_observable"] + rng.normal(0, champion_noise, n_listings)), 2)
    cur["challenger_price"] = np.round(np.exp(cur["log_fair_observable"]
                                              + rng.normal(0, challenger_noise, n_listings)), 2)
    return Population(cur, pre)


def realise_own_price(listings: pd.DataFrame, horizon_days: int, seed: int) -> pd.DataFrame:
    """Realised outcomes of listings at their own asking price (a pre-period: no experiment running)."""
    design = ExperimentDesign("pre-period", 0.5, 0.0, horizon_days, seed)
    frame = listings.assign(control_price=np.nan, treatment_price=np.nan)
    return simulate_listings(frame, design)[["listing_id", "seller_id", "sold", "gmv", "days_on_market"]]
