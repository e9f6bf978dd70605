"""The readable read-out of an experiment: a markdown and an HTML report, and two plots.

Pure: takes the analysis (and the design and true effects when known), returns text and matplotlib
figures; ``jobs/experiment.py`` logs them to MLflow.
"""

from __future__ import annotations

import html as html_lib
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: jobs run on servers and in tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pricing.experiment.analysis import METRICS, Analysis  # noqa: E402

_LABEL = {m.name: m.label for m in METRICS}
_UNIT = {m.name: m.unit for m in METRICS}


def _num(x: float | None, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    if unit == "share":
        return f"{x:.4f}"
    return f"{x:,.3f}" if abs(x) < 100 else f"{x:,.1f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None or np.isnan(x) else f"{100 * x:+.2f}%"


def results_table(analysis: Analysis, truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """The headline table: CUPED-adjusted effects with 95% CIs, lifts, p-values and the CUPED gain."""
    level = f"{100 * (1 - analysis.alpha):.0f}%"
    rows = []
    t = truth.set_index("metric") if truth is not None else None
    r: Any  # a row of analysis.results: its fields are the result columns
    for r in analysis.results.itertuples():
        u = _UNIT.get(r.metric, "")
        row = {
            "metric": _LABEL.get(r.metric, r.metric), "control": _num(r.control_mean, u),
            "treatment": _num(r.treatment_mean, u),
            f"effect [{level} CI]": f"{_num(r.effect, u)} [{_num(r.ci_low, u)}, {_num(r.ci_high, u)}]",
            f"lift [{level} CI]": f"{_pct(r.relative_lift)} [{_pct(r.lift_ci_low)}, {_pct(r.lift_ci_high)}]",
            "p": f"{r.p_value:.3g}", f"p ({analysis.correction})": f"{r.p_adjusted:.3g}",
            "significant": "yes" if r.significant else "no",
            "CUPED variance reduction": f"{100 * r.variance_reduction:.1f}%",
            "CI narrower by": f"{100 * r.ci_width_reduction:.1f}%",
        }
        if t is not None and r.metric in t.index:
            te = float(t.loc[r.metric, "effect"])
            row["true effect"] = _num(te, u)
            row["CI covers truth"] = "yes" if r.ci_low <= te <= r.ci_high else "NO"
        rows.append(row)
    return pd.DataFrame(rows)


def raw_table(analysis: Analysis) -> pd.DataFrame:
    rows = []
    r: Any  # a row of analysis.results: its fields are the result columns
    for r in analysis.results.itertuples():
        u = _UNIT.get(r.metric, "")
        rows.append({"metric": _LABEL.get(r.metric, r.metric), "effect (no CUPED)": _num(r.effect_raw, u),
                     "CI": f"[{_num(r.ci_low_raw, u)}, {_num(r.ci_high_raw, u)}]",
                     "lift": _pct(r.relative_lift_raw), "p": f"{r.p_value_raw:.3g}",
                     "theta": f"{r.theta:.4f}"})
    return pd.DataFrame(rows)


def balance_table(analysis: Analysis) -> pd.DataFrame:
    b = analysis.balance
    return pd.DataFrame({
        "covariate": b["covariate"], "control": b["control_mean"].map(_num), "treatment": b["treatment_mean"].map(_num),
        "SMD": b["smd"].map(lambda x: f"{x:+.3f}"), "p": b["p_value"].map(lambda x: f"{x:.3g}"),
        "p (holm)": b["p_adjusted"].map(lambda x: f"{x:.3g}"), "ok": b["ok"].map(lambda x: "yes" if x else "NO"),
    })


def headline(analysis: Analysis) -> list[str]:
    """The lines that must be read first: SRM and balance verdicts."""
    lines = []
    if not analysis.srm.ok:
        lines.append(f"**WARNING: {analysis.srm.message()}**")
    else:
        lines.append(analysis.srm.message())
    if analysis.balance_ok:
        lines.append("Pre-period balance ok: no covariate differs between arms beyond chance (Holm-adjusted).")
    else:
        bad = ", ".join(analysis.balance.loc[~analysis.balance["ok"], "covariate"])
        lines.append(f"**WARNING: pre-period imbalance in {bad}: check the assignment before trusting the effects.**")
    return lines


def _md_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def markdown(analysis: Analysis, design: Mapping[str, Any], truth: pd.DataFrame | None = None,
             images: tuple[str, ...] = ("effects.png", "ci_width.png")) -> str:
    """The report as markdown: verdicts, design, effects (CUPED), raw effects, balance, method notes."""
    exp_id = design.get("experiment_id", "")
    parts = [f"# Experiment {exp_id}: {design.get('control_policy')} (control) vs "
             f"{design.get('treatment_policy')} (treatment)", "", *[f"- {x}" for x in headline(analysis)], "",
             "## Design", "", _md_table(pd.DataFrame({"": list(design), "value": [str(v) for v in design.values()]})),
             "", "## Effects (CUPED-adjusted, seller-clustered, delta method)", "",
             _md_table(results_table(analysis, truth)), "",
             f"Multiple metrics: p-values adjusted by {analysis.correction} over {len(analysis.results)} metrics; "
             f"'significant' means adjusted p < {analysis.alpha}.", "",
             *[f"![{i}]({i})" for i in images], "",
             "## Without CUPED", "", _md_table(raw_table(analysis)), "",
             "## Pre-period balance", "", _md_table(balance_table(analysis)), "",
             "## Method", "",
             "Sellers are the unit of randomisation and of analysis. Each metric is a ratio of seller totals; its "
             "variance is the delta-method (cluster-robust) one. CUPED uses the same metric over each seller's "
             "pre-period listings (created and resolved before the start) as covariate. Days to sell are capped at "
             "the horizon: unsold listings count the full horizon.", ""]
    return "\n".join(parts)


def html(analysis: Analysis, design: Mapping[str, Any], truth: pd.DataFrame | None = None,
         images: tuple[str, ...] = ("effects.png", "ci_width.png")) -> str:
    """The same report as a standalone HTML page (images referenced next to it)."""
    def table(df: pd.DataFrame) -> str:
        return df.to_html(index=False, escape=True, border=0, classes="t")

    verdicts = "".join(
        f"<p class='{'bad' if x.startswith('**') else 'ok'}'>{html_lib.escape(x.strip('*'))}</p>"
        for x in headline(analysis))
    design_df = pd.DataFrame({"": list(design), "value": [str(v) for v in design.values()]})
    title = html_lib.escape(f"Experiment {design.get('experiment_id', '')}: {design.get('control_policy')} vs "
                            f"{design.get('treatment_policy')}")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} .t td,.t th{{padding:3px 8px;text-align:right}}
.bad{{background:#fdd;padding:8px;font-weight:bold}} .ok{{color:#060}}</style></head><body>
<h1>{title}</h1>{verdicts}
<h2>Effects (CUPED-adjusted, seller-clustered, delta method)</h2>{table(results_table(analysis, truth))}
<p>p-values adjusted by {analysis.correction} over {len(analysis.results)} metrics.</p>
{''.join(f'<img src="{i}" style="max-width:100%">' for i in images)}
<h2>Without CUPED</h2>{table(raw_table(analysis))}
<h2>Pre-period balance</h2>{table(balance_table(analysis))}
<h2>Design</h2>{table(design_df)}
</body></html>"""


def plot_effects(analysis: Analysis, truth: pd.DataFrame | None = None) -> Figure:
    """Relative lift per metric with its CI, raw and CUPED (and the true lift when known)."""
    res = analysis.results
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.9 * len(res)))
    y = np.arange(len(res))[::-1]
    for off, sfx, label, color in ((0.15, "_raw", "raw", "#999999"), (-0.15, "", "CUPED", "#1f5fa8")):
        lift = 100 * res[f"relative_lift{sfx}"].to_numpy()
        lo = 100 * res[f"lift_ci_low{sfx}"].to_numpy()
        hi = 100 * res[f"lift_ci_high{sfx}"].to_numpy()
        ax.errorbar(lift, y + off, xerr=[lift - lo, hi - lift], fmt="o", capsize=4, color=color, label=label)
    if truth is not None:
        t = truth.set_index("metric").reindex(res["metric"])
        ax.scatter(100 * t["relative_lift"].to_numpy(), y, marker="x", color="#c0392b", zorder=5, label="true lift")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [_LABEL.get(m, m) for m in res["metric"]])
    ax.set_xlabel(f"treatment vs control, relative lift (%), {100 * (1 - analysis.alpha):.0f}% CI")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def plot_ci_widths(analysis: Analysis) -> Figure:
    """CI width with CUPED as a share of the raw width, per metric, labelled with the reduction."""
    res = analysis.results
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.7 * len(res)))
    y = np.arange(len(res))[::-1]
    share = 100 * (1 - res["ci_width_reduction"].to_numpy())
    ax.barh(y, np.full(len(res), 100.0), color="#dddddd", label="raw")
    ax.barh(y, share, height=0.5, color="#1f5fa8", label="CUPED")
    for yi, s, vr in zip(y, share, res["variance_reduction"], strict=True):
        ax.text(max(s, 100.0) + 1, yi, f"width {s - 100:+.1f}%, variance {-100 * vr:+.1f}%", va="center", fontsize=8)
    ax.set_yticks(y, [_LABEL.get(m, m) for m in res["metric"]])
    ax.set_xlabel("CI width, % of the raw (no CUPED) width")
    ax.set_xlim(0, 150)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.15), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
