"""Distribution summaries and drift between two scorings (population stability index)."""

from __future__ import annotations

import numpy as np
from pyspark.ml.feature import Bucketizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricing.platform.rows import first_value

PSI_BINS = 10
EPS = 1e-4
"""Floor for a bin's share, so an empty bin gives a large but finite PSI."""


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two histograms over the same bins: sum (a - e) * ln(a / e) over shares.
    Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 a shift worth a look."""
    e = np.maximum(np.asarray(expected, float) / max(np.sum(expected), 1), EPS)
    a = np.maximum(np.asarray(actual, float) / max(np.sum(actual), 1), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def quantiles(df: DataFrame, col: str, probs: tuple[float, ...]) -> list[float]:
    return [float(x) for x in df.approxQuantile(col, list(probs), 0.001)]


def drift(previous: DataFrame, current: DataFrame, col: str, bins: int = PSI_BINS) -> dict[str, float]:
    """PSI of ``col`` in ``current`` against ``previous``, over ``previous``'s quantile bins, and the shift
    of the mean.  Counts are computed in Spark; only ``bins`` numbers per side reach the driver."""
    edges = sorted(set(quantiles(previous, col, tuple(i / bins for i in range(1, bins)))))
    splits = [-float("inf"), *edges, float("inf")]

    def counts(df: DataFrame) -> np.ndarray:
        b = Bucketizer(splits=splits, inputCol=col, outputCol="_bin", handleInvalid="skip")
        got = {int(r["_bin"]): r["n"] for r in b.transform(df.select(col)).groupBy("_bin")
               .agg(F.count("*").alias("n")).collect()}
        return np.array([got.get(i, 0) for i in range(len(splits) - 1)], dtype=float)

    means = [first_value(d.agg(F.avg(col))) for d in (previous, current)]
    return {"psi": psi(counts(previous), counts(current)), "mean_shift": float(means[1] - means[0])}
