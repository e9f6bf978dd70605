"""PNG plots for the demand model's and the recommendation's MLflow runs (matplotlib Agg, one file each)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pricing.price_model.plots import _save  # noqa: E402


def elasticities(table: pd.DataFrame, path: Path) -> Path:
    """Per segment: the served (randomised experiment), the other encouragement-design estimates (control function,
    intent to treat, adopters as treated) and the naive elasticities, against the truth when known."""
    fig, ax = plt.subplots(figsize=(6.5, 5))
    x_col = "true_elasticity" if "true_elasticity" in table else "exploration"
    size = 8 + 60 * table["rows"] / max(float(table["rows"].max()), 1.0)
    series = (("exploration", "#4c72b0", "randomised experiment (served)"),
              ("control_function", "#8172b3", "control function"), ("intent_to_treat", "#937860", "intent to treat"),
              ("as_treated", "#55a868", "adopters as treated"), ("naive", "#dd8452", "naive fit"))
    for col, colour, label in series:
        if col in table and col != x_col:
            ax.scatter(table[x_col], table[col], s=size, alpha=0.6, color=colour, label=label)
    lim = [0.0, float(np.nanmax(table[[c for c in ("true_elasticity", *[s[0] for s in series]) if c in table]]
                                .to_numpy())) * 1.1]
    ax.plot(lim, lim, "k--", lw=0.8, label="estimate = " + ("truth" if x_col == "true_elasticity" else "x"))
    ax.set_xlabel("true elasticity (simulator)" if x_col == "true_elasticity" else "randomised estimate")
    ax.set_ylabel("estimated elasticity")
    ax.set_title("Price elasticity per leaf category (dot size: listings)")
    ax.legend()
    return _save(fig, path)


def demand_curves(changes: np.ndarray, curves: dict[str, np.ndarray], path: Path) -> Path:
    """Mean sale probability within the horizon against the price change from the seller's own price."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in curves.items():
        ax.plot(np.exp(changes), values, "o-", ms=3, label=name)
    ax.axvline(1.0, color="k", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("price / seller's own price")
    ax.set_ylabel("mean P(sold within the horizon)")
    ax.set_title("Demand curves (test listings)")
    ax.legend()
    return _save(fig, path)


def reliability(y: np.ndarray, p: np.ndarray, path: Path, bins: int = 10) -> Path:
    """Observed sale rate against the predicted probability, per decile of the prediction."""
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    df = pd.DataFrame({"b": idx, "y": y, "p": p}).groupby("b").mean()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect")
    ax.plot(df["p"], df["y"], "o-", label="demand model")
    ax.set_xlabel("predicted P(sold within the horizon)")
    ax.set_ylabel("observed share sold")
    ax.set_title("Calibration (test listings, deciles)")
    ax.legend()
    return _save(fig, path)


def policy_ratios(summary: pd.DataFrame, path: Path, policies: tuple[str, ...]) -> Path:
    """Revenue of each policy as a share of the oracle's, overall and per department."""
    rows = summary[summary["segment"].isin(["overall", "department"])]
    labels = [str(v) for v in rows["value"]]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(policies)
    for i, p in enumerate(policies):
        ax.bar(np.arange(len(rows)) + i * width, rows[f"{p}_ratio"], width, label=p)
    ax.axhline(0.95, color="k", ls="--", lw=0.8, label="95% of oracle")
    ax.set_xticks(np.arange(len(rows)) + width * (len(policies) - 1) / 2, labels)
    ax.set_ylim(max(0.0, float(np.nanmin(rows[[f"{p}_ratio" for p in policies]].to_numpy())) - 0.05), 1.01)
    ax.set_ylabel("expected revenue / oracle's")
    ax.set_title("Policies against the true optimum (within the same guardrails)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)
