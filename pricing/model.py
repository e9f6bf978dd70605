"""The price model: an xgboost median model on log1p(price) plus split-conformal interval offsets.

``PriceModel`` is the MLflow pyfunc that the registry serves: given feature columns it returns
``p10, p50, p90`` in currency units, non-crossing by construction.  Scoring unwraps the booster and
applies it in an Arrow ``mapInPandas`` (see ``score_frame``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import mlflow.pyfunc
import numpy as np
import pandas as pd
import xgboost as xgb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T


@dataclass(frozen=True)
class Intervals:
    """Residual quantiles (log scale) from the validation weeks: p10 = p50 + lo, p90 = p50 + hi."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not self.lo <= 0 <= self.hi:
            raise ValueError(f"interval offsets must straddle 0, got lo={self.lo}, hi={self.hi}")


def predict_log(booster: xgb.Booster, X: np.ndarray) -> np.ndarray:
    return np.asarray(booster.inplace_predict(X), dtype=np.float64)


def quantiles_from_log(p50_log: np.ndarray, iv: Intervals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back to prices; p10 <= p50 <= p90 always holds because lo <= 0 <= hi and expm1 is monotone."""
    p50 = np.expm1(p50_log)
    return np.maximum(np.expm1(p50_log + iv.lo), 0.0), np.maximum(p50, 0.0), np.maximum(np.expm1(p50_log + iv.hi), 0.0)


class PriceModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: artifacts ``booster`` (xgboost JSON) and ``meta`` (features, interval offsets)."""

    def load_context(self, context) -> None:  # type: ignore[no-untyped-def]
        self.booster = xgb.Booster()
        self.booster.load_model(context.artifacts["booster"])
        with open(context.artifacts["meta"]) as fh:
            meta = json.load(fh)
        self.features: list[str] = meta["features"]
        self.intervals = Intervals(meta["interval_lo"], meta["interval_hi"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # type: ignore[no-untyped-def]
        X = model_input[self.features].to_numpy(dtype=np.float32, na_value=np.nan)
        p10, p50, p90 = quantiles_from_log(predict_log(self.booster, X), self.intervals)
        return pd.DataFrame({"p10": p10, "p50": p50, "p90": p90})


PRED_SCHEMA = T.StructType([
    T.StructField("listing_id", T.LongType()),
    T.StructField("p10", T.DoubleType()),
    T.StructField("p50", T.DoubleType()),
    T.StructField("p90", T.DoubleType()),
])


def score_frame(df: DataFrame, booster_raw: bytes, features: Sequence[str], iv: Intervals) -> DataFrame:
    """Distributed scoring: each Arrow batch goes through ``booster.inplace_predict`` (no per-row Python)."""
    spark = df.sparkSession
    raw = spark.sparkContext.broadcast(bytearray(booster_raw))
    cols = list(features)

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        booster = xgb.Booster()
        booster.load_model(raw.value)
        for pdf in batches:
            X = pdf[cols].to_numpy(dtype=np.float32, na_value=np.nan)
            p10, p50, p90 = quantiles_from_log(predict_log(booster, X), iv)
            yield pd.DataFrame({"listing_id": pdf["listing_id"].to_numpy(), "p10": p10, "p50": p50, "p90": p90})

    return df.select("listing_id", *[F.col(c).cast("double") for c in cols]).mapInPandas(predict, PRED_SCHEMA)
