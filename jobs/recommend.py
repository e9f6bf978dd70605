"""recommend: for every active listing, the price that serves the seller's objective under the demand model, within
guardrails -> ml.price_recommendations; on simulated data, every policy against the true demand ->
ml.recommendation_eval.

* Models: the demand model's and the price model's `champion` versions, loaded by version number; when the
  workflow hands over the versions its tasks decided on (``recommend.demand_version``,
  ``score.champion_version``), recommend refuses to run if an alias has moved since.
* Guardrails: the category's floor and ceiling (``score.category_bounds``, else ``score.min_price`` /
  ``max_price``), at most ``recommend.max_change`` away from the current price (floor and ceiling win when the
  two disagree), and price points (``score.price_points``).  Candidates are ``grid_size`` log-spaced prices
  over the allowed band, each rounded to a price point inside it, so every candidate is allowed.
* Objective (``recommend.objective``): ``continuation`` (default: expected revenue within the horizon plus
  ``continuation_discount`` x the expected revenue of later sales, so an unsold item keeps its later value),
  ``revenue`` (within the horizon only: price x P(sold) x realisation) or ``sell_through`` (the highest P(sold)
  keeping ``min_revenue_share`` of the best expected revenue).
* The price is the listing's price from listing onwards, as the demand model and the simulator's true demand
  read it (the marketplace's day-14 and day-28 drops follow).
* Distributed: the demand model is broadcast once and each Arrow batch is scored as matrices (``mapInPandas``).
* Rerunning a scoring date replaces that date's rows, in both tables, in one Delta transaction each.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pricing.demand_model.estimator import DemandPredictor, recommend_frame
from pricing.demand_model.training import exploration_design, load_demand_version, with_demand_inputs
from pricing.optimisation.evaluation import BASELINES, POLICIES, check_evaluable
from pricing.optimisation.recommend import (
    EVAL_OUTPUT,
    OUTPUT,
    OUTPUT_DOCS,
    catalogue,
    demand_champion,
    evaluate_policies,
    headline,
    log_recommend_run,
    recommendation_stats,
    replace_date,
    with_band,
    with_candidates,
    with_reasons,
)
from pricing.platform import catalog, delta_io, tracking
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError
from pricing.platform.rows import first_value
from pricing.platform.summary import JobSummary
from pricing.platform.tables import table
from pricing.price_model.predictor import score_frame
from pricing.price_model.promotion import load_version
from pricing.price_model.scoring import SUPPORT_COL, apply_guardrails, champion_version


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("recommend")
    r = cfg.recommend
    tracking.setup(cfg)
    demand_name, price_name = cfg.mlflow.demand_model_name, cfg.mlflow.model_name
    demand_v = demand_champion(cfg)
    price_v = champion_version(cfg)
    predictor: DemandPredictor = load_demand_version(demand_name, demand_v)
    design = exploration_design(cfg)
    if predictor.identification == "exploration" and design is None:
        raise ConfigError(f"{demand_name} v{demand_v} was identified by price exploration, but this export records "
                          f"no experiment: the listings' own prices (before their nudge) cannot be recovered")
    objective = r.objective_spec().at(predictor.horizon_days)
    evaluate = r.evaluate and delta_io.exists(spark, table(cfg, catalog.TRUTH_LISTINGS))
    judged = tuple(o.at(predictor.horizon_days) for o in r.judged_specs()) if evaluate else ()
    if objective.kind != "sell_through" and objective.name not in {o.name for o in judged} and evaluate:
        judged = (objective, *judged)
    if evaluate:
        check_evaluable(predictor.horizon_days)
        for o in judged:
            assert o.horizon_days is not None
            check_evaluable(o.horizon_days, f"objective {o.name}'s")
    if (objective.kind == "continuation" or objective.horizon_days != predictor.horizon_days
            or any(o.name != f"revenue_{predictor.horizon_days}d" for o in judged)) and not predictor.exposure_knots:
        raise ConfigError(f"{demand_name} v{demand_v} has no survival layer (fitted without a price experiment), "
                          f"so it values sales only within its {predictor.horizon_days}-day horizon: set "
                          f"recommend.objective=revenue and recommend.evaluate_objectives=[revenue]")
    cat, feat_ref, feat_version, n_active = catalogue(spark, cfg)
    # Time on the market so far (its survival is evidence about the item); the latest listing stands for now,
    # as in the demand job (simulated timelines are fixed).
    now_ref = first_value(delta_io.read(spark, feat_ref, version=feat_version).agg(F.max("as_of")))
    cat = (cat.transform(with_demand_inputs(design, predictor.segment_cols))
           .withColumn("age_days", F.greatest(F.lit(0.0), (F.lit(now_ref).cast("timestamp").cast("double")
                                                            - F.col("created_at").cast("double")) / 86400.0))
           .withColumn("listed_price", F.col("asking_price")))
    suggestions = apply_guardrails(score_frame(cat, load_version(price_name, price_v)).join(
        cat.select("listing_id", "category", SUPPORT_COL), "listing_id"), cfg.score).select(
        "listing_id", "suggested_price")
    inputs = (cat.transform(with_band(cfg.score, r.max_change))
              .transform(with_candidates(r.grid_size, cfg.score.price_points)))
    recs = recommend_frame(inputs, predictor, objective, r.min_revenue_share, with_naive=evaluate and r.compare_naive,
                           judged=judged)
    now = datetime.now(UTC).replace(tzinfo=None)
    scoring_date = r.scoring_date or now.date()
    keep = ["listing_id", "department", "category", "current_price", "created_at", "floor", "ceiling", "band_lo",
            "band_hi", "lo_by", "hi_by"]
    full = (recs.join(inputs.select(*keep), "listing_id").join(suggestions, "listing_id")
            .transform(with_reasons(r)).persist())
    out = full.select(
        "listing_id", "category", "current_price", F.round("recommended_price", 2).alias("recommended_price"),
        "price_change", "p_sale", "expected_revenue", "expected_value", "p_sale_current", "expected_revenue_current",
        "expected_value_current", "elasticity", "reason_code", "limited_by", F.lit(objective.name).alias("objective"),
        "suggested_price",
        F.lit(demand_name).alias("model_name"), F.lit(demand_v).alias("model_version"),
        F.lit(price_name).alias("price_model_name"), F.lit(price_v).alias("price_model_version"),
        F.lit(feat_version).cast("long").alias("feature_table_version"),
        F.lit(scoring_date).cast("date").alias("scoring_date"), F.lit(now).alias("scored_at"))
    ref = table(cfg, OUTPUT)
    t0 = datetime.now(UTC)
    summary.tables[OUTPUT.logical] = replace_date(spark, out, ref, scoring_date, docs=OUTPUT_DOCS)
    write_s = (datetime.now(UTC) - t0).total_seconds()
    written = delta_io.read(spark, ref).where(F.col("scoring_date") == F.lit(scoring_date))
    stats = recommendation_stats(written)
    evaluation = None
    if evaluate:
        evaluation = evaluate_policies(spark, cfg, full, judged, demand_v, scoring_date, now)
        summary.tables[EVAL_OUTPUT.logical] = evaluation[1]
    primary = objective.name if objective.kind != "sell_through" else judged[0].name if judged else None
    run_id = log_recommend_run(cfg, stats, evaluation[0] if evaluation else None, demand_v, price_v, scoring_date,
                               primary)
    full.unpersist()
    summary.rows_in["active_listings"] = n_active
    summary.rows_out[OUTPUT.logical] = int(stats["rows"])
    summary.info.update({
        "demand_model": f"{demand_name} v{demand_v} (@champion, {predictor.identification})",
        "price_model": f"{price_name} v{price_v} (@champion)", "scoring_date": str(scoring_date),
        "features": f"{feat_ref} @ v{feat_version}", "objective": objective.name,
        "reasons": {k.removeprefix("reason_").removesuffix("_share"): f"{v:.1%}" for k, v in stats.items()
                    if k.startswith("reason_") and k.endswith("_share")},
        "at_a_guardrail": f"{stats['limited_share']:.1%}",
        "model_revenue_uplift": f"{stats['model_revenue_uplift']:+.1%} (expected by the demand model)",
        "throughput": f"{stats['rows'] / max(write_s, 1e-9):,.0f} rows/s (recommend + write)",
        "mlflow_run_id": run_id})
    if evaluation is not None and primary is not None:
        overall = headline(evaluation[0], primary)
        summary.info["judged_by"] = primary
        summary.info["vs_oracle"] = {p: round(float(overall[f"{p}_ratio"]), 4) for p in POLICIES}
        summary.info["flat_baselines_vs_oracle"] = {p: round(float(overall[f"{p}_ratio"]), 4) for p in BASELINES}
        summary.info["vs_free_oracle"] = {p: round(float(overall[f"{p}_ratio_free"]), 4)
                                          for p in POLICIES}
        summary.info["by_objective"] = {
            o.name: (f"optimised {row['optimised_ratio']:.4f}, own {row['own_ratio']:.4f}, best flat "
                     f"{row['best_flat']} {row['best_flat_ratio']:.4f} ({row['optimised_margin_over_best_flat'] * 100:+.1f}"
                     f" points); sold: optimised {row['optimised_sell_through']:.3f}, own {row['own_sell_through']:.3f}")
            for o in judged for row in [headline(evaluation[0], o.name)]}
    summary.task_values["recommended"] = int(stats["rows"])
    return summary.finish()
