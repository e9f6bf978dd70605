"""Marketplace simulator with a known ground truth, computed in Spark.

Every random draw is a hash of (seed, purpose, id), never ``rand()`` on a partition, so the same seed
gives the same rows whatever the partition or core count.  Nothing is collected to the driver except
the small dimension tables (categories, brands).

The generative story, per listing:
  fair value (log) = category base + brand tier + brand + condition + material + style + text-only
                     signals (deadstock, rare, stain, bundle) + item noise (hidden)
  asking price     = fair value x seller markup; experienced sellers price closer to fair value and
                     sell faster (confounding, as on a real marketplace)
  daily sale hazard = base x exp(-elasticity x log(price / fair value)); unsold items drop 10% at
                     day 14 and 28; sold price = price at sale less an accepted offer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing import catalog_data as cd
from pricing.config import SimulatorConfig

_MASK53 = (1 << 53) - 1
DROP_DAYS = (14, 28)
HORIZON_DAYS = 60
DROP_FACTOR = 0.9
# Calibrates the overall price level to published secondhand-marketplace medians (about 17-20).
PRICE_LEVEL = -0.36


def uniform(seed: int, salt: str, *cols: Column | str) -> Column:
    """Deterministic U(0,1) from a hash of the seed, a purpose string and the row's ids."""
    h = F.xxhash64(F.lit(seed), F.lit(salt), *cols)
    return (h.bitwiseAND(F.lit(_MASK53)).cast("double") + 0.5) / float(1 << 53)


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


@dataclass(frozen=True)
class SimulatedData:
    events: dict[str, DataFrame]
    """event type -> events with an ``event_date`` column (landing partitioning)."""
    truth_listings: DataFrame
    truth_categories: DataFrame
    end_time: datetime
    listings: DataFrame
    """The persisted listing-level frame; ``unpersist()`` it when done."""


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
        F.when(u("has_brand") < 0.43, F.lit(None)).otherwise(
            F.floor(F.lit(cfg.n_brands) * F.pow(u("brand"), 3.0)).cast("int")).alias("brand_idx"),
        F.floor(F.lit(cfg.n_sellers) * F.pow(u("seller"), 2.0)).cast("long").alias("seller_id"),
        pick(list(range(5)), list(cd.CONDITION_WEIGHTS), u("cond")).alias("cond_idx"),
        pick(list(range(len(cd.MATERIALS))), [5, 3, 4, 2, 1, 1, 0.5, 0.3, 1, 0.5], u("mat")).alias("mat_idx"),
        pick(list(cd.STYLES), [8, 6, 6, 3, 2, 2, 2, 2, 30], u("style")).alias("style"),
        pick(list(cd.SIZES), [1, 3, 6, 7, 6, 3, 1, 2, 3, 4, 3, 2, 1, 4], u("size")).alias("size"),
        pick(list(cd.COLOURS), [10, 6, 5, 3, 4, 3, 3, 3, 3, 3, 2, 2, 1, 1, 1], u("colour")).alias("colour"),
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
    )
    df = (
        df.join(F.broadcast(cats), "leaf_id")
        .join(F.broadcast(brands), "brand_idx", "left")
        .withColumn("condition", F.element_at(F.array(*[F.lit(c) for c in cd.CONDITIONS]), F.col("cond_idx") + 1))
        .withColumn("material", F.element_at(F.array(*[F.lit(m) for m in cd.MATERIALS]), F.col("mat_idx") + 1))
        # Deadstock only makes sense for unworn items, stains only for worn ones.
        .withColumn("is_deadstock", F.col("_deadstock") & (F.col("cond_idx") == 0))
        .withColumn("has_stain", F.col("_stain") & (F.col("cond_idx") >= 2))
    )
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
    df = (
        df.withColumn("log_fair_observable",
                      F.log(F.col("base_price")) + PRICE_LEVEL + F.col("leaf_effect")
                      + F.coalesce(F.col("tier_effect") + F.col("brand_effect"), F.lit(-0.1))
                      + cond_eff + mat_eff + style_eff + text_eff)
        .withColumn("item_noise", 0.28 * F.col("_z_item"))
        .withColumn("log_fair_value", F.col("log_fair_observable") + F.col("item_noise"))
        .withColumn("ask_markup", (0.18 - 0.12 * F.col("seller_skill"))
                    + (0.35 - 0.2 * F.col("seller_skill")) * F.col("_z_ask"))
        .withColumn("list_price", F.greatest(F.lit(2.0), F.round(F.exp(F.col("log_fair_value") + F.col("ask_markup")))))
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
        hz = F.least(F.lit(0.9), F.col("base_hazard") * demand_bonus
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
        .withColumn("offer_discount", F.when(u("offer") < 0.6, 0.0).otherwise(0.15 * u("offer_size")))
        .withColumn("sold_price", F.when(F.col("is_sold"), F.round(
            F.col("list_price") * F.pow(F.lit(DROP_FACTOR), F.col("drops_before_sale"))
            * (1 - F.col("offer_discount")), 2)))
        .withColumn("removed_at", F.when(~F.col("is_sold") & F.col("sale_day").isNull() & (u("remove") < 0.5),
                                         F.col("created_at") + F.expr(f"INTERVAL {HORIZON_DAYS} DAYS")))
    ).transform(_with_text(s))
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
        "has_stain", "is_bundle",
    )
    truth_cats = cats.select("leaf_id", "department", "category", "subcategory", "base_price", "elasticity",
                             "base_hazard")
    return SimulatedData(events, truth, truth_cats, end, df)


def _with_text(seed: int):
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
        title = F.concat_ws(" ", signals, brand_in_title, style_word, F.col("colour"), item,
                            F.concat(F.lit("size "), F.col("size")))
        title = F.when(u("caps") < 0.08, F.upper(title)).otherwise(title)
        # A dropped letter now and then, as typed on a phone.
        k = (F.floor(u("typo_pos") * (F.length(title) - 2)) + 2).cast("int")
        title = F.when(u("typo") < 0.06, F.concat(title.substr(F.lit(1), k - 1), title.substr(k + 1, F.lit(10_000)))
                       ).otherwise(title)
        emoji = pick(["", " ✨", " 🔥", " 💖", " 🖤", " 🌸"], [70, 8, 8, 6, 4, 4], u("emoji"))
        title = F.concat(title, emoji)
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
        return df.withColumn("title", title).withColumn("description", desc)

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
