"""The demand model: P(sold within H days | listing features, price), and the price that serves a seller's
objective under it.

Two parts, each fitted where the data can identify it:

* **Sale probability at the seller's own price**, ``P0``: an xgboost classifier (trained distributed with
  ``xgboost.spark`` in ``jobs/demand.py``) on the listing's features, its predicted value and the seller's price
  relative to that value, ``log(own price / value)`` (monotone decreasing constraint).  Trained on the
  exploration experiment's control arm: prices as sellers set them.
* **Price response**: how that probability moves when the same listing's price moves away from the seller's
  own.  The sale hazard scales as ``(p / own) ** -theta`` (proportional hazards), so

      P(p) = 1 - (1 - P0) ** ((p / own) ** -theta)

  with ``theta >= 0`` per segment (leaf category), estimated by penalised maximum likelihood from the
  treatment arm's **randomised** price nudges, shrunk toward the overall theta.  Non-increasing in price by
  construction.  ``theta`` is the elasticity of the cumulative sale hazard: the simulator's per-category
  ``elasticity`` is the same quantity for one item (see ``pricing.optimisation.evaluation``).

Why not read the price response off the classifier's own slope in ``log(price / value)`` (the **naive**
fit)?  Sellers know things about their item that the features do not (its hidden quality), and ask more for
better items, which still sell.  Across listings, a high price relative to the *predicted* value partly
means a better item, so the observational slope understates how sales fall when the *same* item's price
rises.  The randomised nudges move the price independently of everything else.

Where the marketplace can only *suggest* a price (an encouragement design, ``simulator.exploration:
encouragement``), sellers choose whether to take the suggestion, and those who take a cut tend to be those
who know their item is worse than it looks: comparing adopters with the rest (**as treated**) is confounded
again.  The suggestion itself is random, and two instrumental-variable estimates use that.  Intent to treat
(:func:`score_terms`) takes the *offered* move and the observed take-up rate (by the move's direction),
``P = P0 + take_up (P(offered) - P0)``; in a nonlinear model it weights the items as the adopters are weighted,
so with selected adopters it is biased too, by less.  The control function (:func:`fit_control_function`, the
default) takes the adopted move and shifts the log hazard by the first stage's residual (adopted minus take-up),
estimating how different the adopters are alongside theta.  ``identification: naive``
keeps the classifier's slope (for sources without an experiment); the evaluation shows what it costs.

**Survival** (an active listing that has not sold yet): items differ in ways the features miss, so a listing
still unsold after ``a`` days is probably a slow seller.  Each item's cumulative sale hazard is its
classifier-implied mean times a gamma frailty ``Z`` (shape ``k``, mean 1), accumulating over time along a shape
``g(t)`` (``g(H) = 1``; it carries the marketplace's usual price drops and its end of sales), both estimated
by maximum likelihood from the treatment arm's sale times (:func:`fit_frailty`).  Unsold after exposure ``g(a)``,
``Z``'s posterior is gamma with rate ``k + L g(a)``, which lowers the sale probability a relisting at the own
price has (:func:`survival_update`) before the price response moves it.  The recommendation prices the item
as if (re)listed now at the candidate price, which is what the evaluation against truth measures too.

The predicted value comes from two value boosters (the price model's recipe, log1p sold price) cross-fitted
on two halves of the listings (``value_fold``): a listing's value is predicted by the booster that did not
see its sale.  An in-sample prediction sits closer to the sold price of sold listings than of unsold ones
and would leak the label into the classifier's most important input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.demand_model.pyfunc import (
    ALL,
    P_EPS,
    VALUE_COLS,
    DemandModel,
    DemandPredictor,
    cumulative_hazard,
    frailty_mean,
    price_response,
    shape_at,
    survival_update,
)
from pricing.platform.objective import KINDS, VALUED, Objective

__all__ = [
    "ALL", "FRAILTY_KNOTS", "INPUT_COLS", "P_EPS", "RECOMMEND_SCHEMA", "VALUE_COLS", "DemandModel", "DemandPredictor",
    "Objective", "as_objective", "as_pandas_input", "choose", "choose_under", "cloglog_slope", "fit_control_function",
    "judged_columns",
    "objective_value", "recommend_schema", "cumulative_hazard", "fit_frailty", "fit_theta", "frailty_mean",
    "price_response", "recommend_batch", "recommend_frame", "score_terms", "segment_key", "shape_at",
    "survival_update", "value_fold",
]

INPUT_COLS = ("listing_id", "value_fold", "own_price", "segment")
"""Besides the listing features, what the predictor reads from a frame: the cross-fitting fold, the seller's own
price (before any exploration nudge) and the elasticity segment."""


def value_fold(listing_id: Column) -> Column:
    """The listing's cross-fitting half (0 or 1), a stable hash of its id."""
    return F.pmod(F.xxhash64(F.lit("value-fold"), listing_id), F.lit(2)).cast("int")


