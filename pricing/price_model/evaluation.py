"""How a price model is judged: overall and per-segment metrics, baselines and the noise floor.

Everything here is computed on the **test weeks** (the most recent, never used to choose anything) against
statistics learnt from the **training weeks** only: baseline medians, brand tiers.  Frames crossing to the
driver are small (one row per test listing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricing.platform.rows import first_value
from pricing.price_model.metrics import price_metrics, rmsle

PRICE_BANDS = (0.0, 10.0, 25.0, 50.0, 100.0, float("inf"))
"""Sold-price bands (currency units) for per-segment metrics."""
SEGMENTS = ("category", "brand_tier", "price_band", "condition", "seller_type")
"""The segment dimensions every evaluation reports."""
OUTCOME_SEGMENTS = ("price_band",)
"""Segments defined by the sold price itself: within one, a constant inside the band (a global median that happens
to fall in it) beats any model, so the per-segment baseline test (:func:`behind_a_baseline`) leaves them out.
Their metrics are reported all the same."""
UNBRANDED = "unbranded"
RARE_BRAND = "rare brand"


def band_label(lo: float, hi: float) -> str:
    return f"{lo:g}+" if hi == float("inf") else f"{lo:g}-{hi:g}"


def brand_tiers(train: DataFrame, min_sales: int) -> pd.DataFrame:
    """``brand, brand_tier``: brands with at least ``min_sales`` training sales ranked into five tiers by
    their median sold price (tier 1 cheapest).  Observable, unlike the simulator's hidden tier."""
    med = (train.where(F.col("brand").isNotNull()).groupBy("brand")
           .agg(F.count("*").alias("n"), F.median("label").alias("m")).where(F.col("n") >= min_sales).toPandas())
    if med.empty:
        return pd.DataFrame({"brand": pd.Series(dtype=object), "brand_tier": pd.Series(dtype=object)})
    rank = med["m"].rank(method="first", pct=True)
    med["brand_tier"] = "tier " + np.ceil(rank * 5).clip(1, 5).astype(int).astype(str)
    return med[["brand", "brand_tier"]]


def with_segments(frame: pd.DataFrame, tiers: pd.DataFrame) -> pd.DataFrame:
    """Adds one column per segment dimension.  ``frame`` needs label, category, condition, brand and
    seller_prior_listings."""
    out = frame.merge(tiers, on="brand", how="left")
    out["brand_tier"] = np.where(out["brand"].isna(), UNBRANDED, out["brand_tier"].fillna(RARE_BRAND))
    price = np.expm1(out["label"].to_numpy())
    labels = [band_label(lo, hi) for lo, hi in zip(PRICE_BANDS[:-1], PRICE_BANDS[1:], strict=True)]
    out["price_band"] = pd.cut(price, list(PRICE_BANDS), labels=labels, right=False).astype(str)
    prior = out["seller_prior_listings"]
    out["seller_type"] = np.where(prior.isna(), "unknown", np.where(prior.fillna(0) == 0, "new", "returning"))
    out["category"] = out["category"].fillna("(none)")
    out["condition"] = out["condition"].fillna("(none)")
    return out


def segment_metrics(frame: pd.DataFrame, dims: Sequence[str] = SEGMENTS,
                    alphas: tuple[float, float, float] = (0.1, 0.5, 0.9)) -> pd.DataFrame:
    """One row per (dimension, value): rows and every metric of :func:`price_metrics`.

    ``frame``: ``label`` and ``p10_log, p50_log, p90_log`` (log1p scale) plus the segment columns.
    """
    rows = []
    for dim in dims:
        for value, g in frame.groupby(dim, sort=True, observed=True):
            m = price_metrics(g["label"].to_numpy(), g["p10_log"].to_numpy(), g["p50_log"].to_numpy(),
                              g["p90_log"].to_numpy(), alphas)
            rows.append({"segment": dim, "value": str(value), **m})
    out = pd.DataFrame(rows)
    out["rows"] = out["rows"].astype(int)
    return out


def with_baselines(seg: pd.DataFrame, frame: pd.DataFrame, preds: dict[str, np.ndarray],
                   dims: Sequence[str] = SEGMENTS) -> pd.DataFrame:
    """``seg`` (:func:`segment_metrics` of ``frame``) with each segment's best baseline: ``best_baseline`` and
    ``best_baseline_rmsle``, the lowest RMSLE of the ``preds`` (:func:`baseline_predictions`, in ``frame``'s row
    order) on the segment's rows.  A baseline chosen per segment in hindsight: a strict test for the model."""
    y = frame["label"].to_numpy()
    rows = []
    for dim in dims:
        for value, idx in frame.groupby(dim, sort=True, observed=True).indices.items():
            scores = {name: rmsle(y[idx], p[idx]) for name, p in preds.items()}
            best = min(scores, key=lambda name: scores[name])
            rows.append({"segment": dim, "value": str(value), "best_baseline": best,
                         "best_baseline_rmsle": scores[best]})
    return seg.merge(pd.DataFrame(rows), on=["segment", "value"], how="left")


