"""The registered price model, self-contained: :class:`PricePredictor` (the median booster, the p10/p90 boosters
or offsets) and :class:`PriceModel`, the MLflow pyfunc that serves it.

MLflow logs this file as the model's code (models from code, ``mlflow.pyfunc.log_model(python_model=<this
file>)``) and runs it on its own where the model is loaded: Model Serving, ``spark_udf`` in a virtualenv, any
Python with the model's pip requirements (xgboost, mlflow, pandas, numpy), our wheel or not.  So it imports
nothing of ``pricing``, and nothing of Spark; ``pricing.price_model.predictor`` re-exports it for the package
and adds the rest (the conformal offsets of training, distributed scoring).  See that module for the two
interval methods.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow.models
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.pyfunc import PythonModel, PythonModelContext

ALL = "*"
"""Offsets key used for every row whose segment has no offsets of its own."""
P50_BAND = "p50_band"
"""``segment_feature`` naming no feature but the band of the row's own median prediction (``Intervals.bands``)."""


@dataclass(frozen=True)
class Intervals:
    """How p10 and p90 are made.  ``offsets``: segment value (as text) -> (lo, hi) on the log scale:

    * ``conformal``: p10 = p50 + lo, p90 = p50 + hi (one width per segment);
    * ``cqr`` (conformalised quantile regression): p10 = q10(x) + lo, p90 = q90(x) + hi, where q10 and q90 are
      the quantile boosters' outputs, so the width follows each listing's own uncertainty;
    * ``quantile``: the quantile boosters' outputs as they are (offsets unused).

    ``segment_feature`` selects a row's offsets: a model feature's value, or :data:`P50_BAND`, the index of the
    band of ``bands`` (edges on the log1p scale) that the row's p50 falls in."""

    method: str = "conformal"
    segment_feature: str | None = None
    offsets: Mapping[str, tuple[float, float]] = field(default_factory=lambda: {ALL: (0.0, 0.0)})
    bands: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in ("conformal", "cqr", "quantile"):
            raise ValueError(f"unknown interval method {self.method!r}")
        if ALL not in self.offsets:
            raise ValueError("interval offsets need a global entry '*'")
        if self.method != "conformal":
            return  # cqr adjustments may narrow or widen either side; the output is sorted around the median
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
                "offsets": {k: list(v) for k, v in self.offsets.items()}, "bands": list(self.bands)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Intervals:
        return cls(d["method"], d.get("segment_feature"), {k: (float(v[0]), float(v[1])) for k, v in d["offsets"].items()},
                   tuple(float(b) for b in d.get("bands", ())))

    def segments(self, X: np.ndarray, features: tuple[str, ...], mid: np.ndarray) -> np.ndarray | None:
        """Each row's segment key (float, NaN for none) under ``segment_feature``."""
        if not self.segment_feature:
            return None
        if self.segment_feature == P50_BAND:
            return np.digitize(mid, np.asarray(self.bands)).astype(np.float64)
        return X[:, features.index(self.segment_feature)].astype(np.float64)



@dataclass
class PricePredictor:
    """Median booster (+ p10/p90 boosters for ``quantile``) and the interval rule, on named features."""

    features: tuple[str, ...]
    median: xgb.Booster
    intervals: Intervals
    lower: xgb.Booster | None = None
    upper: xgb.Booster | None = None

    def __post_init__(self) -> None:
        if self.intervals.method in ("quantile", "cqr") and (self.lower is None or self.upper is None):
            raise ValueError(f"{self.intervals.method} intervals need the p10 and p90 boosters")
        if self.intervals.segment_feature not in (None, P50_BAND, *self.features):
            raise ValueError(f"interval segment {self.intervals.segment_feature!r} is not a model feature")

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"model input lacks feature columns {missing}")
        return frame[list(self.features)].to_numpy(dtype=np.float32, na_value=np.nan)

    def predict_log(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p10, p50, p90) on the log1p scale, never crossing."""
        mid = np.asarray(self.median.inplace_predict(X), dtype=np.float64)
        d_lo, d_hi = self.intervals.lookup(self.intervals.segments(X, self.features, mid), len(mid))
        if self.intervals.method == "conformal":
            return mid + d_lo, mid, mid + d_hi
        assert self.lower is not None and self.upper is not None
        lo = np.asarray(self.lower.inplace_predict(X), dtype=np.float64)
        hi = np.asarray(self.upper.inplace_predict(X), dtype=np.float64)
        if self.intervals.method == "cqr":
            lo, hi = lo + d_lo, hi + d_hi
        return np.minimum(np.minimum(lo, hi), mid), mid, np.maximum(np.maximum(lo, hi), mid)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p10, p50, p90) in currency units; ``expm1`` is monotone, so the order survives."""
        return tuple(np.maximum(np.expm1(a), 0.0) for a in self.predict_log(X))

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
        """Write one ``<part>.json`` file per part; returns MLflow ``artifacts`` (name -> path)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, blob in self.to_bytes().items():
            (folder / f"{name}.json").write_bytes(blob)
            paths[name] = str(folder / f"{name}.json")
        return paths

    @classmethod
    def load(cls, artifacts: Mapping[str, str]) -> PricePredictor:
        """The predictor :meth:`save` wrote (MLflow ``artifacts``: part name -> path)."""
        return cls.from_bytes({name: Path(path).read_bytes() for name, path in artifacts.items()})


class PriceModel(PythonModel):
    """The registered pyfunc: feature columns in, ``p10, p50, p90`` (currency units) out."""

    predictor: PricePredictor

    def load_context(self, context: PythonModelContext) -> None:
        self.predictor = PricePredictor.load(context.artifacts)

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        p10, p50, p90 = self.predictor.predict(self.predictor.matrix(model_input))
        return pd.DataFrame({"p10": p10, "p50": p50, "p90": p90})


# Run as the logged model's code, the file has no package (MLflow runs it as a module of its own): it sets the
# model MLflow serves.  Imported as ``pricing.price_model.pyfunc`` it only defines.
if not __package__:
    mlflow.models.set_model(PriceModel())
