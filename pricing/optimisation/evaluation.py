"""Price optimisation judged against the simulator's true demand (evaluation only: the one place besides tests
that reads ``truth.listings`` / ``truth.categories`` for the recommendation).

Each judged objective (``recommend.evaluate_objectives``, ``pricing.platform.objective``) is a true expected value
per listing (``pricing.world.true_demand.expected_outcomes``: sale probability, day-14/28 drops, accepted
offers): ``revenue_<H>d``, the revenue of sales within H days; ``continuation_<H>d``, that plus
``recommend.continuation_discount`` times the revenue of the sales after H (an unsold item keeps its later
value).  Under each, every pricing policy is judged, listed at its price:

* ``own``: the seller's current price;
* ``p50``: the price model's suggestion (``score``'s guardrailed, rounded p50);
* ``optimised``: the demand model's choice under that same objective (for the served objective: the
  recommendation written);
* ``naive``: the choice the naive (observational) price response would make under it;

beside simple baselines (every ratio is reported next to them, so a model that a rule of thumb matches shows):

* ``flat_m30`` ... ``flat_p10``: every asking price changed by the same share (``FLAT_CHANGES``: -30, -25, -20,
  -10, 0 and +10 %), clipped to the recommendation's guardrail band as the recommendation is;
* "set to the p50 suggestion" is the ``p50`` policy above;
* ``best_flat``: the flat rule with the highest overall ratio, chosen in hindsight on this very evaluation (so
  it flatters the baseline, never the model); ``optimised_margin_over_best_flat`` is the optimiser's lead over it;

against two oracles that know the item's true demand and maximise the same objective:

* ``oracle``: the best price inside the recommendation's own guardrails (the band
  ``[band_lo, band_hi]``: floor, ceiling and the maximum change from the current price), at any price in the
  band, not only at price points, so no guardrailed policy can beat it;
* ``free``: the item's true optimum within the category floor and ceiling only.

Ratios are of sums (value-weighted), overall and by segment, one block of rows per objective.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.platform import catalog, delta_io
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError
from pricing.platform.objective import Objective
from pricing.platform.tables import table
from pricing.world.true_demand import (
    HORIZON_DAYS,
    DemandParams,
    check_horizon,
    expected_outcomes,
)


def check_evaluable(horizon_days: int, what: str = "the demand model's") -> None:
    """The policies can be judged against the simulator's demand only within its horizon (nothing sells later)."""
    if horizon_days > HORIZON_DAYS:
        raise ConfigError(f"the evaluation needs a horizon <= {HORIZON_DAYS} days (nothing sells later in the "
                          f"simulator); {what} is {horizon_days}: set recommend.evaluate=false")


