"""The simulator's true demand, in expectation, as pure numpy: one place for every consumer.

The generative story of ``pricing.world.simulator`` per listing: the asking price starts at ``price`` and
drops by ``DROP_FACTOR`` at each of ``DROP_DAYS``; while the price is ``p`` the daily sale hazard is

    h(p) = min(0.9, base_hazard * demand_bonus * exp(-elasticity * (log p - log_fair_value)))

and the sale day within a price segment ``[lo, hi)`` is ``lo + g + U`` with ``g`` geometric (failures
before the first success, independent per segment) and ``U ~ U(0, 1)``: exactly a day-by-day hazard
that is constant within a segment.  Nothing sells after ``HORIZON_DAYS``.  A sale closes at the
current price less an accepted offer: none with probability 0.6, else a discount ``U(0, 0.15)``.

Every function here takes numpy arrays (broadcast together) and returns the *expected* outcome, not
a draw; ``tests/test_demand.py`` checks them against the Spark simulator's realised sales.  The
experiment simulator uses them for the true effect of a pricing policy, and a price optimiser can
maximise :func:`expected_outcomes` over ``price``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pricing.world.simulator import (
    DROP_DAYS,
    DROP_FACTOR,
    HORIZON_DAYS,
    MAX_HAZARD,
    OFFER_MAX_DISCOUNT,
    OFFER_SHARE,
)

EXPECTED_OFFER_FACTOR = 1.0 - OFFER_SHARE * OFFER_MAX_DISCOUNT / 2.0
"""E[1 - discount] = 1 - 0.4 * 0.075 = 0.97."""
SEGMENT_BOUNDS: tuple[int, ...] = (0, *DROP_DAYS, HORIZON_DAYS)
"""Price segments: segment k = ``[SEGMENT_BOUNDS[k], SEGMENT_BOUNDS[k+1])`` at ``price * DROP_FACTOR**k``."""


@dataclass(frozen=True)
class DemandParams:
    """A listing's hidden demand parameters (columns of ``truth.listings``), as arrays."""

    log_fair_value: np.ndarray
    elasticity: np.ndarray
    base_hazard: np.ndarray
    demand_bonus: np.ndarray


@dataclass(frozen=True)
class ExpectedOutcomes:
    """Expectations over the sale draw and the offer, per listing, for sales within the horizon."""

    p_sold: np.ndarray
    """P(sold within the horizon)."""
    days_on_market: np.ndarray
    """E[min(sale day, horizon)]: the restricted mean time to sell (unsold listings count the horizon)."""
    gmv: np.ndarray
    """E[sold price x 1{sold within the horizon}] (revenue per listing)."""

    @property
    def price_accepted(self) -> np.ndarray:
        """E[sold price | sold within the horizon] (nan where a sale is impossible)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.gmv / self.p_sold


def check_horizon(horizon_days: int) -> None:
    if not (isinstance(horizon_days, int | np.integer) and 1 <= horizon_days <= HORIZON_DAYS):
        raise ValueError(f"horizon_days must be an integer in [1, {HORIZON_DAYS}] (nothing sells after day "
                         f"{HORIZON_DAYS}), got {horizon_days!r}")


def daily_hazard(price: np.ndarray, params: DemandParams) -> np.ndarray:
    """The simulator's daily sale probability at asking price ``price`` (> 0)."""
    price = np.asarray(price, dtype=np.float64)
    raw = params.base_hazard * params.demand_bonus * np.exp(
        -params.elasticity * (np.log(price) - params.log_fair_value))
    return np.minimum(MAX_HAZARD, raw)


def segment_prices(price: np.ndarray) -> list[np.ndarray]:
    """The asking price in each segment: the listed price, then after each drop (unrounded, as simulated)."""
    price = np.asarray(price, dtype=np.float64)
    return [price * DROP_FACTOR**k for k in range(len(SEGMENT_BOUNDS) - 1)]


def expected_outcomes(price: np.ndarray, params: DemandParams, horizon_days: int) -> ExpectedOutcomes:
    """Expected sale probability, capped time on market and revenue within ``horizon_days`` of listing.

    Segment by segment, with ``S`` the probability of reaching the segment unsold, ``q = 1 - h`` and
    ``L`` the segment's length inside the horizon: P(sale in segment) = ``S (1 - q^L)``; the sale day is
    ``lo + m + U`` with P(m) = ``h q^m``, and ``E[m 1{m < L}] = q (1 - q^L) / h - L q^L`` (from
    ``E[min(m, L)] = sum_{j<L} q^(j+1)``), which stays accurate for tiny hazards.
    """
    check_horizon(horizon_days)
    survive = np.ones(np.broadcast(np.asarray(price), params.log_fair_value).shape)
    p_sold = np.zeros_like(survive)
    days = np.zeros_like(survive)
    gmv = np.zeros_like(survive)
    for k, p_k in enumerate(segment_prices(price)):
        lo, hi = SEGMENT_BOUNDS[k], SEGMENT_BOUNDS[k + 1]
        if lo >= horizon_days:
            break
        length = min(hi, horizon_days) - lo
        h = daily_hazard(p_k, params)
        q = 1.0 - h
        # expm1/log1p keep 1 - q^L exact when h is tiny (a listing priced far above its value).
        sold_frac = -np.expm1(length * np.log1p(-h))
        q_len = 1.0 - sold_frac
        days += survive * ((lo + 0.5) * sold_frac + q * sold_frac / h - length * q_len)
        gmv += survive * sold_frac * p_k * EXPECTED_OFFER_FACTOR
        p_sold += survive * sold_frac
        survive = survive * q_len
    days += survive * horizon_days
    return ExpectedOutcomes(p_sold=p_sold, days_on_market=days, gmv=gmv)


def draw_sale_day(price: np.ndarray, params: DemandParams, uniforms: list[np.ndarray],
                  frac: np.ndarray) -> np.ndarray:
    """One realisation of the sale day (nan: not sold within ``HORIZON_DAYS``), drawn as the simulator does.

    ``uniforms[k]`` drives segment ``k``'s geometric draw and ``frac`` the time within the day, all
    ``U(0, 1)``.  The first segment whose geometric draw lands inside it holds the sale.
    """
    sale = np.full(np.broadcast(np.asarray(price), params.log_fair_value).shape, np.nan)
    prices = segment_prices(price)
    for k in reversed(range(len(SEGMENT_BOUNDS) - 1)):
        lo, hi = SEGMENT_BOUNDS[k], SEGMENT_BOUNDS[k + 1]
        h = daily_hazard(prices[k], params)
        g = np.floor(np.log(uniforms[k]) / np.log1p(-h))
        sale = np.where(g < hi - lo, lo + g + frac, sale)
    return sale


def drops_before(sale_day: np.ndarray) -> np.ndarray:
    """How many price drops happened before a sale on ``sale_day`` (a drop on the sale day counts)."""
    days = np.asarray(sale_day)
    return np.sum([(days >= d).astype(np.int64) for d in DROP_DAYS], axis=0)


def offer_discount(u_offer: np.ndarray, u_size: np.ndarray) -> np.ndarray:
    """The accepted offer's discount: none with probability 1 - OFFER_SHARE, else ``U(0, OFFER_MAX_DISCOUNT)``."""
    return np.where(u_offer < 1.0 - OFFER_SHARE, 0.0, OFFER_MAX_DISCOUNT * u_size)
