"""The simulator: identical output whatever the partitioning, and marginals calibrated to published
secondhand-marketplace statistics (the Mercari Price Suggestion data, 1.48M listings)."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from pricing.platform.config import Config
from pricing.world.export import export_lines
from pricing.world.simulator import simulate

# Mercari: median price about 17, mean about 27, sd of log1p(price) about 0.75, about 43% without a
# brand, condition mix 1..5 roughly 43/25/29/2/0.2 %.  Tolerances are what 20k simulated sales can hold.
MERCARI = {"median": (17.0, 2.5), "mean": (27.0, 4.0), "sd_log1p": (0.75, 0.06), "no_brand": (0.43, 0.02)}
CONDITION_MIX = {"new_with_tags": 0.43, "like_new": 0.25, "good": 0.29, "used": 0.02, "fair": 0.002}


def _world(cfg: Config, partitions: int) -> Config:
    return cfg.with_overrides(["simulator.n_listings=1500", "simulator.days=60", "simulator.n_sellers=200",
                               "simulator.n_brands=50", "simulator.bad_record_rate=0.05",
                               f"simulator.partitions={partitions}"])


@pytest.mark.slow
def test_same_seed_same_output_whatever_the_partitioning(spark, cfg) -> None:
    a, b = simulate(spark, _world(cfg, 1).simulator), simulate(spark, _world(cfg, 5).simulator)
    assert a.listings.rdd.getNumPartitions() != b.listings.rdd.getNumPartitions()
    assert_df_equality(a.truth_listings, b.truth_listings, ignore_row_order=True)
    for event_type in a.events:
        lines_a, faults_a = export_lines(a.events[event_type], event_type, 42, 0.05)
        lines_b, faults_b = export_lines(b.events[event_type], event_type, 42, 0.05)
        assert_df_equality(lines_a, lines_b, ignore_row_order=True)
        assert_df_equality(faults_a, faults_b, ignore_row_order=True)
    other = simulate(spark, _world(cfg, 1).with_overrides(["simulator.seed=43"]).simulator)
    assert other.truth_listings.exceptAll(a.truth_listings).count() == 1500
    for s in (a, b, other):
        s.listings.unpersist()


@pytest.fixture(scope="module")
def sales(spark, cfg):
    sim = simulate(spark, cfg.with_overrides(["simulator.n_listings=25000", "simulator.days=730"]).simulator)
    yield sim.listings
    sim.listings.unpersist()


def test_sold_prices_match_published_marginals(sales) -> None:
    sold = sales.where("is_sold")
    row = sold.select(
        F.percentile_approx("sold_price", 0.5, 10_000).alias("median"), F.mean("sold_price").alias("mean"),
        F.stddev(F.log1p("sold_price")).alias("sd_log1p"),
        F.mean(F.col("brand").isNull().cast("double")).alias("no_brand"),
    ).first().asDict()
    for name, (target, tol) in MERCARI.items():
        assert abs(row[name] - target) <= tol, f"{name}: simulated {row[name]:.3f}, Mercari {target} ± {tol}"


def test_condition_mix_matches_published_marginals(sales) -> None:
    n = sales.count()
    mix = {r["condition"]: r["count"] / n for r in sales.groupBy("condition").count().collect()}
    assert set(mix) == set(CONDITION_MIX)
    for cond, share in CONDITION_MIX.items():
        assert abs(mix[cond] - share) <= max(0.015, share * 0.5), f"{cond}: {mix[cond]:.4f} vs {share}"


def test_text_only_signals_reach_the_text(sales) -> None:
    text = F.lower(F.concat_ws(" ", "title", "description"))
    for flag, word in (("is_deadstock", "deadstock"), ("is_rare", "rare"), ("has_stain", "stain")):
        with_flag = sales.where(F.col(flag))
        assert with_flag.count() > 0
        # Present in (almost) every flagged listing's text, and never without the flag.
        assert with_flag.where(~text.contains(word)).count() <= 0.07 * with_flag.count()
        assert sales.where(~F.col(flag) & text.contains(word)).count() == 0


def test_canonical_products_are_one_item_titled_many_ways(sales) -> None:
    inst = sales.where(F.col("product_id").isNotNull())
    assert sales.where(F.col("product_id").isNotNull() & F.col("brand").isNull()).count() == 0
    share = inst.count() / sales.where(F.col("brand").isNotNull()).count()
    assert abs(share - 0.35) <= 0.02, f"product instances are {share:.3f} of branded listings"
    # One brand, type, colourway, model line and price effect per product; sizes and titles vary.
    per = inst.groupBy("product_id").agg(
        *[F.countDistinct(c).alias(c) for c in ("brand", "subcategory", "product_colour", "line_name",
                                                "product_effect", "size", "title")], F.count("*").alias("n"))
    fixed = per.where("brand > 1 or subcategory > 1 or product_colour > 1 or line_name > 1 or product_effect > 1")
    assert fixed.count() == 0
    big = per.where("n >= 20").agg(F.avg(F.col("title") / F.col("n")), F.avg("size")).first()
    assert big[0] > 0.6 and big[1] > 5  # most instances are titled their own way, in many sizes
    # The model line is in almost every title (typos and the odd omission aside); the colour attribute is the
    # colourway's in almost every listing (now and then a neighbouring palette colour).
    named = inst.where(F.lower("title").contains(F.lower(F.split("line_name", " ")[0]))).count() / inst.count()
    assert 0.93 <= named <= 0.99
    assert inst.where(F.col("colour") == F.col("product_colour")).count() / inst.count() >= 0.94
