"""How each stage of the workflow scales with the marketplace's size, and what a larger run would take.

    .venv/bin/pricing --set simulator.n_listings=1000000 --set simulator.n_sellers=100000 ... run > 1m.log
    .venv/bin/python bench/scaling.py 50000=50k.log 200000=200k.log 1000000=1m.log [--project 3000000,10000000]

Each ``N=LOG`` is a whole ``pricing run`` at ``N`` listings whose output ends with the runner's
``workflow done: generate 154.7s, ingest 129.0s, ... (total 831.7s)`` line; run them one at a time on an
otherwise idle machine, with the sizes set as ``bench/run.py`` sets them (``size_overrides``).  Per stage, the
exponent ``b`` of ``seconds ~ N ** b`` between the two largest sizes says how the stage scales there (1: linear;
near 0: fixed costs, such as the per-day landing files, still dominate), and a fixed cost plus a cost per listing
(``seconds = c + k N``, both >= 0, least squares over every size) projects the ``--project`` sizes: at large
sizes the per-listing cost dominates, so a stage that grows faster than linearly (a sort, a shuffle that
spills) will take longer than projected.  Writes bench/results/<date>-scaling.json, .md and a log-log plot .png.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DONE = re.compile(r"^workflow done: (?P<stages>.+) \(total (?P<total>[\d.]+)s\)$", re.M)
STAGE = re.compile(r"(?P<name>\w+) (?P<seconds>[\d.]+)s")


def stage_seconds(log: str) -> dict[str, float]:
    """The runner's per-stage seconds from a ``pricing run`` log (its last ``workflow done`` line)."""
    found = list(DONE.finditer(log))
    if not found:
        raise SystemExit("no 'workflow done:' line: pass the output of a whole `pricing run` that completed")
    return {m["name"]: float(m["seconds"]) for m in STAGE.finditer(found[-1]["stages"])}


def exponent(sizes: np.ndarray, seconds: np.ndarray) -> float:
    """``b`` of ``seconds ~ n ** b`` between the two largest sizes."""
    return float(np.log(seconds[-1] / seconds[-2]) / np.log(sizes[-1] / sizes[-2]))


def affine(sizes: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """``(c, k)`` of ``seconds = c + k n``, both non-negative, by least squares."""
    (c, k), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(sizes), sizes]), seconds, rcond=None)
    if k < 0:
        return float(seconds.mean()), 0.0
    if c < 0:
        return 0.0, float((seconds * sizes).sum() / (sizes * sizes).sum())
    return float(c), float(k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="N=LOG: the listings and the log of one whole `pricing run`")
    ap.add_argument("--project", default="3000000,10000000", help="sizes to project, comma-separated")
    args = ap.parse_args()
    runs = {}
    for spec in args.runs:
        n, _, log = spec.partition("=")
        runs[int(n)] = stage_seconds(Path(log).read_text())
    if len(runs) < 2:
        raise SystemExit("give at least two sizes")
    sizes = np.array(sorted(runs), dtype=float)
    stages = list(runs[int(sizes[-1])])
    projected = [int(x) for x in args.project.split(",")]
    report: dict = {"sizes": [int(n) for n in sizes], "stages": {}, "projected_sizes": projected}
    for stage in [*stages, "total"]:
        secs = np.array([sum(runs[int(n)].values()) if stage == "total" else runs[int(n)][stage] for n in sizes])
        c, k = affine(sizes, secs)
        report["stages"][stage] = {"seconds": [round(float(s), 1) for s in secs],
                                   "exponent": round(exponent(sizes, secs), 3), "fixed_seconds": round(c, 1),
                                   "microseconds_per_listing": round(k * 1e6, 2),
                                   "projected_seconds": [round(c + k * p, 0) for p in projected]}
    # The whole run is projected as the sum of its stages' projections (each stage scales its own way).
    report["stages"]["total"]["projected_seconds"] = [
        round(sum(report["stages"][s]["projected_seconds"][i] for s in stages), 0) for i in range(len(projected))]

    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{date.today()}-scaling"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    fig, ax = plt.subplots(figsize=(8, 6))
    for stage in [*stages, "total"]:
        s = report["stages"][stage]
        line = ax.plot(sizes, s["seconds"], "o-", label=f"{stage} (b={s['exponent']:.2f})",
                       lw=2.5 if stage == "total" else 1.2)[0]
        ax.plot([sizes[-1], *projected], [s["seconds"][-1], *s["projected_seconds"]], ":", color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("listings")
    ax.set_ylabel("seconds")
    ax.set_title("Workflow stages against size (measured: solid; projected: dotted)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    head = " | ".join(f"{int(n):,}" for n in sizes)
    proj = " | ".join(f"{p:,} (projected)" for p in projected)
    lines = [f"# Workflow stages against size ({date.today()})", "",
             "Seconds per stage of whole `pricing run`s on this machine, one size at a time. `b`: the exponent of "
             "`seconds ~ N^b` between the two largest sizes. Projected: a fixed cost plus a cost per listing, fitted "
             "to every size (`c + k N`); the total's projection is the sum of the stages'.", "",
             f"| stage | {head} | b | fixed s | µs / listing | {proj} |",
             "|---|" + "---|" * (len(sizes) + 3 + len(projected))]
    for stage, s in report["stages"].items():
        lines.append(f"| {stage} | " + " | ".join(f"{x:,.0f}" for x in s["seconds"]) + f" | {s['exponent']:.2f} | "
                     f"{s['fixed_seconds']:,.0f} | {s['microseconds_per_listing']:,.0f} | "
                     + " | ".join(f"{x:,.0f}" for x in s["projected_seconds"]) + " |")
    lines += ["", f"![stages against size]({stem.with_suffix('.png').name})"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
