"""Product matching at catalogue scale: the match job's wall time and output at several catalogue sizes (its
growth with size), its precision and recall against the simulator's product ids, MinHash banding against Spark
ML's ``MinHashLSH.approxSimilarityJoin``, and the same-product threshold's precision / recall trade-off.

    .venv/bin/python bench/matching.py [--sizes 100000 300000 1000000] [--compare-at 100000 300000]
                                       [--sweep-at 100000] [--root /tmp/bench-matching] [--set key=value ...]
                                       [--merge]
    .venv/bin/python bench/matching.py --worlds-at 100000 [--worlds standard hard] [--tune-seed 42]
                                       [--report-seed 43]

``--worlds-at N``: only the evaluation on two worlds (``simulator.world`` standard and hard, see
``pricing/world/hard.py``) at N listings, each on a tuning seed (where rules and thresholds were chosen) and a
report seed (never looked at while choosing): pairwise precision and recall of the pairs and clusters and the
precision-recall curve over the same-product threshold (table, and a plot in
bench/results/<date>-matching-worlds-N.png).  Writes bench/results/<date>-matching-worlds-N.json and .md.

Each size's listings are simulated once and staged as Parquet (not timed).  What is timed is the job's own
work, ``jobs.match.build``: tokens, groups, MinHash candidates, scoring, the listing pairs and the clusters, both
Delta tables written.  Writes bench/results/<date>-matching.json and .md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from pricing.matching import products as matching
from pricing.matching.build import CURVE_THRESHOLDS, build, curve_figure, curve_table, scores_against
from pricing.platform.config import Config, load_config
from pricing.platform.spark import get_spark
from pricing.world.simulator import simulate

LISTING_COLS = ("listing_id", "created_at", "title", "brand", "category", "subcategory", "colour", "list_price",
                "product_id")


def _simulator_fingerprint(cfg: Config) -> str:
    """The simulator's code and settings: a staged catalogue from another version is never reused."""
    h = hashlib.sha256(cfg.simulator.model_dump_json().encode())
    for module in sorted((Path(__file__).parents[1] / "pricing" / "world").glob("*.py")):
        h.update(module.read_bytes())
    return h.hexdigest()[:10]


def staged(spark: SparkSession, cfg: Config, root: Path) -> DataFrame:
    """The simulated catalogue's listing columns (what ``silver.listings`` holds) plus the truth's product id."""
    path = root / (f"listings-{cfg.simulator.n_listings}-{cfg.simulator.world}-{cfg.simulator.seed}-"
                   f"{_simulator_fingerprint(cfg)}")
    if not (path / "_SUCCESS").exists():
        sim = simulate(spark, cfg.simulator)
        sim.listings.select(*LISTING_COLS).write.mode("overwrite").parquet(str(path))
        sim.listings.unpersist()
    return spark.read.parquet(str(path))


def run_size(spark: SparkSession, base: Config, root: Path, n: int, method: str) -> dict[str, Any]:
    cfg = base.with_overrides([f"simulator.n_listings={n}", f"storage.root={root / f'{method}-{n}'}",
                               f"match.method={method}"])
    listings = staged(spark, cfg, root)
    truth = listings.select("listing_id", "product_id")
    load_before = os.getloadavg()[0]
    built = build(spark, cfg, listings.drop("product_id"), "bench")
    load_after = os.getloadavg()[0]
    res = matching.match(listings.drop("product_id"), cfg.match)
    candidates = res.candidates.count()  # counted apart, untimed: what candidate generation produced
    res.release()
    row = {"listings": n, "method": method, "seconds": round(built.seconds, 1),
           "listings_per_second": round(n / built.seconds), "load_avg_1m": [load_before, load_after],
           "listings_matched": built.keyed,
           "groups": built.groups, "candidate_group_pairs": candidates, "pair_rows": built.pairs,
           "same_product_pairs": built.same_product_pairs // 2, "clusters": built.clusters,
           **scores_against(spark, cfg, truth)}
    print(json.dumps(row), flush=True)
    return row


def sweep(spark: SparkSession, base: Config, root: Path, n: int, thresholds: list[float]) -> list[dict[str, Any]]:
    cfg = base.with_overrides([f"simulator.n_listings={n}"])
    listings = staged(spark, cfg, root)
    truth = listings.select("listing_id", "product_id")
    out = []
    for thr in thresholds:
        mcfg = cfg.match.model_copy(update={"threshold": thr, "min_similarity": min(thr, cfg.match.min_similarity)})
        res = matching.match(listings.drop("product_id"), mcfg)
        s = matching.pair_scores(res.pairs, truth)
        res.release()
        out.append({"threshold": thr, "precision": s["precision"], "recall": s["recall"]})
        print(json.dumps(out[-1]), flush=True)
    return out


