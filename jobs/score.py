"""score: price every active listing with the registry's `champion` into ml.price_suggestions.

Rerunning for the same scoring date replaces that date's rows (Delta replaceWhere), never duplicates.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mlflow.tracking import MlflowClient
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from jobs.promote import load_version
from pricing import delta_io, tracking
from pricing.config import Config
from pricing.errors import ModelGateError
from pricing.model import score_frame
from pricing.summary import JobSummary
from pricing.tables import table


def round_to_price_points(col: Column, points: tuple[float, ...]) -> Column:
    """Nearest price of the form whole + ending (e.g. 12.00, 12.50, 11.99), never below 0."""
    base = F.floor(col)
    cands = [base - 1 + e for e in points] + [base + e for e in points] + [base + 1 + e for e in points]
    best = cands[0]
    for c in cands[1:]:
        best = F.when(F.abs(c - col) < F.abs(best - col), c).otherwise(best)
    return F.round(F.greatest(best, F.lit(0.0)), 2)


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("score")
    tracking.setup(cfg)
    name = cfg.mlflow.model_name
    version = tracking.alias_version(MlflowClient(), name, tracking.CHAMPION)
    if version is None:
        raise ModelGateError(f"model {name!r} has no `champion` alias: run `pricing train` and `pricing promote`")
    model = load_version(name, version)
    # The training set holds every listing's model input as of its listing time; active rows are the catalogue.
    feat_ref = table(cfg, "features.training_set")
    feat_version = delta_io.version(spark, feat_ref)
    feats = delta_io.read(spark, feat_ref, version=feat_version)
    active = delta_io.read(spark, table(cfg, "silver.listings")).where("status = 'active'").select(
        "listing_id", "current_price")
    catalogue = feats.where("status = 'active'").join(active, "listing_id")
    preds = score_frame(catalogue, bytes(model.booster.save_raw("json")), model.features, model.intervals)
    now = datetime.now(UTC).replace(tzinfo=None)
    scoring_date = now.date().isoformat()
    lo, hi = cfg.score.min_price, cfg.score.max_price
    clamp = lambda c: F.least(F.greatest(F.col(c), F.lit(lo)), F.lit(hi))  # noqa: E731
    out = preds.join(active, "listing_id").select(
        "listing_id",
        round_to_price_points(clamp("p50"), cfg.score.price_points).alias("suggested_price"),
        F.round(clamp("p10"), 2).alias("p10"), F.round(clamp("p50"), 2).alias("p50"),
        F.round(clamp("p90"), 2).alias("p90"),
        "current_price",
        F.lit(name).alias("model_name"), F.lit(version).alias("model_version"),
        F.lit(feat_version).cast("long").alias("feature_table_version"),
        F.lit(scoring_date).cast("date").alias("scoring_date"), F.lit(now).alias("scored_at"),
    )
    ref = table(cfg, "ml.price_suggestions")
    if delta_io.exists(spark, ref):
        delta_io.overwrite(out, ref, replace_where=f"scoring_date = '{scoring_date}'")
    else:
        delta_io.overwrite(out, ref)
    written = delta_io.read(spark, ref).where(F.col("scoring_date") == F.lit(scoring_date))
    summary.rows_in["active_listings"] = active.count()
    summary.rows_out["ml.price_suggestions"] = written.count()
    summary.tables["ml.price_suggestions"] = delta_io.version(spark, ref)
    summary.info.update({"model": f"{name} v{version} (@champion)", "scoring_date": scoring_date,
                         "features": f"{feat_ref} @ v{feat_version}"})
    return summary.finish()


def main(argv: list[str] | None = None) -> int:
    from pricing.cli import main as cli_main

    return cli_main(["score", *(argv or [])])