def segment_key(cols: Sequence[str]) -> Column:
    """The elasticity segment of a row: its ``cols`` values joined by '/' ('?' for a missing value)."""
    return F.concat_ws("/", *[F.coalesce(F.col(c).cast("string"), F.lit("?")) for c in cols])


# ---- the price response ---------------------------------------------------------------------------------------
def cloglog_slope(log_prices: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per row, minus the least-squares slope of ``log(-log(1 - p))`` on log price: the elasticity of the
    cumulative sale hazard that a demand curve implies (``theta`` for :func:`price_response` curves)."""
    y = np.log(cumulative_hazard(p))
    x = np.asarray(log_prices, dtype=np.float64)
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    return -(xc * yc).sum(axis=1) / np.maximum((xc**2).sum(axis=1), 1e-12)


def score_terms(delta: np.ndarray, offset: np.ndarray, y: np.ndarray, theta: float | np.ndarray,
                k: float | None = None, take_up: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Per row: the gradient in theta and the Fisher information of the log-likelihood of ``y`` (sold 0/1) when
    the price moved by ``delta`` from where the sale probability is ``P0`` (``offset`` = log of its cumulative
    hazard): ``P = price_response(P0, theta, delta, k)``.  ``k`` None: complementary log-log,
    ``P = 1 - exp(-exp(offset - theta * delta))``; else the gamma(k) mixture, ``P = 1 - (1 + lam / k) ** -k``
    with ``lam = frailty_mean(P0, k) exp(-theta * delta)``.

    ``take_up`` (intent to treat, an encouragement design): ``delta`` is the price the row was *offered*, taken
    with probability ``take_up``, so ``P = P0 + take_up (price_response(...) - P0)``.  None: always taken."""
    scale = np.exp(-theta * delta)
    if k is None:
        lam = np.exp(offset) * scale
        surv = np.exp(-lam)
        dp_dlam = surv                                     # dP / dlam
    else:
        lam = k * np.expm1(np.exp(offset) / k) * scale
        surv = np.exp(-k * np.log1p(lam / k))
        dp_dlam = surv * k / (k + lam)
    dp_dtheta = -delta * lam * dp_dlam
    if take_up is not None:
        # P0's survival is exp(-exp(offset)) under either response (frailty_mean keeps P0).
        surv = (1.0 - take_up) * np.exp(-np.exp(offset)) + take_up * surv
        dp_dtheta = take_up * dp_dtheta
    p = np.clip(1.0 - surv, 1e-300, 1.0)
    surv = np.maximum(surv, 1e-300)
    return dp_dtheta * (y / p - (1.0 - y) / surv), dp_dtheta**2 / (p * surv)


def fit_theta(delta: np.ndarray, offset: np.ndarray, y: np.ndarray, prior_mean: float = 0.0,
              prior_sd: float | None = None, iters: int = 50, k: float | None = None,
              take_up: np.ndarray | None = None) -> tuple[float, float]:
    """Penalised maximum-likelihood theta (Fisher scoring) and its information, for one segment in memory.

    ``prior_sd`` None: plain maximum likelihood.  ``pricing.demand_model.training.newton_on_rows`` runs the same
    iteration for every segment of a table's rows at once."""
    prec = 0.0 if prior_sd is None else 1.0 / prior_sd**2
    theta = prior_mean if prior_sd is not None else 1.0
    info = prec
    for _ in range(iters):
        g, i = score_terms(delta, offset, y, theta, k, take_up)
        grad = float(g.sum()) - prec * (theta - prior_mean)
        info = float(i.sum()) + prec
        if info <= 0:
            break
        step = grad / info
        theta += step
        if abs(step) < 1e-8:
            break
    return theta, info


def expected_correlation(tau: float, info: np.ndarray) -> float:
    """The correlation between shrunk segment estimates and the segments' true elasticities that the sampling
    noise allows, if the true ones spread with sd ``tau`` around the overall one and each estimate has variance
    ``1 / info_i`` (the data's Fisher information): ``sqrt(mean(r_i))`` with the reliability
    ``r_i = tau**2 / (tau**2 + 1 / info_i)`` (normal-normal model).  Computed without any truth: how far the
    per-segment elasticities can rank segments, and how much more exploration a target needs (the information
    grows with the explored rows).  A bias that compresses the segments' differences lowers the correlation
    further; this is the ceiling that noise alone sets."""
    ok = np.isfinite(info) & (info > 0)
    if not ok.any() or tau <= 0:
        return 0.0
    return float(np.sqrt(np.mean(tau**2 / (tau**2 + 1.0 / info[ok]))))


# ---- survival: what an unsold listing's time on the market says --------------------------------------------------
FRAILTY_KNOTS: tuple[float, ...] = (0.0, 7.0, 14.0, 21.0, 28.0, 35.0, 42.0, 50.0, 60.0, 75.0, 90.0, 120.0)
"""Days at which the cumulative-hazard shape ``g`` is estimated (linear in between, flat after the last)."""


def fit_frailty(p_h: np.ndarray, sold_day: np.ndarray, censor_day: np.ndarray, horizon: int,
                knots: Sequence[float] = FRAILTY_KNOTS) -> tuple[float, np.ndarray]:
    """Maximum-likelihood gamma frailty shape ``k`` and cumulative-hazard shape ``g`` at ``knots`` (``g(0) = 0``,
    non-decreasing, ``g(horizon) = 1``) from listings' sale times.

    ``p_h``: each listing's modelled probability of a sale within the horizon (out of sample); ``sold_day``:
    days from listing to sale (nan: unsold); ``censor_day``: days it was observed.  Survival is
    ``S(t) = (1 + L g(t) / k) ** -k`` with ``L = frailty_mean(p_h, k)``; a sale counts on its day
    (``S(d) - S(d + 1)``), an unsold listing as ``S(censor)``."""
    from scipy.optimize import minimize

    knots_a = np.asarray(knots, dtype=np.float64)
    sold = np.isfinite(sold_day)
    d0 = np.where(sold, np.floor(np.nan_to_num(sold_day)), np.asarray(censor_day, dtype=np.float64))
    d1 = d0 + 1.0

    def shape(raw: np.ndarray) -> np.ndarray:
        values = np.concatenate([[0.0], np.cumsum(np.logaddexp(0.0, raw))])
        return values / np.interp(float(horizon), knots_a, values)

    def nll(x: np.ndarray) -> float:
        k = float(np.exp(x[0]))
        g = shape(x[1:])
        lam = frailty_mean(p_h, k)
        log_s0 = -k * np.log1p(lam * np.interp(d0, knots_a, g) / k)
        log_s1 = -k * np.log1p(lam * np.interp(d1, knots_a, g) / k)
        # log(S(d0) - S(d1)) = log S(d0) + log(1 - exp(log S(d1) - log S(d0))), kept finite
        sale = log_s0 + np.log(np.maximum(-np.expm1(np.minimum(log_s1 - log_s0, -1e-12)), 1e-300))
        return -float(np.where(sold, sale, log_s0).sum()) / len(p_h)

    x0 = np.concatenate([[np.log(2.0)], np.zeros(len(knots_a) - 1)])
    res = minimize(nll, x0, method="L-BFGS-B",
                   bounds=[(np.log(0.05), np.log(200.0))] + [(-30.0, 10.0)] * (len(knots_a) - 1))
    return float(np.exp(res.x[0])), shape(res.x[1:])


def fit_control_function(delta: np.ndarray, offered: np.ndarray, offset: np.ndarray, y: np.ndarray,
                         take_up: np.ndarray, k: float | None = None) -> tuple[float, float, float]:
    """Maximum-likelihood ``(theta, shift_cut, shift_raise)`` of an encouragement design by control function.

    ``delta``: the move the price carries (the ``offered`` one where adopted, else 0); ``take_up``: each row's
    adoption probability (the first stage).  Who adopts may differ in demand the offset does not see, so the
    log cumulative hazard is shifted by ``shift * (adopted - take_up)``, one shift for offered cuts and one for
    raises: ``P = price_response(P0 e^shift, theta, delta, k)``.  The shift is the same whatever the size of
    the offered move while the price effect grows with it, which is what separates the two."""
    from scipy.optimize import minimize

    residual = (np.asarray(delta) != 0).astype(np.float64) - np.asarray(take_up, dtype=np.float64)
    cut, raise_ = np.where(offered < 0, residual, 0.0), np.where(offered > 0, residual, 0.0)

    p0 = -np.expm1(-np.exp(offset))

    def nll(x: np.ndarray) -> float:
        # The shift scales each item's hazard as a price move would (through the frailty mixture, like theta).
        shifted = price_response(p0, np.ones_like(p0), -(x[1] * cut + x[2] * raise_), k)
        p = np.clip(price_response(shifted, x[0], delta, k), P_EPS, 1.0 - P_EPS)
        return -float((y * np.log(p) + (1.0 - y) * np.log1p(-p)).sum()) / len(y)

    res = minimize(nll, np.array([1.0, 0.0, 0.0]), method="L-BFGS-B",
                   bounds=[(0.0, 20.0), (-5.0, 5.0), (-5.0, 5.0)])
    return float(res.x[0]), float(res.x[1]), float(res.x[2])


# ---- choosing a price -------------------------------------------------------------------------------------------
def choose(prices: np.ndarray, p_sale: np.ndarray, objective: str, min_revenue_share: float = 0.9,
           value: np.ndarray | None = None) -> np.ndarray:
    """Index of the chosen candidate per row (``prices`` ascending along axis 1).

    ``revenue`` / ``continuation``: the highest ``value`` (default ``price x p_sale``; the lowest such price on
    a tie).  ``sell_through``: among the candidates keeping at least ``min_revenue_share`` of the best
    ``price x p_sale``, the highest sale probability, and among equally likely ones the highest revenue."""
    revenue = prices * p_sale
    if objective in VALUED:
        return np.argmax(revenue if value is None else value, axis=1)
    if objective != "sell_through":
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(KINDS)}")
    best = revenue.max(axis=1, keepdims=True)
    ok = revenue >= min_revenue_share * best - 1e-12
    p = np.where(ok, p_sale, -1.0)
    top = p.max(axis=1, keepdims=True)
    return np.argmax(np.where(ok & (p >= top - 1e-12), revenue, -1.0), axis=1)


