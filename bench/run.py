"""`make bench`: the whole workflow at a catalogue size, each stage timed with its rows/s and peak memory, side by
side with what a user would run instead on one machine, on the same data.

    .venv/bin/python bench/run.py --sizes 100k,1m [--keep] [--skip-workflow]

Per size (simulated listings; sellers = listings / 10):
1. `pricing run --report` in a subprocess on a fresh storage root (``.pricing/bench/<size>``): every task's wall
   time, rows and rows/s, and the peak resident memory of the driver (JVM + Python; in local mode the executors
   live in the driver JVM) and of the Python workers, sampled every 0.5 s over the process tree.
2. The alternatives, on the same tables and machine:
   * features: ``bench/duck_features.py`` — the same aggregations in DuckDB on Parquet copies of silver;
   * training: native ``xgboost.train`` with the same parameters, thread count (the Spark cores) and rows, on
     in-memory arrays (DMatrix construction included, as xgboost.spark's conversion is in its fit time);
   * scoring: native ``booster.inplace_predict`` on the catalogue's feature matrix in memory — the physical limit.
3. ``bench/results/<date>-<size>.json`` and ``.md`` (the ratio table, ours / alternative, with rows/s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

from pricing.platform import catalog

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SIZES = {"100k": 100_000, "200k": 200_000, "1m": 1_000_000, "10m": 10_000_000}
STAGES = ("generate", "ingest", "match", "features", "validate", "train", "promote", "demand", "score", "recommend")


def size_overrides(n: int, root: Path) -> list[str]:
    parts = max(8, n // 125_000)
    return [f"simulator.n_listings={n}", f"simulator.n_sellers={max(n // 10, 100)}", f"simulator.partitions={parts}",
            f"spark.shuffle_partitions={max(8, n // 250_000)}", f"storage.root={root}", "spark.ui=false",
            "spark.driver_memory=" + ("16g" if n >= 5_000_000 else "8g")]


class MemorySampler(threading.Thread):
    """Peak RSS of a process tree, split into the JVM and the Python processes, with timestamps."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.samples = pid, every, []  # (t, jvm_bytes, python_bytes)
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._halt.is_set():
            jvm = py = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    if "java" in p.name():
                        jvm += rss
                    else:
                        py += rss
                except psutil.Error:
                    continue
            self.samples.append((time.time(), jvm, py))
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def peak(self, start: float, end: float) -> dict[str, float]:
        window = [s for s in self.samples if start <= s[0] <= end] or self.samples[-1:]
        return {"peak_jvm_gb": max((s[1] for s in window), default=0) / 2**30,
                "peak_python_gb": max((s[2] for s in window), default=0) / 2**30,
                "peak_total_gb": max((s[1] + s[2] for s in window), default=0) / 2**30}


def stage_rows(task: str, summary: dict[str, Any], n: int) -> int:
    """The rows a stage is measured on: events for ingest, training rows for train, the active catalogue for
    score and recommend, simulated listings otherwise."""
    rin = summary.get("rows_in", {})
    if task == "ingest":
        return int(sum(rin.values()))
    if task == "train":
        return int(sum(rin.values()))
    if task in ("score", "recommend"):
        return int(rin.get("active_listings", n))
    return n


def run_workflow(n: int, root: Path, log: Path) -> dict[str, Any]:
    report = root / "run.json"
    cmd = [sys.executable, "-m", "pricing.workflow.cli", *sum((["--set", o] for o in size_overrides(n, root)), []),
           "run", "--report", str(report)]
    t0 = time.time()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ})
        sampler = MemorySampler(proc.pid)
        sampler.start()
        rc = proc.wait()
        sampler.stop()
    wall = time.time() - t0
    if rc != 0:
        raise SystemExit(f"pricing run failed at {n:,} listings (exit {rc}); see {log}")
    return stages_from_report(json.loads(report.read_text()), n, sampler, t0, wall)