def behind_a_baseline(seg: pd.DataFrame, min_rows: int) -> pd.DataFrame:
    """The segments of :func:`with_baselines` with at least ``min_rows`` rows where the model's RMSLE is not below
    its best baseline's; segments known at listing time only (not :data:`OUTCOME_SEGMENTS`)."""
    return seg[(seg["rows"] >= min_rows) & (seg["rmsle"] >= seg["best_baseline_rmsle"])
               & ~seg["segment"].isin(OUTCOME_SEGMENTS)]


def overall_metrics(frame: pd.DataFrame, alphas: tuple[float, float, float] = (0.1, 0.5, 0.9)) -> dict[str, float]:
    return price_metrics(frame["label"].to_numpy(), frame["p10_log"].to_numpy(), frame["p50_log"].to_numpy(),
                         frame["p90_log"].to_numpy(), alphas)


def baseline_predictions(train: DataFrame, test: pd.DataFrame, shrinkage_k: float) -> dict[str, np.ndarray]:
    """Log-scale predictions for the test rows of three baselines learnt on the training weeks:

    * ``global_median``: one number;
    * ``category_condition_median``: the segment's median, else the global one;
    * ``brand_category_shrunk``: the brand x category median shrunk toward the category median with ``k``
      pseudo-sales, ``(n * m_bc + k * m_c) / (n + k)``, else the category median, else global.
    """
    g = first_value(train.agg(F.median("label")))
    cc = train.groupBy("category", "condition").agg(F.median("label").alias("m_cc")).toPandas()
    cat = train.groupBy("category").agg(F.median("label").alias("m_c")).toPandas()
    bc = (train.where(F.col("brand").isNotNull()).groupBy("brand", "category")
          .agg(F.median("label").alias("m_bc"), F.count("*").alias("n_bc")).toPandas())
    t = test[["brand", "category", "condition"]].merge(cc, on=["category", "condition"], how="left") \
        .merge(cat, on="category", how="left").merge(bc, on=["brand", "category"], how="left")
    m_c = t["m_c"].fillna(g).to_numpy()
    n = t["n_bc"].fillna(0).to_numpy()
    shrunk = np.where(n > 0, (n * t["m_bc"].fillna(0).to_numpy() + shrinkage_k * m_c) / (n + shrinkage_k), m_c)
    return {"global_median": np.full(len(t), g, dtype=float),
            "category_condition_median": t["m_cc"].fillna(g).to_numpy(dtype=float),
            "brand_category_shrunk": shrunk.astype(float)}


def baseline_metrics(test: pd.DataFrame, preds: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """RMSLE, MAE and MAPE of each baseline on the test rows (baselines have no range)."""
    y = test["label"].to_numpy()
    out = {}
    for name, p in preds.items():
        m = price_metrics(y, p, p, p)
        out[name] = {k: m[k] for k in ("rmsle", "mae", "mape")}
    return out


def noise_floor(train_truth: pd.DataFrame, test_truth: pd.DataFrame) -> float | None:
    """Best achievable RMSLE on the test rows, from the simulator's truth (evaluation code only).

    The oracle knows each listing's fair value from its observable attributes (every brand's effect
    exactly, text signals included) and the average seller markup as a function of seller skill, fitted
    on the training weeks: ``log(price) = log_fair_observable + a + b * seller_skill``.  What it cannot
    know is the item's own noise, the seller's markup noise and the accepted offer: the irreducible error.
    Frames: ``label, log_fair_observable, seller_skill``.
    """
    if len(train_truth) < 10 or not len(test_truth):
        return None
    y = np.log(np.expm1(train_truth["label"].to_numpy())) - train_truth["log_fair_observable"].to_numpy()
    X = np.column_stack([np.ones(len(y)), train_truth["seller_skill"].to_numpy()])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    pred = test_truth["log_fair_observable"].to_numpy() + coef[0] + coef[1] * test_truth["seller_skill"].to_numpy()
    return rmsle(test_truth["label"].to_numpy(), np.log1p(np.exp(pred)))