def objective_value(predictor: DemandPredictor, prices: np.ndarray, p_sale: np.ndarray,
                    objective: Objective) -> np.ndarray:
    """Each candidate's value under ``objective`` (its horizon filled in): ``price x p_sale x realisation`` for
    sell_through (whose choice keeps a share of that revenue), else ``predictor.sale_value``."""
    if objective.kind == "sell_through":
        return prices * p_sale * predictor.realisation
    assert objective.horizon_days is not None
    return predictor.sale_value(prices, p_sale, objective.horizon_days, objective.after_horizon)[0]


def choose_under(predictor: DemandPredictor, prices: np.ndarray, p_sale: np.ndarray, objective: Objective,
                 value: np.ndarray | None = None) -> np.ndarray:
    """The chosen candidate per row under ``objective``, from each candidate's ``value`` under it
    (``objective_value``, computed when not given)."""
    if value is None:
        value = objective_value(predictor, prices, p_sale, objective)
    return choose(prices, p_sale, objective.kind, objective.min_revenue_share, value=value)


# ---- distributed recommendation -------------------------------------------------------------------------------
RECOMMEND_SCHEMA = T.StructType([
    T.StructField("listing_id", T.LongType()),
    T.StructField("recommended_price", T.DoubleType()),
    T.StructField("p_sale", T.DoubleType()),
    T.StructField("expected_revenue", T.DoubleType()),
    T.StructField("expected_value", T.DoubleType()),
    T.StructField("p_sale_current", T.DoubleType()),
    T.StructField("expected_revenue_current", T.DoubleType()),
    T.StructField("expected_value_current", T.DoubleType()),
    T.StructField("elasticity", T.DoubleType()),
    T.StructField("at_lowest", T.BooleanType()),
    T.StructField("at_highest", T.BooleanType()),
    T.StructField("naive_price", T.DoubleType()),
])


