"""Pure evaluation metrics on log1p-scale predictions (numpy in, floats out)."""

from __future__ import annotations

import numpy as np


def rmsle(y_log: np.ndarray, p_log: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y_log - p_log) ** 2)))


def pinball(y: np.ndarray, q: np.ndarray, alpha: float) -> float:
    d = y - q
    return float(np.mean(np.maximum(alpha * d, (alpha - 1) * d)))


def price_metrics(y_log: np.ndarray, p10_log: np.ndarray, p50_log: np.ndarray, p90_log: np.ndarray,
                  alphas: tuple[float, float, float] = (0.1, 0.5, 0.9)) -> dict[str, float]:
    """RMSLE, MAE, MAPE (price scale), pinball per quantile (log scale), 80% coverage and mean width."""
    y, p50 = np.expm1(y_log), np.expm1(p50_log)
    out = {
        "rmsle": rmsle(y_log, p50_log),
        "mae": float(np.mean(np.abs(y - p50))),
        "mape": float(np.mean(np.abs(y - p50) / np.maximum(y, 1e-9))),
        "coverage_80": float(np.mean((y_log >= p10_log) & (y_log <= p90_log))),
        "width_80": float(np.mean(np.expm1(p90_log) - np.expm1(p10_log))),
        "rows": float(len(y_log)),
    }
    for a, q in zip(alphas, (p10_log, p50_log, p90_log), strict=True):
        out[f"pinball_p{round(a * 100):02d}"] = pinball(y_log, q, a)
    return out