def stages_from_report(doc: dict[str, Any], n: int, sampler: MemorySampler | None, t0: float,
                       wall: float) -> dict[str, Any]:
    """Per-task figures from `pricing run --report`; peaks from the sampler (None when none was running)."""
    def peak(start: float, end: float) -> dict[str, float]:
        if sampler is None:
            return {"peak_jvm_gb": None, "peak_python_gb": None, "peak_total_gb": None}
        return sampler.peak(start, end)

    stages = {}
    for task, r in doc["tasks"].items():
        rows = stage_rows(task, r["summary"], n)
        stages[task] = {"seconds": r["seconds"], "rows": rows, "rows_per_s": rows / max(r["seconds"], 1e-9),
                        **peak(r["started"], r["started"] + r["seconds"]), "info": r["summary"].get("info")}
    stages["workflow"] = {"seconds": wall, "rows": n, "rows_per_s": n / wall, **peak(t0, t0 + wall)}
    return stages


def duckdb_features(pq: Path, threads: int, timeout_s: float) -> dict[str, Any]:
    """bench/duck_features.py in a subprocess, stopped after ``timeout_s`` (0: not run); the steps it finished."""
    if timeout_s <= 0:
        return {"total": None, "not_run": True}
    cmd = [sys.executable, str(Path(__file__).parent / "duck_features.py"), str(pq), str(threads)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except subprocess.TimeoutExpired as exc:
        text = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        steps = [json.loads(line) for line in text.splitlines() if line.startswith('{"step"')]
        return {"total": None, "timed_out_after": timeout_s, "finished_steps": steps}


def native_fits(cfg: Any, training_set: Any, threads: int) -> dict[str, Any]:
    """Native ``xgboost.train`` on arrays, as the train job fits with xgboost.spark: the same split of
    ``training_set`` (``features.training_set``), rows, features, parameters and boosters (the median, and the
    p10 / p90 boosters when ``train.intervals`` fits them), ``threads`` threads.  Seconds (matrices included) and
    best iteration per booster, their total, rows and features."""
    import numpy as np
    import xgboost as xgb
    from pyspark.sql import functions as F

    from pricing.price_model.training import features_of, labelled, time_split

    split = time_split(labelled(training_set), cfg)
    feats = list(features_of(cfg))
    cols = [F.col(c).cast("double") for c in feats]
    tr = split.train.select(*cols, "label").toPandas()
    va = split.valid.select(*cols, "label").toPandas()
    Xtr, ytr = tr[feats].to_numpy(np.float32, na_value=np.nan), tr["label"].to_numpy()
    Xva, yva = va[feats].to_numpy(np.float32, na_value=np.nan), va["label"].to_numpy()
    t = cfg.train
    params = {"tree_method": "hist", "nthread": threads, "seed": t.booster.seed,
              **{("eta" if k == "learning_rate" else k): v for k, v in t.booster.tree_params().items()}}
    objectives: dict[str, dict[str, Any]] = {"median": {"objective": "reg:squarederror", "eval_metric": "rmse"}}
    if t.intervals in ("quantile", "cqr"):
        objectives |= {f"q{q:g}": {"objective": "reg:quantileerror", "quantile_alpha": q}
                       for q in (t.quantiles[0], t.quantiles[2])}
    fits = {}
    for name, objective in objectives.items():
        # each xgboost.spark fit converts its rows again, so each native fit builds its matrices again
        t0 = time.perf_counter()
        dtrain = xgb.QuantileDMatrix(Xtr, ytr, nthread=threads)
        dvalid = xgb.DMatrix(Xva, yva, nthread=threads)
        booster = xgb.train({**params, **objective}, dtrain, num_boost_round=t.booster.n_estimators,
                            evals=[(dvalid, "valid")], early_stopping_rounds=t.booster.early_stopping_rounds,
                            verbose_eval=False)
        fits[name] = {"seconds": time.perf_counter() - t0, "best_iteration": booster.best_iteration,
                      "rounds": booster.num_boosted_rounds()}
    return {"seconds": sum(f["seconds"] for f in fits.values()), "rows": len(ytr) + len(yva),
            "features": len(feats), "boosters": fits}


def alternatives(n: int, root: Path, threads: int, duck_timeout_s: float = 1800) -> dict[str, Any]:
    """Native and DuckDB baselines on the tables the workflow built (their set-up is not timed)."""
    import numpy as np
    from mlflow.tracking import MlflowClient
    from pyspark.sql import functions as F

    from pricing.platform import delta_io, tracking
    from pricing.platform.config import load_config
    from pricing.platform.spark import get_spark
    from pricing.platform.tables import table
    from pricing.price_model.promotion import load_version

    cfg = load_config("local", size_overrides(n, root))
    spark = get_spark(cfg, app_name="bench-alternatives")
    out: dict[str, Any] = {}

    # features: Parquet copies of the inputs (untimed), then DuckDB end to end
    pq = root / "parquet"
    shutil.rmtree(pq, ignore_errors=True)
    for name, logical in (("listings", catalog.SILVER_LISTINGS), ("sales", catalog.SILVER_SALES),
                          ("price_changes", catalog.BRONZE_PRICE_CHANGES_RAW)):
        delta_io.read(spark, table(cfg, logical)).write.parquet(str(pq / name))

    # training: the same split, rows, features, parameters and boosters as the train job's fit, on arrays
    out["train_native"] = native_fits(cfg, delta_io.read(spark, table(cfg, catalog.TRAINING_SET)), threads)

    # scoring: the champion's predictor on the active catalogue, in memory
    tracking.setup(cfg)
    version = tracking.alias_version(MlflowClient(), cfg.mlflow.model_name, tracking.CHAMPION)
    predictor = load_version(cfg.mlflow.model_name, version)
    active = delta_io.read(spark, table(cfg, catalog.TRAINING_SET)).where("status = 'active'")
    X = active.select(*[F.col(c).cast("double") for c in predictor.features]).toPandas().to_numpy(
        np.float32, na_value=np.nan)
    for b in (predictor.median, predictor.lower, predictor.upper):
        if b is not None:
            b.set_param({"nthread": threads})
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        predictor.predict(X)
        best = min(best, time.perf_counter() - t0)
    out["score_native"] = {"seconds": best, "rows": len(X), "rows_per_s": len(X) / best}
    spark.stop()
    # last: the one that may run for long (stopped after duck_timeout_s)
    out["features_duckdb"] = duckdb_features(pq, threads, duck_timeout_s)
    return out


def _gb(x: float | None) -> str:
    return "not sampled" if x is None else f"{x:.2f}"


def report(size: str, n: int, stages: dict[str, Any], alt: dict[str, Any], threads: int) -> str:
    lines = [f"# Benchmark: {n:,} listings ({date.today()}, {os.cpu_count()} cores, {threads} Spark threads)", "",
             "## Stages of `pricing run`", "",
             "| stage | seconds | rows | rows/s | peak JVM GB | peak Python GB |", "|---|---|---|---|---|---|"]
    for k, s in stages.items():
        lines.append(f"| {k} | {s['seconds']:.1f} | {s['rows']:,} | {s['rows_per_s']:,.0f} | "
                     f"{_gb(s['peak_jvm_gb'])} | {_gb(s['peak_python_gb'])} |")
    lines += ["", "## Against the single-node alternative (same data, same machine)", "",
              "| stage | ours (s) | alternative | alternative (s) | ours / alternative | ours rows/s | "
              "alternative rows/s | target |", "|---|---|---|---|---|---|---|---|"]
    f_ours = stages["features"]["seconds"]
    d = alt["features_duckdb"]
    rows_f = stages["features"]["rows"]
    if d.get("total"):
        duck = d["total"]
        lines.append(f"| features | {f_ours:.1f} | DuckDB on Parquet | {duck:.1f} | {f_ours / duck:.2f} | "
                     f"{rows_f / f_ours:,.0f} | {rows_f / duck:,.0f} | <= 3 at 10M |")
    elif d.get("timed_out_after"):
        lim = d["timed_out_after"]
        done = ", ".join(f"{s['step']} {s['seconds']:.0f} s" for s in d["finished_steps"]) or "no step"
        lines.append(f"| features | {f_ours:.1f} | DuckDB on Parquet | > {lim:.0f} (stopped; finished: {done}) | "
                     f"< {f_ours / lim:.2f} | {rows_f / f_ours:,.0f} | < {rows_f / lim:,.0f} | <= 3 at 10M |")
    else:
        lines.append(f"| features | {f_ours:.1f} | DuckDB on Parquet | not run (--duck-timeout 0) | | "
                     f"{rows_f / f_ours:,.0f} | | <= 3 at 10M |")
    fit = float((stages["train"]["info"] or {}).get("fit_seconds", stages["train"]["seconds"]))
    nat = alt["train_native"]["seconds"]
    rows_t = alt["train_native"]["rows"]
    boosters = ", ".join(alt["train_native"]["boosters"])
    lines.append(f"| train (fit: {boosters}) | {fit:.1f} | native xgboost.train | {nat:.1f} | {fit / nat:.2f} | "
                 f"{rows_t / fit:,.0f} | {rows_t / nat:,.0f} | <= 1.3 at 1M |")
    lines.append(f"| train (whole job) | {stages['train']['seconds']:.1f} | native xgboost.train | {nat:.1f} | "
                 f"{stages['train']['seconds'] / nat:.2f} | | | |")
    sc = stages["score"]
    nat_s = alt["score_native"]
    lines.append(f"| score (read + predict + write) | {sc['seconds']:.1f} | native inplace_predict | "
                 f"{nat_s['seconds']:.2f} | {sc['seconds'] / nat_s['seconds']:.1f} | {sc['rows_per_s']:,.0f} | "
                 f"{nat_s['rows_per_s']:,.0f} | >= 50% of native rows/s at 1M: {sc['rows_per_s'] / nat_s['rows_per_s']:.1%} |")
    lines.append(f"| whole workflow | {stages['workflow']['seconds']:.0f} | | | | | | < 600 s at 1M |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "100k"),
                    help="comma-separated: 100k, 1m, 10m, or a number")
    ap.add_argument("--keep", action="store_true", help="keep each size's storage root afterwards")
    ap.add_argument("--duck-timeout", type=float, default=1800,
                    help="stop the DuckDB features alternative after this many seconds (0: skip it)")
    ap.add_argument("--skip-workflow", action="store_true", help="reuse the last run of this size (its run.json)")
    args = ap.parse_args()
    threads = 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    for size in args.sizes.split(","):
        size = size.strip().lower()
        n = SIZES.get(size) or int(size)
        root = ROOT / ".pricing" / "bench" / size
        log = root.parent / f"{size}.log"
        if args.skip_workflow:
            # The last workflow of this size: its results file, else the run report it left (no memory peaks).
            done = RESULTS / f"{date.today()}-{size}.json"
            if done.exists():
                stages = json.loads(done.read_text())["stages"]
            else:
                doc = json.loads((root / "run.json").read_text())
                starts = [r["started"] for r in doc["tasks"].values()]
                ends = [r["started"] + r["seconds"] for r in doc["tasks"].values()]
                stages = stages_from_report(doc, n, None, min(starts), max(ends) - min(starts))
        else:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            print(f"== {size}: pricing run ({n:,} listings), log in {log}", flush=True)
            stages = run_workflow(n, root, log)
            for k, s in stages.items():
                print(f"   {k:9} {s['seconds']:8.1f} s  {s['rows_per_s']:>12,.0f} rows/s  "
                      f"peak {s['peak_total_gb']:.1f} GB", flush=True)
        print(f"== {size}: alternatives on the same data", flush=True)
        alt = alternatives(n, root, threads, args.duck_timeout)
        doc = {"size": size, "listings": n, "date": str(date.today()), "cores": os.cpu_count(), "threads": threads,
               "stages": stages, "alternatives": alt}
        out = RESULTS / f"{date.today()}-{size}"
        out.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str))
        out.with_suffix(".md").write_text(report(size, n, stages, alt, threads))
        print(out.with_suffix(".md").read_text(), flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
