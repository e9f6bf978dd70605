"""The price model: an xgboost median model on log1p(price) plus a p10-p90 range.

Two ways to make the range, chosen by ``train.intervals`` (measured side by side in
``bench/intervals.py``):

* ``conformal`` (default): split-conformal offsets around the median, the 10th and 90th percentiles of the
  validation weeks' residuals, per segment (``train.interval_segment``, e.g. the category) where the
  segment has enough validation rows, else over all rows.  One model, cheap, calibrated by construction.
* ``quantile``: two more boosters trained with ``reg:quantileerror`` for p10 and p90.

Either way ``p10 <= p50 <= p90`` holds for every row (conformal offsets straddle 0; quantile outputs are
sorted), so the output never crosses.

:class:`PricePredictor` is the one object that predicts; :class:`PriceModel` is the MLflow pyfunc the
registry serves (it wraps a predictor), and :func:`score_frame` applies a predictor to a Spark frame in an
Arrow ``mapInPandas`` (no per-row Python).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import xgboost as xgb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.platform import faults
from pricing.platform.blobs import read_blobs, write_blobs

ALL = "*"
"""Offsets key used for every row whose segment has no offsets of its own."""


@dataclass(frozen=True)
class Intervals:
    """How p10 and p90 are made.  ``offsets``: segment value (as text) -> (lo, hi) on the log scale, for
    ``conformal``; p10 = p50 + lo, p90 = p50 + hi."""

    method: str = "conformal"
    segment_feature: str | None = None
    offsets: Mapping[str, tuple[float, float]] = field(default_factory=lambda: {ALL: (0.0, 0.0)})

    def __post_init__(self) -> None:
        if self.method not in ("conformal", "quantile"):
            raise ValueError(f"unknown interval method {self.method!r}")
        if ALL not in self.offsets:
            raise ValueError("interval offsets need a global entry '*'")
        for key, (lo, hi) in self.offsets.items():
            if not lo <= 0 <= hi:
                raise ValueError(f"interval offsets must straddle 0, got {key}: lo={lo}, hi={hi}")

    def lookup(self, segment: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-row (lo, hi) offsets."""
        g_lo, g_hi = self.offsets[ALL]
        lo, hi = np.full(n, g_lo), np.full(n, g_hi)
        if segment is None or len(self.offsets) == 1:
            return lo, hi
        keys = np.where(np.isnan(segment), -1, segment).astype(np.int64)
        for key, (s_lo, s_hi) in self.offsets.items():
            if key != ALL:
                hit = keys == int(key)
                lo[hit], hi[hit] = s_lo, s_hi
        return lo, hi

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "segment_feature": self.segment_feature,
                "offsets": {k: list(v) for k, v in self.offsets.items()}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Intervals:
        return cls(d["method"], d.get("segment_feature"), {k: (float(v[0]), float(v[1])) for k, v in d["offsets"].items()})


def conformal_offsets(resid: np.ndarray, segment: np.ndarray | None, alphas: tuple[float, float],
                      min_rows: int) -> dict[str, tuple[float, float]]:
    """Split-conformal offsets: residual quantiles (log scale) overall and per segment with ``min_rows``."""
    def q(r: np.ndarray) -> tuple[float, float]:
        return min(0.0, float(np.quantile(r, alphas[0]))), max(0.0, float(np.quantile(r, alphas[1])))

    out = {ALL: q(resid)}
    if segment is not None:
        keys = np.where(np.isnan(segment), -1, segment).astype(np.int64)
        for key in np.unique(keys):
            rows = keys == key
            if key >= 0 and rows.sum() >= min_rows:
                out[str(int(key))] = q(resid[rows])
    return out