def judged_columns(objective: Objective) -> tuple[str, str]:
    """The columns holding the served and the naive model's choice under a judged objective."""
    return f"price__{objective.name}", f"naive_price__{objective.name}"


def recommend_schema(judged: Sequence[Objective] = ()) -> T.StructType:
    """``RECOMMEND_SCHEMA`` plus, per judged objective, both models' choice under it (``judged_columns``)."""
    extra = [T.StructField(c, T.DoubleType()) for o in judged for c in judged_columns(o)]
    return T.StructType([*RECOMMEND_SCHEMA.fields, *extra])


def as_objective(objective: Objective | str, min_revenue_share: float = 0.9) -> Objective:
    return objective if isinstance(objective, Objective) else Objective(objective, min_revenue_share=min_revenue_share)


def recommend_batch(predictor: DemandPredictor, pdf: pd.DataFrame, objective: Objective | str,
                    min_revenue_share: float = 0.9, with_naive: bool = False,
                    judged: Sequence[Objective] = ()) -> pd.DataFrame:
    """One Arrow batch: ``candidates`` (an ascending list of prices per row) and ``current_price`` in, the
    chosen candidate under ``objective`` and what the model expects of it out (columns of ``recommend_schema``);
    for each ``judged`` objective (horizons filled in), the served and the naive model's choice under it too."""
    schema = recommend_schema(judged)
    if pdf.empty:
        return pd.DataFrame({f.name: pd.Series(dtype=object) for f in schema.fields})
    obj = as_objective(objective, min_revenue_share).at(predictor.horizon_days)
    prices = np.stack(list(pdf["candidates"].to_numpy())).astype(np.float64)
    current = pdf["current_price"].to_numpy(dtype=np.float64)
    grid = np.column_stack([prices, current])
    if with_naive or predictor.identification == "naive":
        served_all, naive_all = predictor.curves(pdf, grid)
    else:
        served_all, naive_all = predictor.p_sale(pdf, grid), None
    # Values on the candidates and the current price at once; the candidates' are the first columns.
    value_all = objective_value(predictor, grid, served_all, obj)
    served, at_current, value = served_all[:, :-1], served_all[:, -1], value_all[:, :-1]
    idx = choose_under(predictor, prices, served, obj, value)
    rows = np.arange(len(pdf))
    chosen = prices[rows, idx]
    p = served[rows, idx]
    if predictor.identification == "naive":
        elasticity = cloglog_slope(np.log(prices), np.clip(served, P_EPS, 1 - P_EPS))
    else:
        elasticity = predictor.theta(pdf["segment"])
    naive = naive_all[:, :-1] if with_naive and naive_all is not None else None
    naive_idx = choose_under(predictor, prices, naive, obj) if naive is not None else None
    k = prices.shape[1]
    out = pd.DataFrame({
        "listing_id": pdf["listing_id"].to_numpy(), "recommended_price": chosen, "p_sale": p,
        "expected_revenue": chosen * p * predictor.realisation, "expected_value": value[rows, idx],
        "p_sale_current": at_current, "expected_revenue_current": current * at_current * predictor.realisation,
        "expected_value_current": value_all[:, -1], "elasticity": elasticity,
        # Ends of a grid that rounding collapsed (equal prices) are the same bound.
        "at_lowest": chosen <= prices[:, 0], "at_highest": chosen >= prices[:, k - 1],
        "naive_price": prices[rows, naive_idx] if naive_idx is not None else np.full(len(pdf), np.nan),
    })
    for o in judged:
        served_col, naive_col = judged_columns(o)
        # The served objective's choices are already made: reuse them rather than value the curves again.
        same = (o.kind, o.horizon_days, o.after_horizon) == (obj.kind, obj.horizon_days, obj.after_horizon)
        out[served_col] = chosen if same else prices[rows, choose_under(predictor, prices, served, o)]
        if naive is None:
            out[naive_col] = np.nan
        else:
            out[naive_col] = prices[rows, naive_idx if same and naive_idx is not None
                                    else choose_under(predictor, prices, naive, o)]
    return out


