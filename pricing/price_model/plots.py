"""PNG plots for the MLflow run: feature importance, residuals, calibration and coverage.

matplotlib's Agg backend only (no display, nothing loaded from outside); each function writes one file and
returns its path.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def feature_importance(gain: dict[str, float], path: Path, top: int = 25) -> Path:
    """Horizontal bars of total gain per feature, largest first."""
    items = sorted(gain.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * max(len(items), 4) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#4c72b0")
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance (median model)")
    return _save(fig, path)


def residuals(y_log: np.ndarray, p50_log: np.ndarray, path: Path) -> Path:
    """Residual (log actual - log predicted) against prediction, and the residual histogram."""
    r = y_log - p50_log
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    hb = a.hexbin(np.expm1(p50_log), r, gridsize=50, xscale="log", bins="log", cmap="viridis", mincnt=1)
    fig.colorbar(hb, ax=a, label="listings (log)")
    a.axhline(0, color="k", lw=0.8)
    a.set_xlabel("predicted price (p50)")
    a.set_ylabel("log1p(actual) - log1p(p50)")
    a.set_title("Residuals against prediction")
    b.hist(r, bins=80, color="#4c72b0")
    b.axvline(0, color="k", lw=0.8)
    b.set_xlabel("residual (log scale)")
    b.set_title(f"Residuals: mean {r.mean():+.3f}, sd {r.std():.3f}")
    return _save(fig, path)


def calibration(y_log: np.ndarray, p10_log: np.ndarray, p50_log: np.ndarray, p90_log: np.ndarray, path: Path,
                bins: int = 10) -> Path:
    """Per decile of the prediction: mean actual against mean predicted, and 80% interval coverage."""
    edges = np.unique(np.quantile(p50_log, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, p50_log, side="right") - 1, 0, len(edges) - 2)
    df = pd.DataFrame({"b": idx, "y": y_log, "p": p50_log,
                       "cov": (y_log >= p10_log) & (y_log <= p90_log)}).groupby("b").mean()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    lim = [min(df["p"].min(), df["y"].min()), max(df["p"].max(), df["y"].max())]
    a.plot(np.expm1(lim), np.expm1(lim), "k--", lw=0.8, label="perfect")
    a.plot(np.expm1(df["p"]), np.expm1(df["y"]), "o-", label="model")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("predicted (geometric mean per decile)")
    a.set_ylabel("actual (geometric mean per decile)")
    a.set_title("Calibration of p50")
    a.legend()
    b.bar(range(len(df)), df["cov"], color="#55a868")
    b.axhline(0.8, color="k", ls="--", lw=0.8, label="target 0.80")
    b.set_ylim(0, 1)
    b.set_xlabel("decile of predicted price")
    b.set_ylabel("share inside [p10, p90]")
    b.set_title("80% interval coverage by decile")
    b.legend()
    return _save(fig, path)


def segment_rmsle(seg: pd.DataFrame, path: Path) -> Path:
    """RMSLE per segment value, one panel per dimension (the per-segment table, drawn)."""
    dims = list(dict.fromkeys(seg["segment"]))
    fig, axes = plt.subplots(len(dims), 1, figsize=(8, 2.2 * len(dims)))
    for ax, dim in zip(np.atleast_1d(axes), dims, strict=True):
        d = seg[seg["segment"] == dim].sort_values("rmsle")
        if len(d) > 20:
            d = d.nlargest(20, "rows").sort_values("rmsle")
        ax.barh(d["value"], d["rmsle"], color="#8172b2")
        ax.set_title(f"RMSLE by {dim}" + (" (20 largest)" if len(seg[seg['segment'] == dim]) > 20 else ""))
        ax.tick_params(axis="y", labelsize=7)
    return _save(fig, path)


def distribution(prices: np.ndarray, path: Path, title: str) -> Path:
    """Histogram of prices on a log axis."""
    fig, ax = plt.subplots(figsize=(8, 4))
    p = prices[np.isfinite(prices) & (prices > 0)]
    if len(p):
        ax.hist(p, bins=np.geomspace(p.min(), p.max() * 1.001, 60).tolist(), color="#4c72b0")
    ax.set_xscale("log")
    ax.set_xlabel("suggested price")
    ax.set_ylabel("listings")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
