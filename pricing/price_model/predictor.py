"""The price model: an xgboost median model on log1p(price) plus a p10-p90 range.

Two ways to make the range, chosen by ``train.intervals`` (measured side by side in
``bench/intervals.py``):

* ``cqr`` (default): conformalised quantile regression.  Two more boosters trained with
  ``reg:quantileerror`` for p10 and p90, each side then shifted by a split-conformal adjustment from the
  calibration window (:func:`cqr_offsets`), per segment (``train.interval_segment``, e.g. the category) where
  the segment has enough calibration rows, else over all rows.  The width follows each listing's uncertainty.
* ``conformal``: split-conformal offsets around the median, the 10th and 90th percentiles of the calibration
  window's residuals, per segment.  One model, cheap, calibrated on average but one width per segment.
* ``quantile``: the two quantile boosters, uncalibrated.

Whichever, ``p10 <= p50 <= p90`` holds for every row (conformal offsets straddle 0; the other outputs are
sorted around the median), so the output never crosses.

:class:`PricePredictor` is the one object that predicts; :class:`PriceModel` is the MLflow pyfunc the
registry serves (it wraps a predictor).  Both live in ``pricing.price_model.pyfunc``, the self-contained file
MLflow logs as the model's code (so the model loads where our wheel is not installed), re-exported here.
This module adds what only the package needs: :func:`conformal_offsets`, :func:`cqr_offsets` (training) and
:func:`score_frame`, which applies a predictor to a Spark frame in an Arrow ``mapInPandas`` (no per-row Python).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.platform import faults
from pricing.price_model.pyfunc import ALL, P50_BAND, Intervals, PriceModel, PricePredictor

__all__ = ["ALL", "P50_BAND", "PRED_SCHEMA", "Intervals", "PriceModel", "PricePredictor", "conformal_offsets",
           "conformal_quantile", "cqr_offsets", "p50_bands", "score_frame"]


def conformal_offsets(resid: np.ndarray, segment: np.ndarray | None, alphas: tuple[float, float],
                      min_rows: int) -> dict[str, tuple[float, float]]:
    """Split-conformal offsets: residual quantiles (log scale) overall and per segment with ``min_rows``."""
    def q(rows: np.ndarray) -> tuple[float, float]:
        r = resid[rows]
        return min(0.0, float(np.quantile(r, alphas[0]))), max(0.0, float(np.quantile(r, alphas[1])))

    return per_segment(q, len(resid), segment, min_rows)


def per_segment(fit: Callable[[np.ndarray], tuple[float, float]], n: int, segment: np.ndarray | None,
                min_rows: int) -> dict[str, tuple[float, float]]:
    """``fit`` (given a boolean row mask) over all ``n`` rows as the :data:`ALL` entry, and over each segment
    (``segment``: a float key per row, NaN for none) that has at least ``min_rows`` rows."""
    out = {ALL: fit(np.ones(n, dtype=bool))}
    if segment is not None:
        keys = np.where(np.isnan(segment), -1, segment).astype(np.int64)
        for key in np.unique(keys):
            rows = keys == key
            if key >= 0 and rows.sum() >= min_rows:
                out[str(int(key))] = fit(rows)
    return out


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The split-conformal quantile of ``scores``: the ceil((n + 1) * level)-th smallest, so that a new
    exchangeable score falls at or below it with probability at least ``level``."""
    n = len(scores)
    k = min(n, int(np.ceil((n + 1) * level)))
    return float(np.sort(scores)[k - 1])


def cqr_offsets(y: np.ndarray, q_lo: np.ndarray, q_hi: np.ndarray, segment: np.ndarray | None,
                alphas: tuple[float, float], min_rows: int) -> dict[str, tuple[float, float]]:
    """Conformalised quantile regression, each side on its own (asymmetric CQR): on calibration rows with label
    ``y`` and quantile-booster outputs ``q_lo``, ``q_hi`` (log scale), the adjustments (lo, hi) such that
    ``q_lo + lo`` has a share ``alphas[0]`` of labels below it and ``q_hi + hi`` a share ``1 - alphas[1]``
    above it; overall and per segment with ``min_rows`` calibration rows."""
    below, above = q_lo - y, y - q_hi  # positive where the label falls outside that side

    def adj(rows: np.ndarray) -> tuple[float, float]:
        return (-conformal_quantile(below[rows], 1 - alphas[0]), conformal_quantile(above[rows], alphas[1]))

    return per_segment(adj, len(y), segment, min_rows)


def p50_bands(p50_log: np.ndarray, n: int) -> tuple[float, ...]:
    """Edges cutting ``p50_log`` (calibration rows' median predictions) into ``n`` bands of equal counts."""
    return tuple(float(e) for e in np.quantile(p50_log, np.linspace(0, 1, n + 1)[1:-1]))


PRED_SCHEMA = T.StructType([
    T.StructField("listing_id", T.LongType()),
    T.StructField("p10", T.DoubleType()),
    T.StructField("p50", T.DoubleType()),
    T.StructField("p90", T.DoubleType()),
])


def model_inputs(features: Sequence[str], names: Sequence[str] | None = None) -> list[Column]:
    """The ``features`` columns as the predictor reads them, float32 (xgboost reads any input as float32: the same
    predictions from half the bytes), named ``names`` (default: as the features)."""
    return [F.col(c).cast("float").alias(n) for c, n in zip(features, names or features, strict=True)]


def score_frame(df: DataFrame, predictor: PricePredictor, features: Sequence[str] | None = None) -> DataFrame:
    """Distributed scoring: ``listing_id, p10, p50, p90`` for every row of ``df``.

    The predictor travels once per executor as a broadcast; each Arrow batch of float32 features goes through
    ``inplace_predict`` as one matrix (no per-row Python).
    """
    spark = df.sparkSession
    blobs = spark.sparkContext.broadcast(predictor.to_bytes())
    cols = list(features or predictor.features)

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = PricePredictor.from_bytes(blobs.value)
        faults.point("score.predict")
        for pdf in batches:
            p10, p50, p90 = model.predict(model.matrix(pdf))
            yield pd.DataFrame({"listing_id": pdf["listing_id"].to_numpy(), "p10": p10, "p50": p50, "p90": p90})

    return df.select("listing_id", *model_inputs(cols)).mapInPandas(predict, PRED_SCHEMA)
