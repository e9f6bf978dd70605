"""A discrete-time hazard model of the sale, which learns from every listing, sold or still unsold (censored).

The sale classifier learns P(sold within H) only from listings whose H-day label is known, so at any moment the
newest H days of listings are out of its reach.  A hazard model splits time since listing into intervals
(``interval_bounds``: ``[0, step), [step, 2 step), ...`` up to H) and learns the probability of a sale in an
interval given the listing was unsold at its start.  Each listing contributes one row per interval it was seen
through, or sold in: a listing observed for 10 days without a sale still says it did not sell in its first
week.  Then ``P(sold within H) = 1 - prod_j (1 - h_j)``.

An interval the listing was observed only partly, without a sale, is left out: counting it as "no sale" would
bias the hazard down.  Pure numpy and pandas: a booster on ``person_period``'s rows (the interval index a
feature) is the model.
"""

from __future__ import annotations

import numpy as np


def interval_bounds(horizon_days: int, step_days: int) -> np.ndarray:
    """``[0, step, 2 step, ..., horizon]``: the last interval is shorter when ``step`` does not divide H."""
    if step_days < 1 or horizon_days < 1:
        raise ValueError(f"horizon and step must be at least one day, got {horizon_days} and {step_days}")
    return np.unique(np.append(np.arange(0, horizon_days, step_days, dtype=np.float64), float(horizon_days)))


def person_period(sold_day: np.ndarray, observed_days: np.ndarray, horizon_days: int,
                  step_days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the hazard model: (listing index, interval index, sold in that interval 0/1).

    ``sold_day``: days from listing to sale (nan: no sale seen); ``observed_days``: days the listing has been
    watched (a sale later than that is not seen yet).  A listing gets interval ``j`` when it was unsold at the
    interval's start and either sold in it or was watched to its end."""
    bounds = interval_bounds(horizon_days, step_days)
    sold = np.asarray(sold_day, dtype=np.float64)
    observed = np.asarray(observed_days, dtype=np.float64)
    seen = np.isfinite(sold) & (sold < observed)
    idx, interval, label = [], [], []
    for j in range(len(bounds) - 1):
        lo, hi = bounds[j], bounds[j + 1]
        unsold_at_start = ~(seen & (sold < lo))
        sale_here = seen & (sold >= lo) & (sold < hi)
        keep = unsold_at_start & (sale_here | (observed >= hi))
        rows = np.flatnonzero(keep)
        idx.append(rows)
        interval.append(np.full(len(rows), j))
        label.append(sale_here[rows].astype(np.float64))
    return np.concatenate(idx), np.concatenate(interval), np.concatenate(label)


def p_sold_within(hazards: np.ndarray) -> np.ndarray:
    """``1 - prod_j (1 - h_j)`` per row of an (n x intervals) hazard matrix."""
    h = np.clip(np.asarray(hazards, dtype=np.float64), 0.0, 1.0)
    return -np.expm1(np.log1p(-np.minimum(h, 1.0 - 1e-12)).sum(axis=1))
