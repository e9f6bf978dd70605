"""The registered demand model, self-contained: :class:`DemandPredictor` (the value boosters, the sale classifier,
the per-segment price response and the survival layer) and :class:`DemandModel`, the MLflow pyfunc that serves
it.  ``pricing.demand_model.estimator`` explains the model.

MLflow logs this file as the model's code (models from code, ``mlflow.pyfunc.log_model(python_model=<this
file>)``) and runs it on its own where the model is loaded: Model Serving, ``spark_udf`` in a virtualenv, any
Python with the model's pip requirements (xgboost, mlflow, pandas, numpy), our wheel or not.  So it imports
nothing of ``pricing``, and nothing of Spark; ``pricing.demand_model.estimator`` re-exports it for the package
and adds the rest (estimation, distributed recommendation).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.models
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.pyfunc import PythonModel, PythonModelContext

ALL = "*"
"""Elasticity key used for every segment without an estimate of its own."""
VALUE_COLS = ("log_value", "log_price_to_value")
"""Classifier inputs appended to the listing features: log predicted value, log(own price / value)."""
P_EPS = 1e-6
"""Sale probabilities are kept inside [P_EPS, 1 - P_EPS] before taking logs."""


# ---- the price response ---------------------------------------------------------------------------------------
def cumulative_hazard(p: np.ndarray) -> np.ndarray:
    """``-log(1 - p)``: the cumulative sale hazard over the horizon that gives sale probability ``p``."""
    return -np.log1p(-np.clip(np.asarray(p, dtype=np.float64), P_EPS, 1.0 - P_EPS))


def price_response(p0: np.ndarray, theta: np.ndarray, log_change: np.ndarray, k: float | None = None) -> np.ndarray:
    """Sale probability after moving the price by ``log_change`` (log scale) from where it is ``p0``, broadcast;
    non-increasing in ``log_change`` for theta >= 0.  Each item's cumulative hazard scales by
    ``exp(-theta * log_change)``.  ``k`` None: the items alike, ``1 - (1 - p0) ** exp(-theta * log_change)``;
    else items differ by a gamma(k) frailty, so ``p0`` is a mixture and the mean hazard ``L`` (``frailty_mean``)
    scales: ``1 - (1 + L exp(-theta * log_change) / k) ** -k``.  The mixture's curve is flatter than one
    item's, so the same data give a larger (per-item) theta under a frailty."""
    scale = np.exp(-np.asarray(theta) * np.asarray(log_change))
    if k is None:
        return -np.expm1(-cumulative_hazard(p0) * scale)
    return -np.expm1(-k * np.log1p(frailty_mean(p0, k) * scale / k))


# ---- survival: the exposure an unsold listing has had ---------------------------------------------------------
def frailty_mean(p: np.ndarray, k: float) -> np.ndarray:
    """The mean horizon cumulative hazard ``L`` whose gamma(k) mixture sells with probability ``p``:
    ``1 - (1 + L / k) ** -k = p``."""
    q = 1.0 - np.clip(np.asarray(p, dtype=np.float64), P_EPS, 1.0 - P_EPS)
    return k * np.expm1(-np.log(q) / k)


def survival_update(p0: np.ndarray, exposure: np.ndarray, k: float | None) -> np.ndarray:
    """Sale probability within the horizon of a relisting, for an item that stayed unsold through ``exposure``
    (its cumulative hazard so far, in units of its mean horizon hazard): ``1 - (1 + L / (k + L e)) ** -k``.
    Equal to ``p0`` at zero exposure or without frailty (``k`` None); falls as the exposure grows."""
    if k is None:
        return np.asarray(p0, dtype=np.float64)
    lam = frailty_mean(p0, k)
    return -np.expm1(-k * np.log1p(lam / (k + lam * np.asarray(exposure, dtype=np.float64))))