def recommend_frame(df: DataFrame, predictor: DemandPredictor, objective: Objective | str, min_revenue_share: float,
                    with_naive: bool = False, judged: Sequence[Objective] = ()) -> DataFrame:
    """Distributed: one recommendation per row of ``df`` (``INPUT_COLS``, the listing features,
    ``current_price`` and ``candidates``).  The predictor travels once per executor as a broadcast and each
    Arrow batch is scored as matrices (no per-row Python)."""
    spark = df.sparkSession
    blobs = spark.sparkContext.broadcast(predictor.to_bytes())
    cols = [*INPUT_COLS, "current_price", "candidates",
            *[c for c in ("age_days", "listed_price") if c in df.columns]]
    judged = tuple(o.at(predictor.horizon_days) for o in judged)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = DemandPredictor.from_bytes(blobs.value)
        for pdf in batches:
            yield recommend_batch(model, pdf, objective, min_revenue_share, with_naive, judged)

    return df.select(*cols, *[F.col(c).cast("double") for c in predictor.features]).mapInPandas(
        run, recommend_schema(judged))


def as_pandas_input(rows: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """The pyfunc's input frame from rows holding the features and ``INPUT_COLS`` (and ``price``)."""
    out = rows[[*features]].astype("float64")
    out["value_fold"] = rows["value_fold"].astype("float64")
    out["own_price"] = rows["own_price"].astype("float64")
    out["segment"] = rows["segment"].astype(str)
    out["price"] = rows["price"].astype("float64")
    return out
