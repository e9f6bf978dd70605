"""Marketplace simulator with a known ground truth, computed in Spark.

Every random draw is a hash of (seed, purpose, id), never ``rand()`` on a partition, so the same seed
gives the same rows whatever the partition or core count.  Nothing is collected to the driver except
the small dimension tables (categories, brands).

The generative story, per listing:
  fair value (log) = category base + brand tier + brand + condition + material + style + text-only
                     signals (deadstock, rare, stain, bundle) + item noise (hidden)
  asking price     = fair value x seller markup; experienced sellers price closer to fair value and
                     sell faster (confounding, as on a real marketplace); the marketplace's price
                     exploration multiplies a random share of asking prices by exp(U(-m, m))
  daily sale hazard = base x exp(-elasticity x log(price / fair value)); unsold items drop 10% at
                     day 14 and 28; sold price = price at sale less an accepted offer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.platform.config import SimulatorConfig
from pricing.sources.exploration import price_nudge, uniform
from pricing.world import catalogue as cd
from pricing.world import hard as hw

Uniform = Callable[[str], Column]
"""A seeded U(0,1) column per purpose string (the row's ids fixed): ``u("offer")``."""

DROP_DAYS = (14, 28)
HORIZON_DAYS = 60
DROP_FACTOR = 0.9
MAX_HAZARD = 0.9
"""Ceiling of the daily sale probability."""
OFFER_SHARE = 0.4
"""Share of sales that close on an accepted offer."""
OFFER_MAX_DISCOUNT = 0.15
"""An accepted offer's discount is U(0, this) off the asking price."""
# Calibrates the overall price level to published secondhand-marketplace medians (about 17-20).
PRICE_LEVEL = -0.36
UNBRANDED_SHARE = 0.43
COLOUR_WEIGHTS = (10, 6, 5, 3, 4, 3, 3, 3, 3, 3, 2, 2, 1, 1, 1)
MATERIAL_WEIGHTS = (5, 3, 4, 2, 1, 1, 0.5, 0.3, 1, 0.5)
PRODUCT_POPULARITY = 1.5
"""Product index = floor(n_products * u ** this): a long tail (the top product has about 5% of the
instances at 100 products, 0.25% at 8,000)."""
NUMBERED_FAMILY_SHARE = 0.4
"""Share of model families whose two lines share a name and differ only in model number."""
LINE_EFFECT_SD, COLOURWAY_EFFECT_SD = 0.3, 0.1
"""A model line's and a colourway's price effects (log scale), shared by every instance of the product."""



def normal(seed: int, salt: str, *cols: Column | str) -> Column:
    """Deterministic N(0,1) by Box-Muller over two hashed uniforms."""
    u1 = uniform(seed, salt + ":a", *cols)
    u2 = uniform(seed, salt + ":b", *cols)
    return F.sqrt(-2.0 * F.log(u1)) * F.cos(2.0 * math.pi * u2)


def pick(values: list, weights: list[float], u: Column) -> Column:
    """Categorical draw: the value whose cumulative-weight bin holds ``u``."""
    total = float(sum(weights))
    cum, acc = [], 0.0
    for w in weights[:-1]:
        acc += w / total
        cum.append(acc)
    idx = F.size(F.filter(F.array(*[F.lit(c) for c in cum]), lambda c: c < u))
    return F.element_at(F.array(*[F.lit(v) for v in values]), idx + 1)



ADOPTION_SELLER_SD = 1.0
"""encouragement: sd of a seller's own log-odds of adopting a suggestion, around simulator.suggestion_adoption."""
ADOPTION_SELECTION = 1.0
"""encouragement: sellers know their item better than its listing shows (``item_noise``).  Per sd of it, the
log-odds of adopting a suggested raise go up by this much and of a suggested cut down by as much: a seller
takes a cut on an item worse than it looks, a raise on one better.  Adopters are therefore not like the rest,
and comparing them with non-adopters is biased; the assignment itself stays random."""


def _adopted(cfg: SimulatorConfig, u: Uniform) -> Callable[[DataFrame], DataFrame]:
    """``suggestion_adopted``: whether the listing's asking price carries its ``suggestion`` (never outside the
    experiment; always under ``exploration: nudge``; the seller's choice under ``encouragement``)."""
    def step(df: DataFrame) -> DataFrame:
        treated = F.col("suggestion") != 0
        if cfg.exploration == "nudge":
            return df.withColumn("suggestion_adopted", treated)
        rate = cfg.suggestion_adoption
        log_odds = (math.log(rate / (1.0 - rate)) + ADOPTION_SELLER_SD * normal(cfg.seed, "adopt", "seller_id")
                    + ADOPTION_SELECTION * F.signum(F.col("suggestion")) * F.col("_z_item"))
        return df.withColumn("suggestion_adopted", treated & (u("adopt") < 1.0 / (1.0 + F.exp(-log_odds))))

    return step


@dataclass(frozen=True)
class SimulatedData:
    events: dict[str, DataFrame]
    """event type -> events with an ``event_date`` column (landing partitioning)."""
    truth_listings: DataFrame
    truth_categories: DataFrame
    end_time: datetime
    listings: DataFrame
    """The persisted listing-level frame; ``unpersist()`` it when done."""


TRUTH_LISTINGS_DOCS = {
    "listing_id": "Simulated listing: one row each (the listing_id of its landing events and silver.listings).",
    "log_fair_value": "True fair value, natural log of GBP: log_fair_observable + item_noise; demand prices "
                      "against it.",
    "log_fair_observable": "The part of the log fair value the listing's attributes determine (category, brand, "
                           "condition, material, style, text signals, product): what a perfect model could learn.",
    "item_noise": "Hidden item-level term of the log fair value (0.28 x N(0, 1)): no attribute reveals it.",
    "ask_markup": "Seller's log markup of the asking price over the fair value, before price_nudge: list price = "
                  "exp(log_fair_value + ask_markup + price_nudge), rounded, at least 2.",
    "seller_skill": "Seller skill in [0, 1] (experience years / 5, capped at 1): lowers the markup and its spread, "
                    "raises demand.",
    "elasticity": "Price elasticity of demand (the leaf category's): the daily sale hazard scales by "
                  "exp(-elasticity x log(price / fair value)).",
    "base_hazard": "Daily sale probability at the fair value before demand_bonus (the leaf category's); the "
                   "hazard is capped at 0.9.",
    "demand_bonus": "Seller's multiplier on the daily sale hazard: 1 + 0.6 x seller_skill.",
    "is_deadstock": "Unworn old stock (new_with_tags items only): raises the fair value; title and description "
                    "may say so.",
    "is_rare": "Rare item: raises the fair value; title and description may say so.",
    "has_stain": "Stained (good, used or fair items only): lowers the fair value; the description may say so.",
    "is_bundle": "Bundle of several items: raises the fair value; title and description may say so.",
    "price_nudge": "Price-exploration log multiplier on the asking price: U(-max, max) for the nudged share of "
                   "listings, exactly 0 for the rest (simulator.price_nudge_share, price_nudge_max).",
    "suggestion": "The experiment's log multiplier for the listing: the nudge it set (simulator.exploration nudge) or "
                  "suggested (encouragement); 0 outside the experiment.",
    "suggestion_adopted": "Whether the asking price carries the suggestion: always within a nudge experiment; "
                          "the seller's choice under encouragement (logged by the marketplace as well).",
    "product_id": "Canonical product the listing is an instance of (ground truth of product matching); null when "
                  "none.",
    "product_effect": "Log fair-value effect of the product's model line and colourway, shared by its instances; "
                      "0 when no product.",
}
"""Column -> description of ``truth.listings`` (``SimulatedData.truth_listings``)."""

TRUTH_CATEGORIES_DOCS = {
    "leaf_id": "Leaf category: one row each.",
    "department": "First level of the category path (as in silver.listings).",
    "category": "Second level of the category path.",
    "subcategory": "Third level of the category path.",
    "base_price": "Category base price in GBP: its log, plus the marketplace price level and a hidden leaf "
                  "effect, starts every listing's log fair value.",
    "elasticity": "Price elasticity of demand, U(2, 5): the daily sale hazard scales by "
                  "exp(-elasticity x log(price / fair value)).",
    "base_hazard": "Daily sale probability at the fair value before the seller's demand bonus, U(0.02, 0.06).",
}
"""Column -> description of ``truth.categories`` (``SimulatedData.truth_categories``)."""


def _categories(spark: SparkSession, seed: int) -> DataFrame:
    rows = []
    for leaf_id, dept, cat, sub, base in cd.category_tree():
        rows.append((leaf_id, dept, cat, sub, base, cd.SEASONAL_PEAK_MONTH.get(cat, 0)))
    schema = "leaf_id int, department string, category string, subcategory string, base_price double, peak_month int"
    df = spark.createDataFrame(rows, schema)
    return df.select(
        "*",
        (2.0 + 3.0 * uniform(seed, "elasticity", "leaf_id")).alias("elasticity"),
        (0.02 + 0.04 * uniform(seed, "hazard", "leaf_id")).alias("base_hazard"),
        (0.15 * normal(seed, "leafeff", "leaf_id")).alias("leaf_effect"),
    )


_SYL = ("ka", "lo", "mi", "ra", "ve", "zo", "ne", "ta", "sh", "ri", "po", "lu", "xa", "be", "do", "fi",
        "gu", "ho", "ja", "ke", "ly", "mo", "nu", "qi", "sa", "tu", "wi", "yo")


def brand_name(i: int) -> str:
    a, b, c = _SYL[i % 28], _SYL[(i // 28) % 28], _SYL[(i // 784) % 28]
    name = (a + b + (c if i >= 784 else "")).capitalize()
    return name + ("" if i < 2000 else f" {i // 2000}")


def _brands(spark: SparkSession, cfg: SimulatorConfig) -> DataFrame:
    names = spark.createDataFrame([(i, brand_name(i)) for i in range(cfg.n_brands)], "brand_idx int, brand string")
    # Popular brands (low index) are mostly mid-market; the long tail spans budget to luxury.
    tier = pick([1, 2, 3, 4, 5], [0.26, 0.36, 0.21, 0.11, 0.06], uniform(cfg.seed, "tier", "brand_idx"))
    return names.select(
        "*",
        tier.alias("brand_tier"),
        (0.3 * normal(cfg.seed, "brandeff", "brand_idx")).alias("brand_effect"),
    ).withColumn(
        "tier_effect", F.element_at(F.array(*[F.lit(x) for x in (-0.4, 0.0, 0.4, 1.0, 2.0)]), F.col("brand_tier"))
    )


def n_products(cfg: SimulatorConfig) -> int:
    """Canonical products in the world: ``simulator.listings_per_product`` instances each on average, so the
    number of products grows with the catalogue (a bigger marketplace lists more distinct items)."""
    instances = cfg.n_listings * (1 - UNBRANDED_SHARE) * cfg.product_share
    return max(cd.COLOURWAYS, round(instances / cfg.listings_per_product))


def _with_products(cfg: SimulatorConfig, leaves: list, leaf_w: list[float]) -> Callable[[DataFrame], DataFrame]:
    """A ``product_share`` of branded listings become instances of a canonical product: brand, model line,
    colourway and type.  Products ``3k .. 3k+2`` are the colourways of model line ``k``, and lines ``2f`` and
    ``2f+1`` form family ``f``: the family fixes the brand (drawn like any listing's) and the leaf category
    (fashion departments only); a line fixes the material and the name, a colourway the colour.  In a
    *numbered* family (``NUMBERED_FAMILY_SHARE``) both lines share one name and differ in model number
    (``Vemora 90``, ``Vemora 95``): the hardest negatives of product matching, with other colourways.  Size,
    condition and seller stay the listing's own.  The product's price effect (line + colourway) is shared by
    its instances.  ``product_id`` goes to ``truth.*`` only."""
    s = cfg.seed
    fashion = [(leaf[0], w) for leaf, w in zip(leaves, leaf_w, strict=True) if leaf[1] in ("women", "men")]
    n_prod = n_products(cfg)
    n_suffix = len(cd.LINE_SUFFIXES)
    hard = cfg.world == "hard"

    def step(df: DataFrame) -> DataFrame:
        line_u = lambda salt: uniform(s, salt, "_line_id")  # noqa: E731
        family_u = lambda salt: uniform(s, salt, "_family_id")  # noqa: E731
        # Names (and, in the hard world, a namesake family's leaf) come from the naming family and line.
        name_line_u, name_family_u = line_u, family_u
        is_product = F.col("brand_idx").isNotNull() & (uniform(s, "is_product", "listing_id") < cfg.product_share)
        product = F.floor(F.lit(n_prod) * F.pow(uniform(s, "product", "listing_id"), PRODUCT_POPULARITY))
        df = (df.withColumn("product_id", F.when(is_product, product).cast("long"))
              .withColumn("_line_id", F.floor(F.col("product_id") / cd.COLOURWAYS).cast("long"))
              .withColumn("_family_id", F.floor(F.col("_line_id") / 2).cast("long")))
        if hard:
            # A namesake family is named like the family before it (another brand, the same leaf).
            namesake = (family_u("hard_namesake") < hw.NAMESAKE_SHARE) & (F.col("_family_id") > 0)
            df = (df.withColumn("_namesake", namesake)
                  .withColumn("_name_family_id", F.when(namesake, F.col("_family_id") - 1)
                              .otherwise(F.col("_family_id")))
                  .withColumn("_name_line_id", F.col("_name_family_id") * 2 + F.pmod(F.col("_line_id"), F.lit(2))))
            name_line_u = lambda salt: uniform(s, salt, "_name_line_id")  # noqa: E731
            name_family_u = lambda salt: uniform(s, salt, "_name_family_id")  # noqa: E731
        numbered = name_family_u("family_numbered") < NUMBERED_FAMILY_SHARE
        syl = F.array(*[F.lit(x) for x in _SYL])

        def word(u: Uniform) -> Column:
            return F.initcap(F.concat(*[F.element_at(syl, (F.floor(u(f"syl{i}") * len(_SYL)) + 1).cast("int"))
                                        for i in range(3)]))

        suffixes = F.array(*[F.lit(x) for x in cd.LINE_SUFFIXES])
        # The two lines of a numbered family take model numbers half the list apart: never the same one.
        family_number = F.element_at(suffixes, (F.pmod(F.floor(name_family_u("family_suffix") * n_suffix)
                                                       + F.pmod(F.col("_line_id"), F.lit(2)) * (n_suffix // 2),
                                                       F.lit(n_suffix)) + 1).cast("int"))
        own_number = F.when(name_line_u("line_has_suffix") < 0.5,
                            pick(list(cd.LINE_SUFFIXES), [1.0] * n_suffix, name_line_u("line_suffix")))
        name = F.when(numbered, F.concat_ws(" ", word(name_family_u), family_number)).otherwise(
            F.concat_ws(" ", word(name_line_u), own_number))
        first_colour = pick(list(range(len(cd.COLOURS))), list(COLOUR_WEIGHTS), line_u("line_colour"))
        colour_idx = F.pmod(first_colour + F.pmod(F.col("product_id"), F.lit(cd.COLOURWAYS)) * cd.COLOURWAY_STEP,
                            F.lit(len(cd.COLOURS)))
        colourway = F.element_at(F.array(*[F.lit(c) for c in cd.COLOURS]), (colour_idx + 1).cast("int"))
        near = F.element_at(F.create_map(*[F.lit(x) for kv in cd.NEAR_COLOUR.items() for x in kv]), colourway)
        line = lambda col: F.when(F.col("product_id").isNotNull(), col)  # noqa: E731
        brand = F.floor(F.lit(cfg.n_brands) * F.pow(family_u("family_brand"), 3.0)).cast("int")
        leaf = pick([f[0] for f in fashion], [f[1] for f in fashion], family_u("family_leaf"))
        if hard:
            # A namesake never shares its naming family's brand.
            named_by = F.floor(F.lit(cfg.n_brands) * F.pow(name_family_u("family_brand"), 3.0)).cast("int")
            brand = F.when(F.col("_namesake") & (brand == named_by), F.pmod(brand + 1, F.lit(cfg.n_brands)))\
                .otherwise(brand)
            leaf = pick([f[0] for f in fashion], [f[1] for f in fashion], name_family_u("family_leaf"))
        out = (
            df.withColumn("line_name", line(name))
            .withColumn("product_colour", line(colourway))
            .withColumn("product_effect", F.coalesce(line(LINE_EFFECT_SD * normal(s, "line_effect", "_line_id")
                                                          + COLOURWAY_EFFECT_SD * normal(s, "cw_effect", "product_id")),
                                                     F.lit(0.0)))
            .withColumn("brand_idx", F.coalesce(line(brand), F.col("brand_idx")))
            .withColumn("leaf_id", F.coalesce(line(leaf), F.col("leaf_id")))
            .withColumn("mat_idx", F.coalesce(line(pick(list(range(len(cd.MATERIALS))), list(MATERIAL_WEIGHTS),
                                                        line_u("line_mat"))), F.col("mat_idx")))
            # Now and then the seller picks a neighbouring palette colour for the attribute; the title keeps
            # the colourway's own name.
            .withColumn("colour", F.coalesce(line(F.when(uniform(s, "colour_attr", "listing_id") < 0.04, near)
                                                  .otherwise(colourway)), F.col("colour")))
            .drop("_line_id", "_family_id")
        )
        return out.drop("_namesake", "_name_family_id", "_name_line_id") if hard else out

    return step


def simulate(spark: SparkSession, cfg: SimulatorConfig) -> SimulatedData:
    """Build all events and the truth tables lazily (nothing is materialised here)."""
    s = cfg.seed
    start = datetime(cfg.start_date.year, cfg.start_date.month, cfg.start_date.day, tzinfo=UTC)
    end = start + timedelta(days=cfg.days)
    cats = _categories(spark, s)
    brands = _brands(spark, cfg)
    leaves = cd.category_tree()
    # Women's fashion dominates secondhand marketplaces; lifestyle and kids are small.
    leaf_w = [3.0 if d == "women" else 1.6 if d == "men" else 0.5 for _, d, *_ in leaves]

    base = spark.range(0, cfg.n_listings, numPartitions=cfg.partitions).withColumnRenamed("id", "listing_id")
    u = lambda salt: uniform(s, salt, "listing_id")  # noqa: E731
    n = lambda salt: normal(s, salt, "listing_id")  # noqa: E731

    df = base.select(
        "listing_id",
        pick([leaf[0] for leaf in leaves], leaf_w, u("leaf")).alias("leaf_id"),
        F.when(u("has_brand") < UNBRANDED_SHARE, F.lit(None)).otherwise(
            F.floor(F.lit(cfg.n_brands) * F.pow(u("brand"), 3.0)).cast("int")).alias("brand_idx"),
        F.floor(F.lit(cfg.n_sellers) * F.pow(u("seller"), 2.0)).cast("long").alias("seller_id"),
        pick(list(range(5)), list(cd.CONDITION_WEIGHTS), u("cond")).alias("cond_idx"),
        pick(list(range(len(cd.MATERIALS))), list(MATERIAL_WEIGHTS), u("mat")).alias("mat_idx"),
        pick(list(cd.STYLES), [8, 6, 6, 3, 2, 2, 2, 2, 30], u("style")).alias("style"),
        pick(list(cd.SIZES), [1, 3, 6, 7, 6, 3, 1, 2, 3, 4, 3, 2, 1, 4], u("size")).alias("size"),
        pick(list(cd.COLOURS), list(COLOUR_WEIGHTS), u("colour")).alias("colour"),
        F.when(u("ship") < 0.45, "seller").otherwise("buyer").alias("shipping_paid_by"),
        (u("deadstock") < 0.08).alias("_deadstock"),
        (u("rare") < 0.05).alias("is_rare"),
        (u("stain") < 0.12).alias("_stain"),
        (u("bundle") < 0.03).alias("is_bundle"),
        n("item_noise").alias("_z_item"),
        n("ask_noise").alias("_z_ask"),
        u("day").alias("_u_day"),
        u("season").alias("_u_season"),
        n("season_jitter").alias("_z_season"),
        u("second").alias("_u_sec"),
    ).transform(_with_products(cfg, leaves, leaf_w))
    hard = cfg.world == "hard"
    if hard:
        df = df.transform(hw.kinds(u))
    df = (
        df.join(F.broadcast(cats), "leaf_id")
        .join(F.broadcast(brands), "brand_idx", "left")
        .withColumn("condition", F.element_at(F.array(*[F.lit(c) for c in cd.CONDITIONS]), F.col("cond_idx") + 1))
        .withColumn("material", F.element_at(F.array(*[F.lit(m) for m in cd.MATERIALS]), F.col("mat_idx") + 1))
        # Deadstock only makes sense for unworn items, stains only for worn ones.
        .withColumn("is_deadstock", F.col("_deadstock") & (F.col("cond_idx") == 0))
        .withColumn("has_stain", F.col("_stain") & (F.col("cond_idx") >= 2))
    )
    if hard:
        df = df.transform(hw.without_brand(u))
    seller_u = lambda salt: uniform(s, salt, "seller_id")  # noqa: E731
    df = (
        df.withColumn("seller_experience_years", F.round(-F.log(seller_u("exp")) * 2.0, 2))
        .withColumn("seller_is_shop", seller_u("shop") < F.when(F.col("seller_id") < cfg.n_sellers * 0.02, 0.6)
                    .otherwise(0.05))
        .withColumn("seller_skill", F.least(F.lit(1.0), F.col("seller_experience_years") / 5.0))
        .withColumn("seller_rating", F.round(F.least(F.lit(5.0), 3.6 + 1.2 * F.col("seller_skill")
                                                      + 0.3 * normal(s, "rating", "seller_id")), 1))
    )
    cond_eff = F.element_at(F.array(*[F.lit(x) for x in cd.CONDITION_EFFECT]), F.col("cond_idx") + 1)
    mat_eff = F.element_at(F.array(*[F.lit(x) for x in cd.MATERIAL_EFFECT]), F.col("mat_idx") + 1)
    style_eff = (F.when(F.col("style") == "vintage", 0.12).when(F.col("style") == "y2k", 0.06)
                 .when(F.col("style") == "streetwear", 0.08).otherwise(0.0))
    text_eff = (F.col("is_deadstock").cast("double") * cd.TEXT_SIGNALS["deadstock"]
                + F.col("is_rare").cast("double") * cd.TEXT_SIGNALS["rare"]
                + F.col("has_stain").cast("double") * cd.TEXT_SIGNALS["stain"]
                + F.col("is_bundle").cast("double") * cd.TEXT_SIGNALS["bundle"])
    log_fair = (F.log(F.col("base_price")) + PRICE_LEVEL + F.col("leaf_effect")
                + F.coalesce(F.col("tier_effect") + F.col("brand_effect"), F.lit(-0.1))
                + cond_eff + mat_eff + style_eff + text_eff + F.col("product_effect"))
    if hard:
        log_fair = log_fair + F.col("_kind_effect")  # a lot costs a multiple of the item, an accessory a fraction
    df = (
        df.withColumn("log_fair_observable", log_fair)
        .withColumn("item_noise", 0.28 * F.col("_z_item"))
        .withColumn("log_fair_value", F.col("log_fair_observable") + F.col("item_noise"))
        .withColumn("ask_markup", (0.18 - 0.12 * F.col("seller_skill"))
                    + (0.35 - 0.2 * F.col("seller_skill")) * F.col("_z_ask"))
        # The marketplace's price-exploration experiment nudges a random share of asking prices (see price_nudge):
        # it sets them (nudge), or suggests them and the seller decides (encouragement: _adopted).
        .withColumn("suggestion", price_nudge(s, cfg.price_nudge_share, cfg.price_nudge_max))
        .transform(_adopted(cfg, u))
        .withColumn("price_nudge", F.when(F.col("suggestion_adopted"), F.col("suggestion")).otherwise(F.lit(0.0)))
        .withColumn("list_price", F.greatest(F.lit(2.0), F.round(F.exp(
            F.col("log_fair_value") + F.col("ask_markup") + F.col("price_nudge")))))
    )
    # Listing time: marketplace grows (more listings later), weekly and seasonal pattern by category.
    day = F.floor(F.lit(cfg.days) * F.pow(F.col("_u_day"), 0.8))
    peak_doy = F.col("peak_month") * 30 - 15
    doy = F.dayofyear(F.date_add(F.lit(start.date()), day.cast("int")))
    shift = F.pmod(peak_doy - doy + 182, F.lit(365)) - 182 + F.round(F.col("_z_season") * 25)
    seasonal = (F.col("peak_month") > 0) & (F.col("_u_season") < 0.35)
    day = F.when(seasonal, F.greatest(F.lit(0), F.least(F.lit(cfg.days - 1), day + shift))).otherwise(day)
    # Evenings and Sundays are busiest: skew the second-of-day towards the evening.
    sec = F.floor(F.pow(F.col("_u_sec"), 0.6) * 86400)
    df = df.withColumn(
        "created_at",
        F.timestamp_seconds(F.lit(int(start.timestamp())) + day.cast("long") * 86400 + sec.cast("long")),
    )
    # Demand: geometric sale day within each price segment (asking price falls at day 14 and 28).
    demand_bonus = 1.0 + 0.6 * F.col("seller_skill")
    seg_bounds = (0, *DROP_DAYS, HORIZON_DAYS)
    sale_day = F.lit(None).cast("double")
    for k in reversed(range(len(seg_bounds) - 1)):
        lo, hi = seg_bounds[k], seg_bounds[k + 1]
        price_k = F.col("list_price") * (DROP_FACTOR ** k)
        hz = F.least(F.lit(MAX_HAZARD), F.col("base_hazard") * demand_bonus
                     * F.exp(-F.col("elasticity") * (F.log(price_k) - F.col("log_fair_value"))))
        g = F.floor(F.log(u(f"sale{k}")) / F.log(1.0 - hz))
        sale_day = F.when(g < (hi - lo), lo + g + u(f"salefrac{k}")).otherwise(sale_day)
    df = df.withColumn("sale_day", sale_day)
    end_ts = F.lit(end).cast("timestamp")
    df = (
        df.withColumn("sold_at_candidate", F.col("created_at") + F.make_interval(
            secs=(F.col("sale_day") * 86400).cast("decimal(18,6)")))
        .withColumn("is_sold", F.col("sold_at_candidate").isNotNull() & (F.col("sold_at_candidate") < end_ts))
        .withColumn("drops_before_sale", F.when(F.col("sale_day").isNull(), len(DROP_DAYS)).otherwise(
            F.size(F.filter(F.array(*[F.lit(d) for d in DROP_DAYS]), lambda d: d <= F.col("sale_day")))))
        .withColumn("offer_discount", F.when(u("offer") < 1.0 - OFFER_SHARE, 0.0).otherwise(
            OFFER_MAX_DISCOUNT * u("offer_size")))
        .withColumn("sold_price", F.when(F.col("is_sold"), F.round(
            F.col("list_price") * F.pow(F.lit(DROP_FACTOR), F.col("drops_before_sale"))
            * (1 - F.col("offer_discount")), 2)))
        .withColumn("removed_at", F.when(~F.col("is_sold") & F.col("sale_day").isNull() & (u("remove") < 0.5),
                                         F.col("created_at") + F.expr(f"INTERVAL {HORIZON_DAYS} DAYS")))
    ).transform(_with_text(s, hard))
    # Every event type and the truth derive from this one frame: compute it once.
    df = df.persist(StorageLevel.MEMORY_AND_DISK)
    events = {
        "listing_created": _created_events(df),
        "price_changed": _price_events(df, end),
        "listing_sold": _sold_events(df),
        "listing_removed": _removed_events(df, end),
    }
    truth = df.select(
        "listing_id", "log_fair_value", "log_fair_observable", "item_noise", "ask_markup", "seller_skill",
        "elasticity", "base_hazard", (demand_bonus).alias("demand_bonus"), "is_deadstock", "is_rare",
        "has_stain", "is_bundle", "price_nudge", "suggestion", "suggestion_adopted", "product_id", "product_effect",
    )
    truth_cats = cats.select("leaf_id", "department", "category", "subcategory", "base_price", "elasticity",
                             "base_hazard")
    return SimulatedData(events, truth, truth_cats, end, df)


def _spelt(words: dict[str, tuple[str, ...]], key: Column, u: Column) -> Column:
    """``key``'s value as a title spells it: one of its synonyms in ``words`` (the first twice as often),
    hyphens as spaces."""
    # One map lookup per row (the first synonym listed twice), rather than a branch per key.
    spellings = F.create_map(*[x for value, options in words.items()
                               for x in (F.lit(value), F.array(*[F.lit(o) for o in (options[0], *options)]))])
    options = F.element_at(spellings, key)
    chosen = F.element_at(options, (F.floor(u * F.size(options)) + 1).cast("int"))
    return F.coalesce(chosen, F.regexp_replace(key, "-", " "))


def _filler(u: Uniform) -> Column:
    return F.when(u("filler") < 0.35, pick(list(cd.FILLER_WORDS), [1.0] * len(cd.FILLER_WORDS), u("filler_word")))


def _size_text(u: Uniform) -> Column:
    """"size M", "sz M" or, for numeric sizes, "UK 8"."""
    numeric = F.col("size").rlike("^[0-9]+$")
    prefix = pick(["size ", "sz ", "UK "], [6, 2, 2], u("size_fmt"))
    return F.concat(F.when(~numeric & (prefix == "UK "), F.lit("size ")).otherwise(prefix), F.col("size"))


def _product_title(u: Uniform) -> Column:
    """A product instance's title: the same parts written differently by each seller: brand or not, the
    model line spelt three ways (``Vemora 90``, ``Vemora90``, ``Vemora-90``), colour and type synonyms, a
    filler word, the size (varies between instances of one product), in one of five word orders."""
    brand = F.when(u("p_brand") < 0.85, F.col("brand"))
    spelling = pick([0, 1, 2], [70, 15, 15], u("line_spelling"))
    line = (F.when(spelling == 1, F.regexp_replace("line_name", " ", ""))
            .when(spelling == 2, F.regexp_replace("line_name", " ", "-")).otherwise(F.col("line_name")))
    line = F.when(u("p_line") < 0.98, line)
    colour = F.when(u("p_colour") < 0.85, F.col("_colour_word"))
    item = F.when(u("p_item") < 0.9, F.col("_item_word"))
    size = F.when(u("p_size") < 0.9, F.col("_size_text"))
    style = F.when(u("p_style") < 0.6, F.col("_style_word"))
    signals, filler = F.col("_signals"), F.col("_filler")
    orders = [(signals, brand, line, style, colour, item, filler, size),
              (signals, colour, brand, line, item, size, filler),
              (signals, brand, line, item, colour, size, style),
              (signals, item, brand, line, colour, size, filler),
              (signals, style, brand, colour, line, item, size)]
    order = pick(list(range(len(orders))), [35, 20, 20, 10, 15], u("word_order"))
    out = F.concat_ws(" ", *orders[-1])
    for i, parts in enumerate(orders[:-1]):
        out = F.when(order == i, F.concat_ws(" ", *parts)).otherwise(out)
    return out


def _with_text(seed: int, hard: bool = False) -> Callable[[DataFrame], DataFrame]:
    def step(df: DataFrame) -> DataFrame:
        u = lambda salt: uniform(seed, salt, "listing_id")  # noqa: E731
        item = F.regexp_replace(F.col("subcategory"), "-", " ")
        brand_in_title = F.when(F.col("brand").isNotNull() & (u("brand_title") < 0.8), F.col("brand"))
        style_word = F.when((F.col("style") != "none") & (u("style_title") < 0.5), F.col("style"))
        signals = F.concat_ws(
            " ",
            F.when(F.col("is_deadstock"), pick(["deadstock", "DEADSTOCK", "deadstock bnwt"], [3, 1, 1], u("ds"))),
            F.when(F.col("is_rare"), pick(["rare", "RARE", "super rare", "hard to find rare"], [3, 2, 1, 1], u("rr"))),
            F.when(F.col("is_bundle"), F.lit("bundle")),
        )
        signals = F.when(signals != "", signals)
        # Each part is a column of its own: the title expressions below use it several times, and Spark then
        # evaluates it once instead of inlining it into every use.
        df = (df.withColumn("_signals", signals).withColumn("_style_word", style_word)
              .withColumn("_colour_word", _spelt(cd.COLOUR_WORDS, F.coalesce("product_colour", "colour"),
                                                 u("colour_word")))
              .withColumn("_item_word", _spelt(cd.ITEM_WORDS, F.col("subcategory"), u("item_word")))
              .withColumn("_size_text", _size_text(u)).withColumn("_filler", _filler(u)))
        if hard:
            df = df.withColumn("_title", hw.title(u))
        else:
            df = df.withColumn("_title", F.when(F.col("product_id").isNull(), F.concat_ws(
                " ", "_signals", brand_in_title, "_style_word", "_colour_word", "_item_word", "_filler", "_size_text")
            ).otherwise(_product_title(u)))
        title = F.col("_title")
        df = df.withColumn("_title", F.when(u("caps") < 0.08, F.upper(title)).otherwise(title))
        # A dropped letter now and then, as typed on a phone.
        k = (F.floor(u("typo_pos") * (F.length(title) - 2)) + 2).cast("int")
        df = df.withColumn("_title", F.when(u("typo") < 0.06, F.concat(title.substr(F.lit(1), k - 1),
                                                                        title.substr(k + 1, F.lit(10_000))))
                           .otherwise(title))
        emoji = pick(["", " ✨", " 🔥", " 💖", " 🖤", " 🌸"], [70, 8, 8, 6, 4, 4], u("emoji"))
        title = F.concat(title, emoji)
        df = df.drop("_signals", "_style_word", "_colour_word", "_item_word", "_size_text", "_filler")
        cond_text = F.element_at(F.array(*[F.lit(x) for x in (
            "brand new with tags", "like new, worn once", "good condition", "used, signs of wear",
            "fair condition, well loved")]), F.col("cond_idx") + 1)
        desc = F.concat_ws(
            ". ",
            F.concat(F.lit("Selling my "), F.coalesce(F.col("brand"), F.lit("unbranded")), F.lit(" "), item),
            cond_text,
            F.when(F.col("has_stain"), pick(["small stain on the front", "faint stain, see pics", "stain on sleeve"],
                                            [1, 1, 1], u("st"))),
            F.when(F.col("is_deadstock"), F.lit("deadstock, never worn")),
            F.when(F.col("is_rare"), F.lit("rare find")),
            F.when(F.col("is_bundle"), F.lit("bundle of 3 items")),
            F.concat(F.lit("material: "), F.col("material")),
            F.when(F.col("seller_is_shop"), F.lit("fast dispatch from our shop")),
        )
        desc = F.when(u("nodesc") < 0.05, F.lit("No description yet")).otherwise(desc)
        return df.withColumn("title", title).withColumn("description", desc).drop("_title")

    return step


def _event_cols(event_type: str, ts: Column, suffix: str = "") -> list[Column]:
    return [
        F.concat(F.lit(event_type + ":"), F.col("listing_id").cast("string"), F.lit(suffix)).alias("event_id"),
        F.lit(event_type).alias("event_type"),
        F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX").alias("event_time"),
        F.to_date(ts).cast("string").alias("event_date"),
    ]


def _created_events(df: DataFrame) -> DataFrame:
    return df.select(
        *_event_cols("listing_created", F.col("created_at")),
        "listing_id", "seller_id",
        F.struct(
            F.col("seller_rating").alias("rating"),
            F.col("seller_experience_years").alias("experience_years"),
            F.col("seller_is_shop").alias("is_shop"),
        ).alias("seller"),
        "title", "description", "brand",
        F.concat_ws("/", "department", "category", "subcategory").alias("category_path"),
        "condition", "size", "colour", "material",
        F.when(F.col("style") == "none", F.array()).otherwise(F.array("style")).alias("style_tags"),
        F.col("list_price").alias("price"), F.lit("GBP").alias("currency"), "shipping_paid_by",
    )


def _price_events(df: DataFrame, end: datetime) -> DataFrame:
    parts = []
    for k, d in enumerate(DROP_DAYS, start=1):
        ts = F.col("created_at") + F.expr(f"INTERVAL {d} DAYS")
        still_unsold = F.col("sale_day").isNull() | (F.col("sale_day") >= d)
        parts.append(
            df.where(still_unsold & (ts < F.lit(end)))
            .select(*_event_cols("price_changed", ts, f":{k}"), "listing_id",
                    F.round(F.col("list_price") * DROP_FACTOR ** (k - 1), 2).alias("old_price"),
                    F.round(F.col("list_price") * DROP_FACTOR ** k, 2).alias("new_price"),
                    F.lit("GBP").alias("currency"))
        )
    return parts[0].unionByName(parts[1])


def _sold_events(df: DataFrame) -> DataFrame:
    return df.where("is_sold").select(
        *_event_cols("listing_sold", F.col("sold_at_candidate")), "listing_id",
        F.col("sold_price").alias("price"), F.lit("GBP").alias("currency"),
    )


def _removed_events(df: DataFrame, end: datetime) -> DataFrame:
    return df.where(F.col("removed_at").isNotNull() & (F.col("removed_at") < F.lit(end))).select(
        *_event_cols("listing_removed", F.col("removed_at")), "listing_id",
    )


# Explicit schemas for the landing JSON (ingest reads with these, never by inference).
SELLER_STRUCT = T.StructType([
    T.StructField("rating", T.DoubleType()),
    T.StructField("experience_years", T.DoubleType()),
    T.StructField("is_shop", T.BooleanType()),
])
