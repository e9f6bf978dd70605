"""How to apply the champion to a large table: the candidates side by side, on the same rows and machine.

    .venv/bin/python bench/scoring.py --set storage.root=/tmp/p1m [--rows N] [--only ours,native]

Needs a trained champion and `features.training_set` under that storage root.  Every listing of the training
set is scored (active or not: this measures throughput, not the catalogue).  Candidates:

* ``mapInPandas + inplace_predict`` (what `pricing score` uses): the predictor broadcast once, each Arrow
  batch predicted as one matrix;
* ``SparkXGBRegressorModel.transform``: xgboost.spark's own model over a Vector column;
* ``mlflow.pyfunc.spark_udf``: the registered pyfunc as a pandas UDF;
* ``native inplace_predict``: the booster on an in-memory numpy matrix, 2 threads: the physical limit.

The Spark candidates read the Delta table and write their predictions to a Delta table (noop-free, real
I/O), so what is timed is what a scoring job pays.  Writes bench/results/<date>-scoring-<rows>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import xgboost as xgb
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import functions as F

from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import load_config
from pricing.platform.spark import get_spark
from pricing.platform.tables import table
from pricing.price_model.predictor import score_frame
from pricing.price_model.promotion import load_version
from pricing.price_model.scoring import champion_version


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--rows", type=int, default=0, help="score only this many rows (0: all)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per candidate (best is kept)")
    ap.add_argument("--only", default="", help="comma-separated candidates to run (ours, transform, pyfunc, "
                    "native); default all")
    args = ap.parse_args()
    cfg = load_config("local", args.overrides)
    spark = get_spark(cfg, app_name="bench-scoring")
    tracking.setup(cfg)
    version = champion_version(cfg)
    predictor = load_version(cfg.mlflow.model_name, version)
    src = table(cfg, catalog.TRAINING_SET)
    base = delta_io.read(spark, src)
    if args.rows:
        base = base.limit(args.rows)
    n = base.count()
    feats = list(predictor.features)
    out_dir = Path(tempfile.mkdtemp(prefix="bench-scoring-"))

    def write(df, name: str) -> None:  # type: ignore[no-untyped-def]
        df.write.format("delta").mode("overwrite").save(str(out_dir / name))

    def timed(name: str, fn) -> float:  # type: ignore[no-untyped-def]
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        print(f"{name}: {best:.1f} s, {n / best:,.0f} rows/s", flush=True)
        return best

    wanted = set(args.only.split(",")) if args.only else {"ours", "transform", "pyfunc", "native"}
    results: dict[str, float] = {}
    if "ours" in wanted:
        results["mapInPandas + inplace_predict (ours)"] = timed(
            "ours", lambda: write(score_frame(delta_io.read(spark, src).limit(n) if args.rows
                                              else delta_io.read(spark, src), predictor), "ours"))

    from xgboost.spark import SparkXGBRegressor, SparkXGBRegressorModel

    sk = xgb.XGBRegressor()
    sk.load_model(bytearray(predictor.median.save_raw("json")))
    # A bare model has no param defaults (device, ...): take them from an estimator, as fit() would.
    spark_model = SparkXGBRegressor(features_col="features")._copyValues(SparkXGBRegressorModel(sk))
    assembler = VectorAssembler(inputCols=feats, outputCol="features", handleInvalid="keep")

    def transform() -> None:
        df = delta_io.read(spark, src)
        df = df.limit(n) if args.rows else df
        vec = assembler.transform(df.select("listing_id", *[F.col(c).cast("double") for c in feats]))
        write(spark_model.transform(vec).select("listing_id", "prediction"), "transform")

    if "transform" in wanted:
        results["SparkXGBRegressorModel.transform (median only)"] = timed("transform", transform)

    def pyfunc() -> None:
        df = delta_io.read(spark, src)
        df = df.limit(n) if args.rows else df
        cast = df.select("listing_id", *[F.col(c).cast("double") for c in feats])
        write(cast.withColumn("pred", udf(*[F.col(c) for c in feats])).select("listing_id", "pred.*"), "pyfunc")

    if "pyfunc" in wanted:
        udf = mlflow.pyfunc.spark_udf(spark, f"models:/{cfg.mlflow.model_name}/{version}",
                                      result_type="p10 double, p50 double, p90 double", env_manager="local")
        results["mlflow.pyfunc.spark_udf"] = timed("pyfunc", pyfunc)

    pdf = base.select(*[F.col(c).cast("double") for c in feats]).toPandas()
    X = pdf.to_numpy(dtype=np.float32, na_value=np.nan)
    predictor.median.set_param({"nthread": 2})
    results["native inplace_predict (in memory, 2 threads, p10/p50/p90)"] = timed(
        "native", lambda: predictor.predict(X))
    shutil.rmtree(out_dir, ignore_errors=True)
    native = results["native inplace_predict (in memory, 2 threads, p10/p50/p90)"]  # always measured
    out = Path(__file__).parent / "results" / f"{date.today()}-scoring-{n}"
    out.with_suffix(".json").write_text(json.dumps({"rows": n, "seconds": results, "features": len(feats)}, indent=2))
    lines = [f"# Scoring {n:,} rows x {len(feats)} features (best of {args.repeat})", "",
             "| method | seconds | rows/s | share of native throughput |", "|---|---|---|---|"]
    for name, sec in results.items():
        lines.append(f"| {name} | {sec:.1f} | {n / sec:,.0f} | {native / sec:.0%} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
