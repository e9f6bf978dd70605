"""Which p10-p90 range to ship: split-conformal (global or per segment) around the median model, or
quantile boosting (`reg:quantileerror`, one booster per quantile), on the same time split.

    .venv/bin/python bench/intervals.py --set storage.root=/tmp/p1m [--set ...]

Needs a built `features.training_set` under that storage root (`pricing run` up to `features`).
Reports, on the test weeks: 80% coverage, mean width (currency and log), pinball losses, the spread of
coverage across categories (conditional coverage), and the seconds each method's extra models cost.
Writes bench/results/<date>-intervals-<rows>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import numpy as np

from pricing.platform import catalog, delta_io
from pricing.platform.config import load_config
from pricing.platform.spark import get_spark
from pricing.platform.tables import table
from pricing.price_model.evaluation import overall_metrics
from pricing.price_model.training import (
    EVAL_COLS,
    assemble,
    features_of,
    fit_predictor,
    labelled,
    score_with_labels,
    time_split,
)

VARIANTS = {
    "conformal, global": ["train.intervals=conformal", "train.interval_segment=none"],
    "conformal, per category": ["train.intervals=conformal", "train.interval_segment=category_code"],
    "quantile boosting (p10, p90 models)": ["train.intervals=quantile"],
    "cqr, per category": ["train.intervals=cqr", "train.interval_segment=category_code"],
    "cqr, per p50 band": ["train.intervals=cqr", "train.interval_segment=p50_band"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    cfg = load_config("local", args.overrides)
    spark = get_spark(cfg, app_name="bench-intervals")
    data = labelled(delta_io.read(spark, table(cfg, catalog.TRAINING_SET))).persist()
    split = time_split(data, cfg)
    rows = {"train": split.train.count(), "valid": split.valid.count(), "test": split.test.count()}
    assembled = assemble(split, features_of(cfg))
    assembled.count()
    results = {}
    for name, overrides in VARIANTS.items():
        vcfg = cfg.with_overrides(overrides)
        t0 = time.time()
        predictor, _, fit_s = fit_predictor(spark, vcfg, split, assembled, vcfg.train.booster.tree_params())
        total_s = time.time() - t0
        test = score_with_labels(split.test, predictor, EVAL_COLS)
        m = overall_metrics(test)
        inside = (test["label"] >= test["p10_log"]) & (test["label"] <= test["p90_log"])
        by_cat = inside.groupby(test["category"]).agg(["mean", "size"])
        big = by_cat[by_cat["size"] >= 100]["mean"]
        results[name] = {
            "coverage_80": m["coverage_80"], "width_80": m["width_80"],
            "log_width": float(np.mean(test["p90_log"] - test["p10_log"])),
            "pinball_p10": m["pinball_p10"], "pinball_p90": m["pinball_p90"], "rmsle": m["rmsle"],
            "category_coverage_sd": float(big.std()), "category_coverage_min": float(big.min()),
            "categories": int(len(big)), "seconds_fit_and_calibrate": total_s, "seconds_median_fit": fit_s,
        }
        print(name, json.dumps(results[name], indent=None), flush=True)
    out = Path(__file__).parent / "results" / f"{date.today()}-intervals-{rows['train'] + rows['valid'] + rows['test']}"
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "config": cfg.train.model_dump(mode="json"),
                                                    "results": results}, indent=2))
    lines = [f"# Interval methods, {rows['train']:,} train / {rows['valid']:,} valid / {rows['test']:,} test rows", "",
             "| method | coverage (target 0.80) | mean width | log width | pinball p10 | pinball p90 | "
             "category coverage sd / min | seconds |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['coverage_80']:.3f} | {r['width_80']:.2f} | {r['log_width']:.3f} | "
                     f"{r['pinball_p10']:.4f} | {r['pinball_p90']:.4f} | {r['category_coverage_sd']:.3f} / "
                     f"{r['category_coverage_min']:.3f} | {r['seconds_fit_and_calibrate']:.0f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