def shape_at(days: np.ndarray, knots: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """``g(days)``: linear between the knots, flat after the last (no evidence of sales that late)."""
    return np.interp(np.asarray(days, dtype=np.float64), np.asarray(knots), np.asarray(values))


# ---- the predictor ------------------------------------------------------------------------------------------------
@dataclass
class DemandPredictor:
    """Value boosters, the sale classifier and the per-segment price response, on named listing features."""

    features: tuple[str, ...]
    """Listing features the value boosters and the classifier read (``VALUE_COLS`` are appended for the latter)."""
    classifier: xgb.Booster
    value_models: tuple[xgb.Booster, xgb.Booster]
    """``value_models[k]`` was trained on fold ``k``: a row of fold ``j`` is valued by ``value_models[1 - j]``."""
    elasticity: Mapping[str, float]
    """segment -> theta (``ALL``: overall, for segments without their own)."""
    horizon_days: int
    realisation: float = 1.0
    """E[sold price / listed price | sold within the horizon] (price drops, accepted offers): revenue per sale."""
    identification: str = "exploration"
    segment_cols: tuple[str, ...] = ("department", "category", "subcategory")
    """The columns whose values, joined by '/', are the ``elasticity`` keys (``segment_key``)."""
    frailty_k: float | None = None
    """Gamma frailty shape (None: no survival update)."""
    exposure_knots: tuple[float, ...] = ()
    exposure_values: tuple[float, ...] = ()
    """The cumulative-hazard shape ``g`` (``g(horizon) = 1``) at ``exposure_knots`` days since listing."""
    response: str = "proportional"
    """How theta moves the sale probability (``price_response``): ``proportional`` (items alike) or ``frailty``
    (the mixture over the gamma frailty ``frailty_k``; theta is then one item's elasticity)."""
    realisation_values: tuple[float, ...] = ()
    """E[sold price / listed price] of sales between consecutive ``exposure_knots`` (later sales come after price
    drops); empty: ``realisation`` throughout."""

    def __post_init__(self) -> None:
        if ALL not in self.elasticity:
            raise ValueError("the elasticity map needs an overall entry '*'")
        bad = {k: v for k, v in self.elasticity.items() if not (np.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"elasticities must be finite and >= 0 (demand falls with price), got {bad}")
        if self.identification not in ("exploration", "naive"):
            raise ValueError(f"unknown identification {self.identification!r}")
        if self.response not in ("proportional", "frailty") or (self.response == "frailty" and self.frailty_k is None):
            raise ValueError(f"response {self.response!r} needs to be proportional, or frailty with a frailty_k")

    @property
    def classifier_features(self) -> tuple[str, ...]:
        return (*self.features, *VALUE_COLS)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in (*self.features, "value_fold") if c not in frame.columns]
        if missing:
            raise ValueError(f"demand model input lacks columns {missing}")
        return frame[list(self.features)].to_numpy(dtype=np.float32, na_value=np.nan)

    def log_value(self, X: np.ndarray, fold: np.ndarray) -> np.ndarray:
        """Log predicted value of each row, by the value booster of the other fold."""
        out = np.empty(len(X))
        fold = np.asarray(fold)
        for k in (0, 1):
            rows = fold != k
            if rows.any():
                pred = np.asarray(self.value_models[k].inplace_predict(X[rows]), dtype=np.float64)
                out[rows] = np.log(np.maximum(np.expm1(pred), 0.01))
        return out

    def classify(self, X: np.ndarray, log_value: np.ndarray, log_price: np.ndarray) -> np.ndarray:
        """The classifier's sale probability with the price at ``log_price`` (one per row)."""
        Z = np.column_stack([X, log_value.astype(np.float32), (log_price - log_value).astype(np.float32)])
        return np.asarray(self.classifier.inplace_predict(Z), dtype=np.float64)

    def theta(self, segments: np.ndarray | pd.Series) -> np.ndarray:
        """Each row's theta: its segment's, else the overall one."""
        return pd.Series(np.asarray(segments, dtype=object)).map(dict(self.elasticity)).fillna(
            self.elasticity[ALL]).to_numpy(dtype=np.float64)

    def curves(self, frame: pd.DataFrame, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sale probability at each of ``prices`` (n x K) for each row: (served model, naive model).

        The served model is the classifier at the seller's own price moved by the price response
        (``identification: exploration``), or the classifier's own price slope (``naive``)."""
        X = self.matrix(frame)
        lv = self.log_value(X, frame["value_fold"].to_numpy())
        log_p = np.log(np.asarray(prices, dtype=np.float64))
        naive = self.naive(frame, X, lv, log_p)
        if self.identification == "naive":
            return naive, naive
        return self.explored(frame, X, lv, log_p), naive

    def naive(self, frame: pd.DataFrame, X: np.ndarray, lv: np.ndarray, log_p: np.ndarray) -> np.ndarray:
        """The classifier's own price slope, with the same survival update (exposure valued at the own price)."""
        curve = np.column_stack([self.classify(X, lv, log_p[:, k]) for k in range(log_p.shape[1])])
        if self.frailty_k is None:
            return curve
        own = np.log(frame["own_price"].to_numpy(dtype=np.float64))
        k = self.frailty_k
        # The naive view has no experiment: exposure is time at the own price, whatever the nudge.
        exposed = frailty_mean(self.classify(X, lv, own), k) * self.exposure(frame, np.zeros(len(frame)))
        return -np.expm1(-k * np.log1p(frailty_mean(curve, k) / (k + exposed[:, None])))

    def explored(self, frame: pd.DataFrame, X: np.ndarray, lv: np.ndarray, log_p: np.ndarray) -> np.ndarray:
        """The exploration-identified curve: P0 at the own price, moved by the segment's theta."""
        own = np.log(frame["own_price"].to_numpy(dtype=np.float64))
        theta = self.theta(frame["segment"])
        p0 = survival_update(self.classify(X, lv, own), self.exposure(frame, theta), self.frailty_k)
        return price_response(p0[:, None], theta[:, None], log_p - own[:, None], self.response_k)

    @property
    def response_k(self) -> float | None:
        """The frailty shape the price response mixes over (None: proportional)."""
        return self.frailty_k if self.response == "frailty" else None

    def exposure(self, frame: pd.DataFrame, theta: np.ndarray) -> np.ndarray:
        """Each row's cumulative hazard so far in units of its mean horizon hazard at the own price: ``g(age)``,
        scaled by ``(listed price / own price) ** -theta`` (an exploration nudge); 0 without ``age_days``."""
        if self.frailty_k is None or "age_days" not in frame.columns or not self.exposure_knots:
            return np.zeros(len(frame))
        g = shape_at(frame["age_days"].to_numpy(dtype=np.float64, na_value=0.0), self.exposure_knots,
                     self.exposure_values)
        if "listed_price" in frame.columns:
            ratio = frame["listed_price"].to_numpy(dtype=np.float64) / frame["own_price"].to_numpy(dtype=np.float64)
            g = g * ratio ** -theta
        return g

    def realisation_at(self, days: np.ndarray) -> np.ndarray:
        """E[sold price / listed price] of a sale in the knot interval holding each of ``days``."""
        days = np.asarray(days, dtype=np.float64)
        if not self.realisation_values:
            return np.full(days.shape, self.realisation)
        i = np.searchsorted(np.asarray(self.exposure_knots), days, side="right") - 1
        return np.asarray(self.realisation_values)[np.clip(i, 0, len(self.realisation_values) - 1)]

    def sale_value(self, prices: np.ndarray, p_h: np.ndarray, horizon_days: int,
                   after: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Expected revenue at each of ``prices`` (n x K) when sales within ``horizon_days`` of (re)listing count
        in full and later ones ``after`` times, and the sale probability within ``horizon_days``.

        ``p_h`` is the served sale probability within the model's own horizon at those prices (``p_sale``).  At
        that horizon with ``after`` 0 this is ``price x p_h x realisation``.  Otherwise the sale times come from
        the survival layer: an item's cumulative hazard grows along the shape ``g`` (the marketplace's drops and
        end of sales, learned from sale times) and, with frailty, ``S(t) = (1 + L g(t) / k) ** -k`` where ``L``
        gives ``S(H) = 1 - p_h``; a sale between two knots closes at that interval's realisation."""
        prices, p_h = np.asarray(prices, dtype=np.float64), np.asarray(p_h, dtype=np.float64)
        if horizon_days == self.horizon_days and after == 0.0:
            return prices * p_h * self.realisation, p_h
        if not self.exposure_knots:
            raise ValueError(f"valuing sales over {horizon_days} days (or after the horizon) needs the survival "
                             f"layer, which this demand model lacks (fitted without a price experiment); "
                             f"use the revenue objective at its own horizon of {self.horizon_days} days")
        knots = np.asarray(self.exposure_knots, dtype=np.float64)
        times = np.union1d(knots, [float(horizon_days)])
        g = shape_at(times, self.exposure_knots, self.exposure_values)
        rho = self.realisation_at(times[:-1])
        k = self.frailty_k
        lam = frailty_mean(p_h, k) if k is not None else cumulative_hazard(p_h)
        value = np.zeros_like(p_h)
        sold_h = np.zeros_like(p_h)
        prev = np.ones_like(p_h)
        for j in range(1, len(times)):
            surv = np.exp(-k * np.log1p(lam * g[j] / k)) if k is not None else np.exp(-lam * g[j])
            value += (prev - surv) * rho[j - 1] * (1.0 if times[j] <= horizon_days else after)
            if times[j] == horizon_days:
                sold_h = 1.0 - surv
            prev = surv
        return prices * value, sold_h

    def p_sale(self, frame: pd.DataFrame, prices: np.ndarray) -> np.ndarray:
        """The served model's sale probability at ``prices`` (n x K)."""
        X = self.matrix(frame)
        lv = self.log_value(X, frame["value_fold"].to_numpy())
        log_p = np.log(np.asarray(prices, dtype=np.float64))
        if self.identification == "naive":
            return self.naive(frame, X, lv, log_p)
        return self.explored(frame, X, lv, log_p)

    # ---- serialisation (Spark broadcasts, MLflow artifacts) -------------------------------------------------
    def to_bytes(self) -> dict[str, bytes]:
        meta = {"features": list(self.features), "elasticity": dict(self.elasticity),
                "horizon_days": self.horizon_days, "realisation": self.realisation,
                "identification": self.identification, "segment_cols": list(self.segment_cols),
                "frailty_k": self.frailty_k, "exposure_knots": list(self.exposure_knots),
                "exposure_values": list(self.exposure_values),
                "realisation_values": list(self.realisation_values), "response": self.response}
        return {"meta": json.dumps(meta).encode(), "classifier": bytes(self.classifier.save_raw("json")),
                "value0": bytes(self.value_models[0].save_raw("json")),
                "value1": bytes(self.value_models[1].save_raw("json"))}

    @classmethod
    def from_bytes(cls, blobs: Mapping[str, bytes]) -> DemandPredictor:
        meta = json.loads(blobs["meta"])

        def booster(name: str) -> xgb.Booster:
            b = xgb.Booster()
            b.load_model(bytearray(blobs[name]))
            return b

        return cls(tuple(meta["features"]), booster("classifier"), (booster("value0"), booster("value1")),
                   {k: float(v) for k, v in meta["elasticity"].items()}, int(meta["horizon_days"]),
                   float(meta["realisation"]), meta["identification"], tuple(meta["segment_cols"]),
                   meta.get("frailty_k"), tuple(meta.get("exposure_knots", ())),
                   tuple(meta.get("exposure_values", ())), response=meta.get("response", "proportional"),
                   realisation_values=tuple(meta.get("realisation_values", ())))

    def save(self, folder: Path) -> dict[str, str]:
        """Write one ``<part>.json`` file per part; returns MLflow ``artifacts`` (name -> path)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, blob in self.to_bytes().items():
            (folder / f"{name}.json").write_bytes(blob)
            paths[name] = str(folder / f"{name}.json")
        return paths

    @classmethod
    def load(cls, artifacts: Mapping[str, str]) -> DemandPredictor:
        """The predictor :meth:`save` wrote (MLflow ``artifacts``: part name -> path)."""
        return cls.from_bytes({name: Path(path).read_bytes() for name, path in artifacts.items()})


class DemandModel(PythonModel):
    """The registered pyfunc: listing features, ``value_fold``, ``own_price``, ``segment`` and a candidate
    ``price`` in; ``p_sale`` (sale probability within the horizon at that price) out."""

    predictor: DemandPredictor

    def load_context(self, context: PythonModelContext) -> None:
        self.predictor = DemandPredictor.load(context.artifacts)

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        prices = model_input["price"].to_numpy(dtype=np.float64)[:, None]
        return pd.DataFrame({"p_sale": self.predictor.p_sale(model_input, prices)[:, 0]})


# Run as the logged model's code, the file has no package (MLflow runs it as a module of its own): it sets the
# model MLflow serves.  Imported as ``pricing.demand_model.pyfunc`` it only defines.
if not __package__:
    mlflow.models.set_model(DemandModel())