def world_eval(spark: SparkSession, base: Config, root: Path, n: int, world: str, seed: int) -> dict[str, Any]:
    """The matcher on one simulated world: pair and cluster precision / recall and the curve over the threshold."""
    cfg = base.with_overrides([f"simulator.n_listings={n}", f"simulator.world={world}", f"simulator.seed={seed}"])
    listings = staged(spark, cfg, root)
    truth = listings.select("listing_id", "product_id")
    res = matching.match(listings.drop("product_id"), cfg.match)
    row: dict[str, Any] = {"listings": n, "world": world, "seed": seed, "listings_matched": res.keyed,
                           "brands_inferred": res.brands_inferred,
                           **{f"pair_{k}": v for k, v in matching.pair_scores(res.pairs, truth).items()}}
    row.update({f"cluster_{k}": v for k, v in matching.cluster_scores(
        matching.clusters(res, cfg.match.max_cluster_iterations, cfg.match.local_components_max_edges),
        truth).items()})
    row["curve"] = matching.pr_curve(res.decided, truth, CURVE_THRESHOLDS)
    res.release()
    print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
    return row


def worlds_report(rows: list[dict[str, Any]], cfg: Config, tune_seed: int, png: str) -> str:
    m = cfg.match
    lines = ["# Product matching on two worlds", "",
             f"The matcher (`pricing.matching.products.match`, threshold {m.threshold}, {m.num_bands} bands x "
             f"{m.rows_per_band} rows) on the standard simulated world and on the hard one (`simulator.world: "
             f"hard`: held-out vocabulary, titles without brand or model number, other size formats, namesakes "
             f"under other brands, lots and accessories; `pricing/world/hard.py`).  Brands inferred: listings without "
             f"a brand attribute given one from their titles (`match.infer_brand`: {m.infer_brand}).  "
             + (f"Rules and thresholds were chosen looking at seed {tune_seed} only; the other seed is the report."
                if tune_seed >= 0 else "Rules and thresholds were chosen on another seed (42); every row is a "
                "report."), "",
             "| world | seed | role | listings | matched | brands inferred | pair precision | pair recall | "
             "pair predicted | cluster precision | cluster recall |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        role = "tuning" if r["seed"] == tune_seed else "report"
        lines.append(f"| {r['world']} | {r['seed']} | {role} | {r['listings']:,} | {r['listings_matched']:,} | "
                     f"{r['brands_inferred']:,} | "
                     f"{r['pair_precision']:.4f} | {r['pair_recall']:.4f} | {int(r['pair_predicted_pairs']):,} | "
                     f"{r['cluster_precision']:.4f} | {r['cluster_recall']:.4f} |")
    lines += ["", f"![precision-recall curves]({png})"]
    for r in rows:
        lines += ["", f"## Precision-recall over the threshold: {r['world']} world, seed {r['seed']}", "",
                  curve_table(r["curve"]).rstrip("\n")]
    return "\n".join(lines) + "\n"


def report(rows: list[dict[str, Any]], compare: list[dict[str, Any]], swept: list[dict[str, Any]],
           sweep_n: int | None, cfg: Config) -> str:
    m = cfg.match
    lines = ["# Product matching at scale", "",
             f"`pricing match` (`jobs.match.build`: tokens, groups, MinHash candidates, scoring, listing pairs, "
             f"clusters, both Delta tables written) on simulated catalogues; {m.num_bands} bands x "
             f"{m.rows_per_band} rows, threshold {m.threshold}, comparables from {m.min_similarity}; "
             f"`spark.master` {cfg.spark.master}, {cfg.spark.shuffle_partitions} shuffle partitions.", "",
             "| listings | seconds | listings / s | matched | groups | candidates | pair rows | same-product pairs | "
             "clusters | pair precision | pair recall | cluster precision | cluster recall | recall@1 | recall@5 "
             "| recall@10 |", "|" + "---|" * 16]
    for r in rows:
        lines.append(f"| {r['listings']:,} | {r['seconds']:.0f} | {r['listings'] / r['seconds']:,.0f} | "
                     f"{r['listings_matched']:,} | {r['groups']:,} | {r['candidate_group_pairs']:,} | "
                     f"{r['pair_rows']:,} | {r['same_product_pairs']:,} | {r['clusters']:,} | "
                     f"{r['pair_precision']:.4f} | {r['pair_recall']:.4f} | {r['cluster_precision']:.4f} | "
                     f"{r['cluster_recall']:.4f} | {r['recall_at_1']:.4f} | {r['recall_at_5']:.4f} | "
                     f"{r['recall_at_10']:.4f} |")
    for a, b in zip(rows, rows[1:], strict=False):
        size, t, pairs = b["listings"] / a["listings"], b["seconds"] / a["seconds"], b["pair_rows"] / a["pair_rows"]
        lines += ["", f"From {a['listings']:,} to {b['listings']:,} listings (size x{size:.1f}): time x{t:.2f} "
                      f"(time growth / size growth {t / size:.2f}; 1 is linear), pair rows x{pairs:.1f}, "
                      f"candidates x{b['candidate_group_pairs'] / a['candidate_group_pairs']:.1f}."]
    loads = [r for r in rows if "load_avg_1m" in r]
    if loads:
        lines += ["", "2 cores shared with other sessions: the 1-minute load average before and after each timed "
                      "run was " + "; ".join(f"{r['listings']:,}: {r['load_avg_1m'][0]:.1f} / {r['load_avg_1m'][1]:.1f}"
                                             for r in loads) + " (above 2, the job did not have both cores)."]
    if compare:
        lines += ["", "## Candidate generation: MinHash banding vs Spark ML `approxSimilarityJoin`", "",
                  "| listings | method | seconds | candidate group pairs | pair rows | pair precision | pair recall |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['listings']:,} | {r['method']} | {r['seconds']:.0f} | {r['candidate_group_pairs']:,} | "
                  f"{r['pair_rows']:,} | {r['pair_precision']:.4f} | {r['pair_recall']:.4f} |" for r in compare]
    if swept:
        lines += ["", f"## Same-product threshold ({sweep_n:,} listings, direct pairs)", "",
                  "| threshold | precision | recall |", "|---|---|---|"]
        lines += [f"| {s['threshold']} | {s['precision']:.4f} | {s['recall']:.4f} |" for s in swept]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--compare-at", type=int, nargs="*", default=[100_000, 300_000],
                    help="sizes at which Spark ML's approxSimilarityJoin is run too")
    ap.add_argument("--sweep-at", type=int, default=100_000, help="size of the threshold sweep (0: none)")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    ap.add_argument("--warmup", type=int, default=20_000,
                    help="a first, untimed run at this size (JIT and caches warm; 0: none)")
    ap.add_argument("--root", default="/tmp/bench-matching")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--worlds-at", type=int, default=0,
                    help="only the two-world evaluation at this size (standard and hard, tuning and report seed)")
    ap.add_argument("--worlds", nargs="+", default=["standard", "hard"])
    ap.add_argument("--tune-seed", type=int, default=42, help="-1: report seed only")
    ap.add_argument("--report-seed", type=int, default=43)
    ap.add_argument("--merge", action="store_true",
                    help="keep today's earlier results for the sizes (and comparisons, sweep) not run this time")
    args = ap.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    base = load_config("local", ["spark.ui=false", f"storage.root={root}", *args.overrides])
    res_dir = Path(__file__).parent / "results"
    res_dir.mkdir(exist_ok=True)
    if args.worlds_at:
        spark = get_spark(base, app_name="bench-matching-worlds")
        stem = res_dir / f"{date.today()}-matching-worlds-{args.worlds_at}"
        rows = [world_eval(spark, base, root, args.worlds_at, w, seed)
                for w in args.worlds for seed in dict.fromkeys((args.tune_seed, args.report_seed)) if seed >= 0]
        curve_figure({f"{r['world']} seed {r['seed']}": r["curve"] for r in rows},
                     base.match.threshold).savefig(stem.with_suffix(".png"), dpi=120)
        stem.with_suffix(".json").write_text(json.dumps(
            {"date": str(date.today()), "config": base.match.model_dump(mode="json"), "tune_seed": args.tune_seed,
             "report_seed": args.report_seed, "worlds": rows}, indent=2))
        stem.with_suffix(".md").write_text(worlds_report(rows, base, args.tune_seed, stem.with_suffix(".png").name))
        print(stem.with_suffix(".md").read_text())
        return
    stem = res_dir / f"{date.today()}-matching"
    old = json.loads(stem.with_suffix(".json").read_text()) if args.merge and stem.with_suffix(".json").exists() else {}
    rows = [r for r in old.get("sizes", []) if r["listings"] not in args.sizes]
    compare = [r for r in old.get("methods", []) if r["listings"] not in args.compare_at]
    swept = [] if args.sweep_at else old.get("threshold_sweep", [])
    sweep_n = args.sweep_at or old.get("sweep_listings", 0)

    def save() -> None:
        """Written after every step: a run stopped at a large size keeps what the smaller ones measured."""
        rows.sort(key=lambda r: r["listings"])
        compare.sort(key=lambda r: (r["listings"], r["method"]))
        growth = [{"from": a["listings"], "to": b["listings"], "size_ratio": b["listings"] / a["listings"],
                   "time_ratio": b["seconds"] / a["seconds"],
                   "time_over_size": (b["seconds"] / a["seconds"]) / (b["listings"] / a["listings"])}
                  for a, b in zip(rows, rows[1:], strict=False)]
        out = {"date": str(date.today()), "config": base.match.model_dump(mode="json"), "sizes": rows,
               "growth": growth, "methods": compare, "threshold_sweep": swept, "sweep_listings": sweep_n}
        stem.with_suffix(".json").write_text(json.dumps(out, indent=2))
        stem.with_suffix(".md").write_text(report(rows, compare, swept, sweep_n, base))

    spark = get_spark(base, app_name="bench-matching")
    if args.warmup:
        run_size(spark, base, root, args.warmup, "banded")
    for n in sorted(args.sizes):
        rows.append(run_size(spark, base, root, n, "banded"))
        save()
    for n in sorted(args.compare_at):
        compare.append(next((r for r in rows if r["listings"] == n), None) or run_size(spark, base, root, n, "banded"))
        compare.append(run_size(spark, base, root, n, "spark_ml"))
        save()
    if args.sweep_at:
        swept.extend(sweep(spark, base, root, args.sweep_at, args.thresholds))
        save()
    print(stem.with_suffix(".md").read_text())

if __name__ == "__main__":
    main()