@dataclass
class PricePredictor:
    """Median booster (+ p10/p90 boosters for ``quantile``) and the interval rule, on named features."""

    features: tuple[str, ...]
    median: xgb.Booster
    intervals: Intervals
    lower: xgb.Booster | None = None
    upper: xgb.Booster | None = None

    def __post_init__(self) -> None:
        if self.intervals.method == "quantile" and (self.lower is None or self.upper is None):
            raise ValueError("quantile intervals need the p10 and p90 boosters")
        if self.intervals.segment_feature and self.intervals.segment_feature not in self.features:
            raise ValueError(f"interval segment {self.intervals.segment_feature!r} is not a model feature")

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"model input lacks feature columns {missing}")
        return frame[list(self.features)].to_numpy(dtype=np.float32, na_value=np.nan)

    def predict_log(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p10, p50, p90) on the log1p scale, never crossing."""
        mid = np.asarray(self.median.inplace_predict(X), dtype=np.float64)
        if self.intervals.method == "quantile":
            assert self.lower is not None and self.upper is not None
            lo = np.asarray(self.lower.inplace_predict(X), dtype=np.float64)
            hi = np.asarray(self.upper.inplace_predict(X), dtype=np.float64)
            return np.minimum(np.minimum(lo, hi), mid), mid, np.maximum(np.maximum(lo, hi), mid)
        seg = None
        if self.intervals.segment_feature:
            seg = X[:, self.features.index(self.intervals.segment_feature)].astype(np.float64)
        d_lo, d_hi = self.intervals.lookup(seg, len(mid))
        return mid + d_lo, mid, mid + d_hi

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p10, p50, p90) in currency units; ``expm1`` is monotone, so the order survives."""
        return tuple(np.maximum(np.expm1(a), 0.0) for a in self.predict_log(X))  # type: ignore[return-value]

    # ---- serialisation: raw bytes for Spark broadcasts, files for MLflow artifacts ---------------------
    def to_bytes(self) -> dict[str, bytes]:
        out = {"meta": json.dumps({"features": list(self.features), "intervals": self.intervals.as_json()}).encode(),
               "median": bytes(self.median.save_raw("json"))}
        for name in ("lower", "upper"):
            b = getattr(self, name)
            if b is not None:
                out[name] = bytes(b.save_raw("json"))
        return out

    @classmethod
    def from_bytes(cls, blobs: Mapping[str, bytes]) -> PricePredictor:
        meta = json.loads(blobs["meta"])

        def booster(name: str) -> xgb.Booster | None:
            if name not in blobs:
                return None
            b = xgb.Booster()
            b.load_model(bytearray(blobs[name]))
            return b

        median = booster("median")
        assert median is not None
        return cls(tuple(meta["features"]), median, Intervals.from_json(meta["intervals"]),
                   booster("lower"), booster("upper"))

    def save(self, folder: Path) -> dict[str, str]:
        """Write one file per part; returns MLflow ``artifacts`` (name -> path)."""
        return write_blobs(self.to_bytes(), folder)

    @classmethod
    def load(cls, artifacts: Mapping[str, str]) -> PricePredictor:
        return cls.from_bytes(read_blobs(artifacts))


class PriceModel(mlflow.pyfunc.PythonModel):
    """The registered pyfunc: feature columns in, ``p10, p50, p90`` (currency units) out."""

    predictor: PricePredictor

    def load_context(self, context) -> None:  # type: ignore[no-untyped-def]
        self.predictor = PricePredictor.load(context.artifacts)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # type: ignore[no-untyped-def]
        p10, p50, p90 = self.predictor.predict(self.predictor.matrix(model_input))
        return pd.DataFrame({"p10": p10, "p50": p50, "p90": p90})


PRED_SCHEMA = T.StructType([
    T.StructField("listing_id", T.LongType()),
    T.StructField("p10", T.DoubleType()),
    T.StructField("p50", T.DoubleType()),
    T.StructField("p90", T.DoubleType()),
])


def score_frame(df: DataFrame, predictor: PricePredictor, features: Sequence[str] | None = None) -> DataFrame:
    """Distributed scoring: ``listing_id, p10, p50, p90`` for every row of ``df``.

    The predictor travels once per executor as a broadcast; each Arrow batch goes through
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

    return df.select("listing_id", *[F.col(c).cast("double") for c in cols]).mapInPandas(predict, PRED_SCHEMA)
