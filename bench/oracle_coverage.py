"""How far can any range cover a band defined by the outcome?  The noise floor's oracle (each listing's true fair
value from the simulator, and the average seller markup given seller skill, fitted on the training window) with its
10th and 90th residual percentiles from the calibration window: its 80% coverage overall and per sold-price band,
on the train job's test rows.

    .venv/bin/python bench/oracle_coverage.py --set storage.root=/tmp/s200b [--set ...]

Needs a simulated world's `features.training_set` and `truth.listings` under that storage root.  Evaluation only:
it reads the simulator's truth.  Prints a table; the model's own coverage per band is in its run's
`segment_metrics.csv`.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from pricing.platform import catalog, delta_io
from pricing.platform.config import load_config
from pricing.platform.spark import get_spark
from pricing.platform.tables import table
from pricing.price_model.evaluation import PRICE_BANDS, band_label
from pricing.price_model.training import time_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    cfg = load_config("local", ap.parse_args().overrides)
    spark = get_spark(cfg, app_name="bench-oracle-coverage")
    split = time_split(delta_io.read(spark, table(cfg, catalog.TRAINING_SET)), cfg)
    truth = delta_io.read(spark, table(cfg, catalog.TRUTH_LISTINGS)).select(
        "listing_id", "log_fair_observable", "seller_skill")
    train, calib, test = (part.select("listing_id", "label").join(truth, "listing_id").toPandas()
                          for part in (split.train, split.calib, split.test))
    spark.stop()

    def log_price(d: pd.DataFrame) -> np.ndarray:
        return np.log(np.expm1(d["label"].to_numpy()))

    def design(d: pd.DataFrame) -> np.ndarray:
        return np.column_stack([np.ones(len(d)), d["seller_skill"].to_numpy()])

    markup, *_ = np.linalg.lstsq(design(train), log_price(train) - train["log_fair_observable"].to_numpy(), rcond=None)

    def oracle(d: pd.DataFrame) -> np.ndarray:
        return d["log_fair_observable"].to_numpy() + design(d) @ markup

    lo, hi = np.quantile(log_price(calib) - oracle(calib), [0.1, 0.9])
    inside = (log_price(test) >= oracle(test) + lo) & (log_price(test) <= oracle(test) + hi)
    labels = [band_label(a, b) for a, b in zip(PRICE_BANDS[:-1], PRICE_BANDS[1:], strict=True)]
    band = pd.cut(np.expm1(test["label"].to_numpy()), list(PRICE_BANDS), labels=labels, right=False)
    per_band = pd.DataFrame({"band": band, "covered": inside}).groupby("band", observed=True)["covered"].agg(
        ["mean", "size"])
    print(f"oracle range: overall coverage {inside.mean():.3f} on {len(test):,} test rows")
    print("| sold-price band | coverage | rows |\n|---|---|---|")
    for name, row in per_band.iterrows():
        print(f"| {name} | {row['mean']:.3f} | {int(row['size']):,} |")


if __name__ == "__main__":
    main()
