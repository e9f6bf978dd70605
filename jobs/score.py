"""score: price every active listing with the registry's `champion` into ml.price_suggestions.

* The model is the version alias `champion` points at, loaded by that version number (never a path a user
  passes in); when the workflow hands over the version promote decided on (``score.champion_version``),
  scoring refuses to run if the alias has moved since.
* Every active listing is scored, distributed: the predictor is broadcast once and applied to Arrow batches
  with ``inplace_predict`` (measured against the alternatives in ``bench/scoring.py``).
* Guardrails: suggestions stay within the category's floor and ceiling and are rounded to the price points
  sellers use.  Listings with a very wide range or little market support are flagged ``needs_review``.
* Rerunning for the same scoring date replaces that date's rows in one Delta transaction, never duplicates.
* A scoring summary (distribution, share flagged, drift against the previous scoring) goes to MLflow.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.errors import ModelGateError
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.price_model import monitoring
from pricing.price_model.predictor import score_frame
from pricing.price_model.promotion import load_version
from pricing.price_model.scoring import (
    OUTPUT,
    OUTPUT_DOCS,
    SUPPORT_COL,
    apply_guardrails,
    champion_version,
    log_scoring_summary,
    previous_scoring_date,
    scoring_stats,
)


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("score")
    s = cfg.score
    tracking.setup(cfg)
    name = cfg.mlflow.model_name
    version = champion_version(cfg)
    predictor = load_version(name, version)
    # The training set holds every listing's model input as of its listing time; active rows are the catalogue.
    feat_ref = table(cfg, catalog.TRAINING_SET)
    feat_version = delta_io.version(spark, feat_ref)
    feats = delta_io.read(spark, feat_ref, version=feat_version).where("status = 'active'")
    active = delta_io.read(spark, table(cfg, catalog.SILVER_LISTINGS)).where("status = 'active'").select(
        "listing_id", "current_price")
    catalogue = feats.join(active, "listing_id")
    n_active, n_catalogue = active.count(), catalogue.count()
    if n_catalogue != n_active:
        raise ModelGateError(f"{n_active - n_catalogue:,} of {n_active:,} active listings have no features in "
                             f"{feat_ref} @ v{feat_version}: run `pricing features` first (nothing was written)")
    preds = score_frame(catalogue, predictor).join(
        catalogue.select("listing_id", "category", SUPPORT_COL, "current_price"), "listing_id")
    now = datetime.now(UTC).replace(tzinfo=None)
    scoring_date = s.scoring_date or now.date()
    out = apply_guardrails(preds, s).select(
        "listing_id", "category", "suggested_price", "p10", "p50", "p90", "current_price", "needs_review",
        "review_reasons", F.lit(name).alias("model_name"), F.lit(version).alias("model_version"),
        F.lit(feat_version).cast("long").alias("feature_table_version"),
        F.lit(scoring_date).cast("date").alias("scoring_date"), F.lit(now).alias("scored_at"),
    )
    ref = table(cfg, OUTPUT)
    previous = previous_scoring_date(spark, ref, scoring_date)
    t0 = datetime.now(UTC)
    delta_io.overwrite(out, ref, replace_where=f"scoring_date = DATE'{scoring_date.isoformat()}'", docs=OUTPUT_DOCS)
    write_s = (datetime.now(UTC) - t0).total_seconds()
    # The version this write made (the slice is this job's own: one scoring run at a time); read back at it.
    out_version = delta_io.version(spark, ref)
    written = delta_io.read(spark, ref, version=out_version).where(
        F.col("scoring_date") == F.lit(scoring_date)).persist()
    stats = scoring_stats(written)
    if previous is not None:
        prev = delta_io.read(spark, ref).where(F.col("scoring_date") == F.lit(previous))
        stats.update({f"drift_{k}": v for k, v in monitoring.drift(
            prev.select(F.log("suggested_price").alias("x")).where("x IS NOT NULL"),
            written.select(F.log("suggested_price").alias("x")).where("x IS NOT NULL"), "x").items()})
    run_id = log_scoring_summary(cfg, written, stats, version, scoring_date, previous, feat_version, ref, out_version)
    written.unpersist()
    summary.rows_in["active_listings"] = n_active
    summary.rows_out[OUTPUT.logical] = int(stats["rows"])
    summary.tables[OUTPUT.logical] = out_version
    summary.info.update({
        "model": f"{name} v{version} (@champion)", "scoring_date": str(scoring_date),
        "features": f"{feat_ref} @ v{feat_version}",
        "needs_review": f"{stats['needs_review_share']:.1%} ({int(stats['needs_review'])} listings)",
        "throughput": f"{stats['rows'] / max(write_s, 1e-9):,.0f} rows/s (score + write)",
        "mlflow_run_id": run_id})
    if previous is not None:
        summary.info["drift"] = f"PSI {stats['drift_psi']:.3f}, mean log shift {stats['drift_mean_shift']:+.3f} " \
                                f"against {previous}"
    return summary.finish()