def true_value(price: np.ndarray, params: DemandParams, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
    """The true expected value of listing at ``price`` under ``objective`` (horizon filled in), and the true sale
    probability within its horizon: revenue within the horizon, plus for ``continuation`` the discounted revenue
    of the sales after it (up to the simulator's end of sales)."""
    assert objective.horizon_days is not None
    e = expected_outcomes(price, params, objective.horizon_days)
    after = objective.after_horizon
    if after == 0.0 or objective.horizon_days >= HORIZON_DAYS:
        return e.gmv, e.p_sold
    later = expected_outcomes(price, params, HORIZON_DAYS).gmv - e.gmv
    return e.gmv + after * later, e.p_sold

POLICIES = ("own", "p50", "optimised", "naive")
POLICY_PRICE = {"own": "current_price", "p50": "suggested_price", "optimised": "recommended_price",
                "naive": "naive_price"}
"""Policy -> the input column holding the price it lists at."""
FLAT_CHANGES = (-0.30, -0.25, -0.20, -0.10, 0.0, 0.10)
"""The flat baselines: every asking price changed by this share (within the guardrail band)."""


def flat_name(change: float) -> str:
    """-0.3 -> ``flat_m30``, 0.1 -> ``flat_p10``, 0 -> ``flat_p00``."""
    return f"flat_{'m' if change < 0 else 'p'}{round(abs(change) * 100):02d}"


BASELINES = tuple(flat_name(c) for c in FLAT_CHANGES)
RATIOED = (*POLICIES, *BASELINES)
"""Everything with a ratio to the oracles: the policies and the flat baselines."""
TRUTH_COLS = ("log_fair_value", "elasticity", "base_hazard", "demand_bonus")
SEGMENT_DIMS = ("department", "category", "price_band", "listing_age", "limited_by")
"""Segment columns of the evaluation input, besides the overall row."""
EVAL_DOCS = {
    "scoring_date": "The recommendation date evaluated; rerunning a date replaces its rows.",
    "objective": "The objective the row judges by (<kind>_<days>d, recommend.evaluate_objectives): revenue = true "
                 "expected revenue within the horizon; continuation = that plus recommend.continuation_discount x "
                 "the revenue of later sales. Every value, oracle and the optimiser's choice in the row are under it.",
    "segment": "Dimension of the row: overall, or one of " + ", ".join(SEGMENT_DIMS) + ".",
    "value": "The segment's value (all for overall; none when the listing has no value).",
    "listings": "Listings in the segment.",
    "oracle_revenue": "True expected value (under the objective) of the best price within the guardrails (the "
                      "guardrailed oracle).",
    "free_revenue": "True expected value of the best price without guardrails (the free oracle).",
    **{f"{p}_ratio": f"True expected value listing at {POLICY_PRICE[p]} (policy {p}; optimised and naive: the "
                     "model's choice under the row's objective) over the guardrailed oracle's." for p in POLICIES},
    **{f"{p}_ratio_free": f"True expected value listing at {POLICY_PRICE[p]} (policy {p}) over the free "
                          "oracle's." for p in POLICIES},
    **{f"{flat_name(c)}_ratio": f"Baseline: true expected value with every asking price changed by {c:+.0%} "
                                "(clipped to the guardrail band), over the guardrailed oracle's." for c in FLAT_CHANGES},
    **{f"{flat_name(c)}_ratio_free": f"Baseline: every asking price changed by {c:+.0%}, over the free oracle's."
       for c in FLAT_CHANGES},
    "best_flat": "The flat baseline with the highest overall ratio, chosen in hindsight on this evaluation.",
    "best_flat_ratio": "That rule's ratio to the guardrailed oracle in this segment.",
    "optimised_margin_over_best_flat": "optimised_ratio - best_flat_ratio: the optimiser's lead over the best flat "
                                       "rule, in points of oracle revenue (as a share).",
    "guardrail_ratio": "oracle_revenue / free_revenue: what the guardrails cost.",
    **{f"{p}_sell_through": f"True probability of selling within the objective's horizon under policy {p}."
       for p in (*RATIOED, "oracle", "free")},
    "model_version": "Demand model version whose recommendations were evaluated.",
    "evaluated_at": "When the evaluation was written (UTC).",
}
"""Column -> description of ``ml.recommendation_eval`` (simulated sources only: judged against the true demand)."""
INVPHI = (np.sqrt(5.0) - 1.0) / 2.0
FREE_SPAN = 3.0
"""The unconstrained oracle searches log fair value +- this (and the floor and ceiling): the revenue-optimal
price of the simulator's demand lies well inside (about -0.7 .. +0.2 of log fair value)."""


def params_of(pdf: pd.DataFrame) -> DemandParams:
    return DemandParams(*(pdf[c].to_numpy(dtype=np.float64) for c in TRUTH_COLS))


def _column(params: DemandParams) -> DemandParams:
    return DemandParams(*(np.asarray(getattr(params, f))[:, None] for f in
                          ("log_fair_value", "elasticity", "base_hazard", "demand_bonus")))


def best_price(params: DemandParams, lo: np.ndarray, hi: np.ndarray, horizon_days: int, grid: int = 201,
               refine: int = 40, objective: Objective | None = None) -> np.ndarray:
    """Per row, the price in ``[lo, hi]`` with the highest true expected value under ``objective`` (default:
    revenue within ``horizon_days``).

    A log-spaced grid, then golden-section search on the grid cell pair around the best point; the refined
    price is kept only where it beats the grid's best, so the result is never worse than the grid's."""
    check_horizon(horizon_days)
    obj = objective or Objective("revenue", horizon_days)
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.maximum(np.asarray(hi, dtype=np.float64), lo)
    col = _column(params)

    def gmv(log_p: np.ndarray) -> np.ndarray:
        return true_value(np.exp(log_p), col if log_p.ndim == 2 else params, obj)[0]

    t = np.linspace(0.0, 1.0, grid)
    a0, b0 = np.log(lo), np.log(hi)
    log_grid = a0[:, None] + (b0 - a0)[:, None] * t[None, :]
    values = gmv(log_grid)
    rows = np.arange(len(lo))
    i = values.argmax(axis=1)
    best_x, best_v = log_grid[rows, i], values[rows, i]
    a = log_grid[rows, np.maximum(i - 1, 0)]
    b = log_grid[rows, np.minimum(i + 1, grid - 1)]
    c, d = b - INVPHI * (b - a), a + INVPHI * (b - a)
    fc, fd = gmv(c), gmv(d)
    for _ in range(refine):
        left = fc >= fd
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        c2, d2 = b - INVPHI * (b - a), a + INVPHI * (b - a)
        c, d = np.where(left, c2, d), np.where(left, c, d2)
        new = gmv(np.where(left, c, d))
        fc, fd = np.where(left, new, fd), np.where(left, fc, new)
    x = (a + b) / 2.0
    v = gmv(x)
    return np.exp(np.where(v > best_v, x, best_x))


EVAL_SCHEMA = T.StructType([
    T.StructField("listing_id", T.LongType()),
    *[T.StructField(f"{k}_{p}", T.DoubleType()) for p in (*RATIOED, "oracle", "free") for k in ("gmv", "sold")],
    T.StructField("oracle_price", T.DoubleType()),
    T.StructField("free_price", T.DoubleType()),
])


def evaluate_batch(pdf: pd.DataFrame, horizon_days: int, objective: Objective | None = None) -> pd.DataFrame:
    """Per listing: true expected value under ``objective`` (``gmv_*``; default: revenue within ``horizon_days``)
    and sale probability within its horizon (``sold_*``) of each policy's price and of both oracles (which
    maximise that same value).  A policy without a price (null) gets nan."""
    obj = objective or Objective("revenue", horizon_days)
    h = obj.horizon_days or horizon_days
    check_horizon(h)
    params = params_of(pdf)
    out: dict[str, np.ndarray] = {"listing_id": pdf["listing_id"].to_numpy()}

    def put(name: str, price: np.ndarray) -> None:
        missing = np.isnan(price)
        value, sold = true_value(np.where(missing, 1.0, price), params, obj)
        out[f"gmv_{name}"], out[f"sold_{name}"] = np.where(missing, np.nan, value), np.where(missing, np.nan, sold)

    for policy in POLICIES:
        put(policy, pdf[POLICY_PRICE[policy]].to_numpy(dtype=np.float64, na_value=np.nan))
    band_lo, band_hi = pdf["band_lo"].to_numpy(dtype=np.float64), pdf["band_hi"].to_numpy(dtype=np.float64)
    current = pdf[POLICY_PRICE["own"]].to_numpy(dtype=np.float64)
    for change in FLAT_CHANGES:
        put(flat_name(change), np.clip(current * (1 + change), band_lo, band_hi))
    oracle = best_price(params, band_lo, band_hi, h, objective=obj)
    floor, ceiling = pdf["floor"].to_numpy(dtype=np.float64), pdf["ceiling"].to_numpy(dtype=np.float64)
    lfv = params.log_fair_value
    free = best_price(params, np.clip(np.exp(lfv - FREE_SPAN), floor, ceiling),
                      np.clip(np.exp(lfv + FREE_SPAN), floor, ceiling), h, objective=obj)
    put("oracle", oracle)
    put("free", free)
    out["oracle_price"], out["free_price"] = oracle, free
    return pd.DataFrame(out)


def price_band(price: Column) -> Column:
    return (F.when(price < 10, "<10").when(price < 25, "10-25").when(price < 50, "25-50")
            .when(price < 100, "50-100").otherwise("100+"))


def listing_age(days: Column) -> Column:
    return F.when(days < 14, "<14d").when(days < 60, "14-59d").otherwise("60d+")


def per_listing(spark: SparkSession, cfg: Config, inputs: DataFrame, horizon_days: int,
                objective: Objective | None = None) -> DataFrame:
    """``inputs`` (listing_id, the policy prices, band_lo/hi, floor, ceiling, segment columns) joined to the
    listings' true demand, evaluated per listing under ``objective`` (``EVAL_SCHEMA`` plus the segment
    columns)."""
    truth = delta_io.read(spark, table(cfg, catalog.TRUTH_LISTINGS)).select("listing_id", *TRUTH_COLS)
    cols = ["listing_id", *POLICY_PRICE.values(), "band_lo", "band_hi", "floor", "ceiling"]
    frame = inputs.select(*[F.col(c).cast("double") if c != "listing_id" else F.col(c) for c in cols]).join(
        truth, "listing_id")

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            yield evaluate_batch(pdf, horizon_days, objective)

    return frame.mapInPandas(run, EVAL_SCHEMA).join(inputs.select("listing_id", *SEGMENT_DIMS), "listing_id")


def summarise(evaluated: DataFrame) -> pd.DataFrame:
    """Ratios per segment (``segment``, ``value``): revenue of each policy over the guardrailed oracle's
    (``*_ratio``) and over the free oracle's (``*_ratio_free``), sale probabilities, and what the guardrails
    cost (``guardrail_ratio`` = oracle / free).  Rows: ``overall / all`` and one per value of each dimension."""
    pairs = F.array(F.struct(F.lit("overall").alias("segment"), F.lit("all").alias("value")),
                    *[F.struct(F.lit(d).alias("segment"), F.coalesce(F.col(d), F.lit("none")).alias("value"))
                      for d in SEGMENT_DIMS])
    names = [*RATIOED, "oracle", "free"]
    sums = (evaluated.select(F.explode(pairs).alias("s"), *[f"gmv_{p}" for p in names],
                             *[f"sold_{p}" for p in names])
            .groupBy("s.segment", "s.value")
            .agg(F.count("*").alias("listings"), *[F.sum(f"gmv_{p}").alias(f"gmv_{p}") for p in names],
                 *[F.avg(f"sold_{p}").alias(f"sold_{p}") for p in names]).toPandas())
    out = sums[["segment", "value", "listings"]].copy()
    out["oracle_revenue"] = sums["gmv_oracle"]
    out["free_revenue"] = sums["gmv_free"]
    for p in RATIOED:
        out[f"{p}_ratio"] = sums[f"gmv_{p}"] / sums["gmv_oracle"]
        out[f"{p}_ratio_free"] = sums[f"gmv_{p}"] / sums["gmv_free"]
    overall = (sums["segment"] == "overall").to_numpy()
    best = max(BASELINES, key=lambda b: float(out.loc[overall, f"{b}_ratio"].iloc[0]))
    out["best_flat"] = best
    out["best_flat_ratio"] = out[f"{best}_ratio"]
    out["optimised_margin_over_best_flat"] = out["optimised_ratio"] - out["best_flat_ratio"]
    out["guardrail_ratio"] = sums["gmv_oracle"] / sums["gmv_free"]
    for p in names:
        out[f"{p}_sell_through"] = sums[f"sold_{p}"]
    order = {d: i for i, d in enumerate(("overall", *SEGMENT_DIMS))}
    return out.sort_values(["segment", "value"], key=lambda s: s.map(order) if s.name == "segment" else s
                           ).reset_index(drop=True)


def elasticity_against_truth(spark: SparkSession, cfg: Config, estimates: pd.DataFrame,
                             segment_cols: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, float]] | None:
    """Per leaf category, the estimated elasticities (``estimates``: ``segment`` = the ``segment_cols`` values
    joined by '/', ``rows`` and one column per estimator) beside the simulator's true ``elasticity``; summary
    metrics (listing-weighted means, mean absolute error, correlation) per estimator.  None when the segments
    are not the simulator's leaf categories or its truth is absent."""
    ref = table(cfg, catalog.TRUTH_CATEGORIES)
    if tuple(segment_cols) != ("department", "category", "subcategory") or not delta_io.exists(spark, ref):
        return None
    truth = delta_io.read(spark, ref).select(
        F.concat_ws("/", "department", "category", "subcategory").alias("segment"),
        F.col("elasticity").alias("true_elasticity")).toPandas()
    joined = estimates.merge(truth, on="segment", how="inner")
    if joined.empty:
        return None
    w = joined["rows"].to_numpy(dtype=np.float64)
    true = joined["true_elasticity"].to_numpy()
    summary = {"true_mean": float(np.average(true, weights=w)), "segments": float(len(joined))}
    for est in [c for c in estimates.columns if c not in ("segment", "rows")]:
        x = joined[est].to_numpy(dtype=np.float64)
        summary[f"{est}_mean"] = float(np.average(x, weights=w))
        summary[f"{est}_mae"] = float(np.average(np.abs(x - true), weights=w))
        summary[f"{est}_corr"] = float(np.corrcoef(x, true)[0, 1]) if len(joined) > 2 else float("nan")
    return joined, summary
