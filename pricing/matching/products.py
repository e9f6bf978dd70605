"""Product matching: the same product (one trainer model in one colourway) listed by many sellers with different
words, found at marketplace scale with MinHash LSH in Spark.

Pipeline (every step a pure function on DataFrames; the job at the edge reads and writes):

1. **Normalise** each title: lower case, letters and digits only, size mentions removed (``size M``, ``sz 10``,
   ``UK 8``: instances of one product differ in size), colour and type synonyms folded (``gray`` -> ``grey``,
   ``sneakers`` -> ``trainers``).
2. **Model words**: the title's words that are neither generic nor the listing's brand.  They name the model
   line (``vemora 90``); their digit runs are its model numbers.  A listing without any (``black trainers
   size 8``) names no product and is not matched.  **Generic words** are of two kinds:

   * the **seed** (:data:`GENERIC`): a hand-written list of common fashion vocabulary (types, materials,
     condition and sales words, sizes), basic colour names, their plurals and one-typo spellings; it covers
     the first listings, before anything is learned;
   * words **learned from the listings being matched** (:func:`learned_vocabulary`): a word becomes generic
     once the titles of at least :data:`LEARN_MIN_BRANDS` distinct brands have used it (high document
     frequency across brands: a model name is written under its own brand; a type, colour, material or sales
     word under any brand).  Words with a digit never are (model numbers such as ``90`` recur across brands
     yet tell ``Vemora 90`` from ``Vemora 95``).  Why learned and not listed: real titles contain words that
     appear in no list (category names, new slang, other languages, typos of every word), and the matcher
     must not read the simulator's reference data to know them; the rule finds what the data shows.
     Categories are not counted: a type word (``trainers``) lives in one category yet names no product.

   Colour words (for the colour check in step 6) are the seed's colour names and synonyms, plus learned
   generic words whose listings mostly (:data:`COLOUR_MIN_SHARE` of at least :data:`COLOUR_MIN_LISTINGS`)
   carry one colour attribute: that colour.

   A listing **without a brand attribute** is blocked under the brand its title names, or else the one brand
   whose earlier listings of its category wrote its model words (:func:`inferred_brands`, as of its own time;
   ``match.infer_brand``); when neither decides, it is not matched.
3. **Shingles**: character bigrams of each model word (``#vemora#`` -> ``#v, ve, em, ...``), so a typo or a
   joined spelling (``vemora90``) still shares most shingles.  Similarity is the exact Jaccard index of two
   listings' shingle sets.
4. **Groups**: listings with the same block, type, colour and shingles are one group (a popular product's
   instances collapse into a few groups), and candidates are generated between groups.
5. **Candidates**: MinHash signatures (``num_bands x rows_per_band`` hash functions, seeded) of each group's
   shingles, **blocked** by brand and category: the block is hashed into every shingle, so groups of different
   blocks never share a bucket and the job never compares everything with everything.  Banding (a candidate
   pair agrees on all ``rows_per_band`` min-hashes of at least one band) keeps the chance of a candidate near 1
   for similar pairs and near 0 for unrelated ones, so candidates grow with the listings, not their square.
   ``method: spark_ml`` uses Spark ML's ``MinHashLSH.approxSimilarityJoin`` instead (one min-hash per table,
   OR-ed: no AND-amplification), kept for the measured comparison in ``bench/matching.py``.
6. **Decision**: a pair is the **same product** when its similarity is at least ``threshold``, the model
   numbers are the same, the type (subcategory) is the same and the colours agree (the colour words both titles name overlap; if either
   title names none, the colour attributes are equal), and neither listing has a **kind word**
   (:func:`kind_vocabulary`: a generic word learned from asking prices to mark lots and accessories, which are
   no instance of anything).  A title **without a model number** is the same product as one with, when their
   model names' letters are equal, while only one numbered variant of the name has been seen in the block and
   type (as of the pair's ``known_at``).  Every candidate pair at or above ``min_similarity`` is kept as a
   **comparable** (the same line in another colourway, a near namesake).
7. **Clusters**: connected components of the same-product pairs (min-label propagation with pointer jumping).

Every pair's similarity and decision depend on the two listings and on listings created no later than
them: the vocabulary is learned **as of each listing's time** (a word is generic for a listing from the first
time the listings created up to then met the rule, and stays generic afterwards), the hash functions are
seeded and the Jaccard index is exact.  So a pair is knowable at its later listing's time and never changes
with later listings: comparable-sales features stay point-in-time correct and an incremental feature build
equals a full rebuild (a late-arriving listing changes only pairs from its own time on, which the feature
build recomputes).  Clusters are not pair-local (a later listing can bridge two earlier ones), so features
never read them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from pricing.platform.config import MatchConfig
from pricing.platform.errors import PricingError
from pricing.platform.rows import first_row, first_value

# ---- vocabulary ---------------------------------------------------------------------------------------------
BASIC_COLOURS = ("black", "white", "grey", "silver", "blue", "navy", "red", "pink", "purple", "green", "yellow",
                 "orange", "brown", "beige", "cream", "gold", "multi")
"""Plain English colour names: the hand-written core of the colour vocabulary (more are learned, see
:func:`learned_vocabulary`)."""
COLOUR_SYNONYMS = {
    "gray": "grey", "blk": "black", "wht": "white", "ecru": "cream", "offwhite": "cream", "multicolour": "multi",
    "multicolor": "multi", "multicoloured": "multi", "navyblue": "navy", "khaki": "beige", "tan": "beige",
    "burgundy": "red", "maroon": "red", "lilac": "purple", "olive": "green", "charcoal": "grey",
}
"""Colour word -> basic colour (after :data:`PHRASES` joined multi-word names)."""
COLOURS = frozenset(BASIC_COLOURS) | frozenset(COLOUR_SYNONYMS)
PHRASES = {"navy blue": "navy", "off white": "offwhite", "multi colour": "multi", "multi color": "multi",
           "t shirt": "tshirt", "tee shirt": "tshirt"}
"""Multi-word names folded into one word before splitting."""
SIZE_MENTION = r"\b(?:size|sz|uk|eu|us)\s*(?:one size|x{0,3}[sl]|m|\d{1,3}(?:\.5)?)\b"
"""A size as titles write it; instances of one product differ in size, so sizes never count."""
_WORDS = """
    new tags bnwt bnwot nwt nwot worn once twice barely never used good great excellent fair immaculate
    condition perfect mint pristine lovely cute nice gorgeous beautiful comfy comfortable soft warm cosy cozy
    lightweight heavyweight oversized cropped crop slim skinny fit relaxed regular loose baggy wide leg high
    waisted low rise straight flared long short sleeve sleeves sleeveless classic authentic genuine original
    official og rare super hard find deadstock bundle job lot limited edition exclusive statement everyday
    essential essentials basic plain summer winter spring autumn festival party casual smart work holiday
    unisex mens womens men women ladies girls boys kids baby junior adult retro vintage y2k streetwear
    minimalist boho grunge preppy sporty 90s 80s 00s style styled look season new old fits true small large
    medium petite tall plus one free ship shipping postage post fast dispatch sale offers offer open ono bnib
    box boxed tagged tag item items pair pairs set selling sell price only worn hardly look like with without
    and the a an of for in on to by from my size sz uk eu us xs xxs xl xxl xxxl s m l
    cotton denim polyester wool leather linen silk cashmere nylon suede knit knitted fleece faux fur velvet
    corduroy satin lace mesh jersey canvas
    trainers trainer sneakers sneaker kicks shoes shoe runners running jumper sweater knitwear hoodie hoody
    hooded sweatshirt crewneck sweat tshirt tee top tops shirt jacket jackets puffer padded down coat jeans
    jean denims joggers jogger trackies jogging bottoms tracksuit track suit handbag bag backpack rucksack cap
    caps baseball hat dress skirt trousers pants shorts leggings blouse vest cardigan boots boot heels sandals
    flats sliders slides gilet polo watch belt sunglasses scarf jewellery necklace ring earrings bracelet
"""
STOPWORDS = frozenset({"a", "an", "and", "the", "in", "on", "of", "for", "to", "with", "is", "it", "no", "yet"})

LEARN_MIN_BRANDS = 4
"""A word is learned generic once the titles of at least this many distinct brands have used it."""
COLOUR_MIN_LISTINGS = 20
"""A learned generic word names a colour once at least this many listings with a colour attribute used it ..."""
COLOUR_MIN_SHARE = 0.7
"""... and at least this share of them have one colour (the colour it names)."""
KIND_MIN_LISTINGS = 20
"""A generic word marks a listing that is not a plain instance (a lot, a box, a receipt) once at least this many
listings used it ..."""
KIND_MIN_LOG_RATIO = math.log(1.6)
"""... and their asking prices were, on average, at least this far (log scale: x1.6 or /1.6) from their brand x
type's running mean (see :func:`kind_vocabulary`)."""


def _typo_spellings(word: str) -> set[str]:
    """One dropped letter or two swapped neighbours: how a generic word is mistyped on a phone.  Only for
    words of five letters or more: shorter ones would shadow real model words (``pair`` -> ``air``)."""
    if len(word) < 5:
        return set()
    drops = {word[:i] + word[i + 1:] for i in range(len(word))}
    swaps = {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
    return (drops | swaps) - {word}


def _plurals(word: str) -> set[str]:
    """English plural and singular forms (``dress`` -> ``dresses``, ``boot`` -> ``boots``, ``trainers`` ->
    ``trainer``)."""
    out = {word + "es"} if word.endswith(("ss", "x", "ch", "sh")) else set() if word.endswith("s") else {word + "s"}
    if len(word) > 3:
        out.add(word.rstrip("s"))
        if word.endswith(("sses", "xes", "ches", "shes")):
            out.add(word[:-2])
    return out


def _generic() -> frozenset[str]:
    base = set(_WORDS.split()) | set(COLOURS)
    base |= {p for w in list(base) for p in _plurals(w)}
    return frozenset(base | {t for w in base for t in _typo_spellings(w)})


GENERIC = _generic()
"""The hand-written seed of generic words (generic from the first listing on): the fashion vocabulary above,
colours, simple plurals, and each one's single-typo spellings (a dropped letter, swapped neighbours).  Every
other generic word is learned from the listings (:func:`learned_vocabulary`)."""
_COLOUR_CANON = {**{c: c for c in BASIC_COLOURS}, **COLOUR_SYNONYMS}
_COLOUR_TYPOS = {t: c for w, c in _COLOUR_CANON.items() for t in _typo_spellings(w) if t not in _COLOUR_CANON}
VOCABULARY_SCHEMA = "word string, generic boolean, since timestamp, colour string, colour_since timestamp"
KIND_SCHEMA = "word string, kind_since timestamp"


def seed_vocabulary(spark: SparkSession) -> DataFrame:
    """:data:`GENERIC` as vocabulary rows (``since`` and ``colour_since`` null: from the first listing on)."""
    rows = [(w, True, None, _COLOUR_CANON.get(w, _COLOUR_TYPOS.get(w)), None) for w in sorted(GENERIC)]
    return spark.createDataFrame(rows, VOCABULARY_SCHEMA)


def learned_vocabulary(listings: DataFrame) -> DataFrame:
    """The generic words the listings themselves show, each with the time it became generic (``since``) and,
    for a colour word, the colour and the time it came to name it (``colour_since``).

    A word outside the seed, other than a listing's own brand words, a stop word or a number (model numbers
    are shared by many brands and still tell models apart; words mixing letters and digits, such as ``8uk``,
    ``eu36`` or ``2xl``, are learned like any word: a joined model name such as ``vemora90`` is one brand's),
    becomes generic at the first listing time
    ``t`` at which, among the listings created at or before ``t``, the titles of at least
    :data:`LEARN_MIN_BRANDS` distinct brands have used it; it stays generic from then on.  A generic word
    names colour ``c`` from the first time at which at least :data:`COLOUR_MIN_LISTINGS` of its listings so
    far have a colour attribute and at least :data:`COLOUR_MIN_SHARE` of those are ``c``.  Both only ever
    look back: what a word is at ``t`` depends on the listings created no later than ``t``.  Reads only the
    listings' ``listing_id, created_at, title, brand, category, colour``.
    """
    seed = F.broadcast(seed_vocabulary(listings.sparkSession).select("word"))
    rows = (_listing_words(_keyed(listings))
            .where(_open_word())
            .join(seed, "word", "left_anti")
            .select("word", "created_at", "listing_id", "_brand", "_attr_colour")
            # One shuffle: every window below is partitioned by the word (and more).
            .repartition("word"))
    order = ("created_at", "listing_id")
    rows = (rows.withColumn("_nth_of_brand", F.row_number().over(Window.partitionBy("word", "_brand").orderBy(*order)))
            .withColumn("_nth_of_colour", F.row_number().over(
                Window.partitionBy("word", "_attr_colour").orderBy(*order))))
    # As of each listing time: every listing created at or before it (ties included).
    upto = (Window.partitionBy("word").orderBy("created_at")
            .rangeBetween(Window.unboundedPreceding, Window.currentRow))
    # Running counts per brand and per colour are row numbers: the last of a value's ties at t holds its
    # count as of t, so a running max over rows up to t is the most frequent value's count (never over).
    stats = rows.select(
        "word", "created_at",
        F.sum((F.col("_nth_of_brand") == 1).cast("long")).over(upto).alias("_brands"),
        F.count("_attr_colour").over(upto).alias("_coloured"),
        F.max(F.when(F.col("_attr_colour").isNotNull(), F.struct(F.col("_nth_of_colour").alias("n"),
                                                                  F.col("_attr_colour").alias("colour"))))
        .over(upto).alias("_top_colour"))
    is_generic = F.col("_brands") >= LEARN_MIN_BRANDS
    names_colour = ((F.col("_coloured") >= COLOUR_MIN_LISTINGS)
                    & (F.col("_top_colour.n") >= COLOUR_MIN_SHARE * F.col("_coloured")))
    learned = stats.groupBy("word").agg(
        F.min(F.when(is_generic, F.col("created_at"))).alias("since"),
        F.min(F.when(names_colour, F.struct("created_at", F.col("_top_colour.colour").alias("colour")))).alias("_c"))
    return learned.where(F.col("since").isNotNull()).select(
        "word", F.lit(True).alias("generic"), "since", F.col("_c.colour").alias("colour"),
        F.col("_c.created_at").alias("colour_since"))


def kind_vocabulary(listings: DataFrame) -> DataFrame:
    """``word, kind_since``: words that say a listing is not a plain instance of a product (a lot of several, the
    box, the receipt, a dust bag for it), learned from asking prices: such a listing sells something else, so it
    is priced far from the items it names.

    For each listing, the log asking price's **residual** against the running mean of the log asking prices
    of its brand x type (subcategory, else category) as of its time.  A word (not a number, a stop word or
    the listing's own brand) becomes a kind word at the first listing time ``t`` at which at least
    :data:`KIND_MIN_LISTINGS` listings created at or before ``t`` used it and their mean residual is at least
    :data:`KIND_MIN_LOG_RATIO` in size.  Condition and sales words shift a price far less (``deadstock`` or a
    stain: about x1.3), colour and type words not at all on average.  Only ever looks back.  Reads
    ``listing_id, created_at, title, brand, category, subcategory, list_price``; without ``list_price``,
    nothing is learned."""
    spark = listings.sparkSession
    if "list_price" not in listings.columns:
        return spark.createDataFrame([], KIND_SCHEMA)
    priced = listings.where(F.col("list_price") > 0)
    ref = (Window.partitionBy(F.lower("brand"), F.coalesce("subcategory", "category")).orderBy("created_at")
           .rangeBetween(Window.unboundedPreceding, Window.currentRow))
    resid = (F.log("list_price") - F.avg(F.log("list_price")).over(ref)).alias("_resid")
    words = (_listing_words(_keyed(priced))
             .where(_open_word())
             .select("word", "created_at", "listing_id")
             .join(priced.where(F.col("brand").isNotNull()).select("listing_id", resid), "listing_id")
             .repartition("word"))
    upto = (Window.partitionBy("word").orderBy("created_at")
            .rangeBetween(Window.unboundedPreceding, Window.currentRow))
    stats = words.select("word", "created_at", F.count("*").over(upto).alias("_n"),
                         F.avg("_resid").over(upto).alias("_mean"))
    is_kind = (F.col("_n") >= KIND_MIN_LISTINGS) & (F.abs("_mean") >= KIND_MIN_LOG_RATIO)
    return (stats.groupBy("word").agg(F.min(F.when(is_kind, F.col("created_at"))).alias("kind_since"))
            .where(F.col("kind_since").isNotNull()))


def vocabulary(listings: DataFrame) -> DataFrame:
    """``word, generic, since, colour, colour_since, kind_since``: the seed (:func:`seed_vocabulary`) and the
    words learned from ``listings`` (:func:`learned_vocabulary`), with when each became a kind word
    (:func:`kind_vocabulary`; null: never).  A word is generic for a listing created at ``t`` when ``since`` is
    null or at most ``t``; it names ``colour`` when, besides, ``colour_since`` is null or at most ``t``, and
    marks the listing as no plain instance when, besides, ``kind_since`` is at most ``t``.  Small: broadcast
    into the token join."""
    words = seed_vocabulary(listings.sparkSession).unionByName(learned_vocabulary(listings))
    return words.join(kind_vocabulary(listings), "word", "left")


# ---- normalisation ------------------------------------------------------------------------------------------
def normalise_title(title: Column) -> Column:
    """Lower case, letters and digits only, size mentions removed, multi-word names joined, single spaces."""
    t = F.regexp_replace(F.lower(title), r"[^\p{L}\p{N}]+", " ")
    t = F.regexp_replace(t, SIZE_MENTION, " ")
    for phrase, word in PHRASES.items():
        t = F.regexp_replace(t, rf"\b{phrase}\b", word)
    return F.trim(F.regexp_replace(t, r"\s+", " "))


def brand_words(brand: Column) -> Column:
    """The brand's own words (they block; in a title they say nothing about the model)."""
    return F.filter(F.split(F.lower(F.regexp_replace(brand, r"[^\p{L}\p{N}]+", " ")), " "), lambda w: F.length(w) > 0)


def _is_brand_word(word: Column, brand: Column) -> Column:
    return F.exists(brand, lambda b: (word == b) | ((F.length(b) >= 4) & (F.levenshtein(word, b, 1) >= 0)))


def bigrams(words: Column) -> Column:
    """Sorted distinct character bigrams of ``#word#`` over every word."""
    padded = F.transform(words, lambda w: F.concat(F.lit("#"), w, F.lit("#")))
    grams = F.flatten(F.transform(padded, lambda p: F.transform(
        F.sequence(F.lit(1), F.length(p) - 1), lambda i: F.substring(p, i, 2))))
    return F.array_sort(F.array_distinct(grams))


def jaccard(a: Column, b: Column) -> Column:
    """Exact Jaccard index of two arrays of distinct values."""
    inter = F.size(F.array_intersect(a, b))
    return inter / (F.size(a) + F.size(b) - inter)


def _titled(listings: DataFrame) -> DataFrame:
    """Categorised listings with a title, branded or not: the normalised title and the brand's words (none
    without a brand)."""
    return (listings.where(F.col("category").isNotNull() & F.col("title").isNotNull())
            .select("listing_id", "created_at", "brand", "category", "subcategory", "colour",
                    normalise_title(F.col("title")).alias("_norm"),
                    brand_words(F.coalesce(F.col("brand"), F.lit(""))).alias("_brand_words")))


def _keyed(listings: DataFrame) -> DataFrame:
    """Branded, categorised listings with a title: the normalised title and the brand's words."""
    return _titled(listings.where(F.col("brand").isNotNull()))


def _listing_words(keyed: DataFrame) -> DataFrame:
    """One row per listing and distinct title word: ``listing_id, created_at, brand, _brand, _cat, _attr_colour,
    word, _own_brand`` (``_brand``, ``_cat``: the brand and category in lower case; ``_own_brand``: the word is
    one of the listing's brand words, or a typo of one)."""
    return (keyed.select("listing_id", "created_at", "brand", F.lower("brand").alias("_brand"),
                         F.lower("category").alias("_cat"), F.col("colour").alias("_attr_colour"), "_brand_words",
                         F.explode(F.array_distinct(F.split("_norm", " "))).alias("word"))
            .where(F.length("word") > 0)
            .withColumn("_own_brand", _is_brand_word(F.col("word"), F.col("_brand_words")))
            .drop("_brand_words"))


def _open_word() -> Column:
    """A title word (of :func:`_listing_words`) that may name a model: not the listing's own brand (or a typo of
    it), not a number, not a stop word."""
    return ~F.col("_own_brand") & ~F.col("word").rlike(r"^\d+$") & ~F.col("word").isin(*sorted(STOPWORDS))


INFER_MIN_WORD_LENGTH = 3
"""Title words shorter than this never name a brand or vote for one (``co``, ``uk``)."""
INFER_MIN_LISTINGS = 2
"""A brand's votes count once at least this many of its listings of the category wrote the word (one seller's
stray word, ``blu``, is no evidence of a brand)."""


def inferred_brands(listings: DataFrame, vocab: DataFrame) -> DataFrame:
    """``listing_id, brand``: a brand for listings **without a brand attribute** (the seller left it empty),
    inferred from their titles with what the branded listings created **at or before** each listing's time
    show, so a listing's brand is known at its own time and never changes with later listings.

    A listing's *evidence words* are its title's words that are not generic as of its time (``vocab``:
    :func:`vocabulary`), not numbers, not stop words and at least :data:`INFER_MIN_WORD_LENGTH` long.

    1. **Named**: the title names a brand when it holds every such word of the brand's name (``Kalo Studio``
       needs both); of the brands named, the one with the most name words wins; a tie names none, and so does
       a name another brand's listings of the category wrote as a model word (a model name that happens to
       be a brand's name).
    2. **Voted**: otherwise, each evidence word that branded listings of the same category used as a model word
       (not their brand's, not generic at their time) votes for those listings' brands.  When the votes name
       exactly one brand, and at least :data:`INFER_MIN_LISTINGS` of its listings wrote one of the words,
       that is the listing's brand; a model name written under two brands (a namesake) or a word several
       brands used is no evidence of either, and the listing stays unbranded.

    Listings with a brand attribute, and those no rule decides, are not in the result.  Reads ``listing_id,
    created_at, title, brand, category``."""
    titled = _titled(listings)
    v = F.broadcast(vocab.select("word", "generic", "since"))

    def evidence(df: DataFrame) -> DataFrame:
        """One row per listing and distinct evidence word: ``listing_id, created_at, brand, _b, _cat, word``
        (``_b``: the brand in lower case)."""
        generic_then = (F.coalesce(F.col("generic"), F.lit(False))
                        & F.coalesce(F.col("since") <= F.col("created_at"), F.lit(True)))
        return (_listing_words(df).where((F.length("word") >= INFER_MIN_WORD_LENGTH) & _open_word())
                .withColumnRenamed("_brand", "_b").join(v, "word", "left").where(~generic_then)
                .select("listing_id", "created_at", "brand", "_b", "_cat", "word"))

    branded = titled.where(F.col("brand").isNotNull())
    bare = evidence(titled.where(F.col("brand").isNull())).select("listing_id", "created_at", "_cat", "word")
    # Every brand's name words, from the brand's first listing on.
    names = (branded.groupBy(F.lower("brand").alias("_b"))
             .agg(F.min("brand").alias("_brand"), F.min("created_at").alias("_first"),
                  F.first("_brand_words").alias("_bw"))
             .select("_b", "_brand", "_first", F.explode(F.array_distinct(F.filter(
                 "_bw", lambda w: (F.length(w) >= INFER_MIN_WORD_LENGTH) & ~w.rlike(r"^\d+$")))).alias("word"))
             .withColumn("_nw", F.count("*").over(Window.partitionBy("_b"))))
    best = Window.partitionBy("listing_id").orderBy(F.col("_nw").desc())
    named = (bare.join(names, "word").where(F.col("_first") <= F.col("created_at"))
             .groupBy("listing_id", "_b", "_brand", "_nw").agg(F.count("*").alias("_hits"))
             .where(F.col("_hits") == F.col("_nw"))
             .withColumn("_rank", F.rank().over(best)).where(F.col("_rank") == 1)
             .groupBy("listing_id").agg(F.count("*").alias("_tied"), F.first("_brand").alias("brand"),
                                        F.first("_b").alias("_b"))
             .where(F.col("_tied") == 1).select("listing_id", "brand", "_b"))
    # Which brands wrote each word as a model word in a category, from when: only the words some listing without
    # a brand has (few: most of their words are generic), so the branded listings' words are filtered early.
    nth = F.row_number().over(Window.partitionBy("word", "_cat", "_b").orderBy("created_at", "listing_id"))
    asked = bare.select("word", "_cat").distinct()
    used = (evidence(branded).join(asked, ["word", "_cat"], "left_semi")
            .withColumn("_nth", nth).groupBy("word", "_cat", "_b")
            .agg(F.min("brand").alias("_brand"), F.min("created_at").alias("_first"),
                 F.min(F.when(F.col("_nth") == INFER_MIN_LISTINGS, F.col("created_at"))).alias("_enough")))
    # A brand's name that another brand wrote as a model name in the category (``Tavemi 500`` by Loka) does
    # not name the brand: the votes decide.
    name_words = names.select("word", "_b")
    clash = (bare.join(named, "listing_id").join(name_words, ["word", "_b"])
             .join(used.withColumnRenamed("_b", "_by"), ["word", "_cat"])
             .where((F.col("_first") <= F.col("created_at")) & (F.col("_by") != F.col("_b"))).select("listing_id"))
    named = named.join(clash, "listing_id", "left_anti").select("listing_id", "brand")
    voted = (bare.join(named, "listing_id", "left_anti").join(used, ["word", "_cat"])
             .where(F.col("_first") <= F.col("created_at"))
             .groupBy("listing_id").agg(F.countDistinct("_b").alias("_brands"), F.min("_brand").alias("brand"),
                                        F.max(F.col("_enough") <= F.col("created_at")).alias("_enough"))
             .where((F.col("_brands") == 1) & F.col("_enough")).select("listing_id", "brand"))
    return named.unionByName(voted)


def with_brands(listings: DataFrame, inferred: DataFrame) -> DataFrame:
    """``listings`` with the brand of those that have none filled in from ``inferred`` (:func:`inferred_brands`)
    where it decides one."""
    return (listings.join(inferred.withColumnRenamed("brand", "_inferred"), "listing_id", "left")
            .withColumn("brand", F.coalesce("brand", "_inferred")).drop("_inferred"))


def match_keys(listings: DataFrame, vocab: DataFrame) -> DataFrame:
    """One row per **version** of each branded listing that names a model: ``listing_id, created_at, brand,
    category, subcategory, colour, block, model_words, colour_words, kind_words, shingles, numbers, valid_from,
    valid_to``.

    ``listings`` needs ``listing_id, created_at, title, brand, category, subcategory, colour``.  Words are
    classified by a broadcast join with ``vocab`` (:func:`vocabulary`), not per-row list scans, as of the
    listing's ``created_at``: that is its first version.  When one of its model words becomes generic later
    (a learned word's ``since``), the listing gets another version without it, valid from then on: a pair is
    judged with both listings' versions valid at its ``known_at``, so both are read with one vocabulary, the
    one known when the pair became knowable.  ``valid_to`` is null for the last version (the vocabulary as
    of the build); a version left without model words names no product and is dropped.  Likewise a word that
    becomes a **kind word** later (:func:`kind_vocabulary`: it marks a lot or an accessory) is added to the
    listing's ``kind_words`` in a version valid from then on.  Colour words stay as of the listing's own time.
    """
    keyed = _keyed(listings)
    words = _listing_words(keyed).join(F.broadcast(vocab.withColumnRenamed("colour", "_word_colour")), "word", "left")
    at = F.col("created_at")
    generic = F.coalesce(F.col("generic"), F.lit(False)) & F.coalesce(F.col("since") <= at, F.lit(True))
    names_colour = generic & F.coalesce(F.col("colour_since") <= at, F.lit(True))
    marks_kind = generic & F.coalesce(F.col("kind_since") <= at, F.lit(False))
    model = ~generic & ~F.col("_own_brand") & ~F.col("word").isin(*sorted(STOPWORDS))
    per_listing = words.groupBy("listing_id").agg(
        F.array_sort(F.collect_set(F.when(model, F.col("word")))).alias("model_words"),
        F.array_sort(F.collect_set(F.when(names_colour, F.col("_word_colour")))).alias("colour_words"),
        F.array_sort(F.collect_set(F.when(marks_kind, F.col("word")))).alias("kind_words"),
        # What the vocabulary learns later, in the order it does: model words that become generic (dropped
        # from then on) and words that become kind words (added).
        F.array_sort(F.array_union(
            F.collect_set(F.when(model & F.col("since").isNotNull(),
                                 F.struct("since", "word", F.lit(False).alias("kind")))),
            F.collect_set(F.when(~marks_kind & F.col("kind_since").isNotNull() & ~F.col("_own_brand")
                                 & ~F.col("word").isin(*sorted(STOPWORDS)),
                                 F.struct(F.greatest(F.coalesce(F.col("since"), at), F.col("kind_since")).alias("since"),
                                          "word", F.lit(True).alias("kind")))))).alias("_later"))
    v, later = F.col("_v"), F.col("_later")
    learned = F.slice(later, 1, v)
    versions = (keyed.drop("_norm", "_brand_words").join(per_listing, "listing_id")
                .where(F.size("model_words") > 0)
                .withColumn("_v", F.explode(F.sequence(F.lit(0), F.size(later))))
                .withColumn("model_words", F.array_except(
                    "model_words", F.transform(F.filter(learned, lambda x: ~x["kind"]), lambda x: x["word"])))
                .withColumn("kind_words", F.array_sort(F.array_union(
                    "kind_words", F.transform(F.filter(learned, lambda x: x["kind"]), lambda x: x["word"]))))
                .withColumn("valid_from", F.when(v == 0, at).otherwise(F.try_element_at(later, v)["since"]))
                .withColumn("valid_to", F.when(v < F.size(later), F.try_element_at(later, v + 1)["since"]))
                .where((F.size("model_words") > 0)
                       & (F.col("valid_to").isNull() | (F.col("valid_to") > F.col("valid_from"))))
                .drop("_v", "_later"))
    return (versions
            .withColumn("block", F.concat_ws("\u001f", F.lower("brand"), F.lower("category")))
            .withColumn("shingles", bigrams(F.col("model_words")))
            .withColumn("numbers", F.array_sort(F.array_distinct(
                F.regexp_extract_all(F.concat_ws(" ", "model_words"), F.lit(r"(\d+)"), 1))))
            .withColumn("letters", F.array_sort(F.array_distinct(F.filter(
                F.transform("model_words", lambda w: F.regexp_replace(w, r"\d+", "")), lambda w: F.length(w) > 0)))))


def _valid(t: Column, valid_from: Column, valid_to: Column) -> Column:
    return (valid_from <= t) & (valid_to.isNull() | (t < valid_to))


# ---- candidates ---------------------------------------------------------------------------------------------
GROUP_KEY = ("block", "subcategory", "colour", "colour_words", "kind_words", "numbers", "letters", "shingles")


def groups(keys: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(groups, members): listing versions with identical :data:`GROUP_KEY` are one group (``group_id``: a
    hash of the key).  ``groups``: ``group_id`` + the key + ``n``; ``members``: ``group_id, listing_id,
    created_at, valid_from, valid_to``."""
    gid = F.xxhash64(*[F.col(c) for c in GROUP_KEY])
    members = keys.withColumn("group_id", gid)
    grouped = members.groupBy("group_id", *GROUP_KEY).agg(F.count("*").alias("n"))
    # When a model name (its letters, in a block and type) was first seen with a second set of model numbers:
    # from then on, a title that leaves the number out is ambiguous (``second_variant``; null: not yet).
    line = [F.col("block"), F.coalesce("subcategory", F.lit("")).alias("_sub"), F.col("letters")]
    variants = (keys.where(F.size("numbers") > 0).groupBy(*line, "numbers").agg(F.min("valid_from").alias("_first"))
                .groupBy("block", "_sub", "letters")
                .agg(F.try_element_at(F.array_sort(F.collect_list("_first")), F.lit(2)).alias("second_variant")))
    grouped = (grouped.withColumn("_sub", F.coalesce("subcategory", F.lit("")))
               .join(variants, ["block", "_sub", "letters"], "left").drop("_sub"))
    return grouped, members.select("group_id", "listing_id", "created_at", "valid_from", "valid_to")


def minhash_signature(shingles: Column, block: Column, n: int, seed: int) -> Column:
    """``n`` min-hashes of the shingle set; the block is hashed into every shingle, so that signatures of
    different blocks never agree (blocking inside the hash)."""
    def h(j: int):  # type: ignore[no-untyped-def]
        return lambda s: F.xxhash64(F.lit(seed), F.lit(j), block, s)

    return F.array(*[F.array_min(F.transform(shingles, h(j))) for j in range(n)])


def banded_candidates(grp: DataFrame, cfg: MatchConfig) -> DataFrame:
    """``group_a, group_b`` (a < b): groups whose signatures agree on every min-hash of at least one band."""
    r, b = cfg.rows_per_band, cfg.num_bands
    sig = grp.select("group_id", minhash_signature(F.col("shingles"), F.col("block"), r * b, cfg.seed).alias("sig"))
    bands = sig.select("group_id", F.posexplode(F.transform(
        F.sequence(F.lit(0), F.lit(b - 1)), lambda i: F.xxhash64(i, F.slice("sig", i * r + 1, r)))).alias("band", "key"))
    a, bb = bands.alias("a"), bands.alias("b")
    return (a.join(bb, (F.col("a.band") == F.col("b.band")) & (F.col("a.key") == F.col("b.key"))
                   & (F.col("a.group_id") < F.col("b.group_id")))
            .select(F.col("a.group_id").alias("group_a"), F.col("b.group_id").alias("group_b")).distinct())


def spark_ml_candidates(grp: DataFrame, cfg: MatchConfig) -> DataFrame:
    """The same contract through Spark ML: ``MinHashLSH`` (``num_bands x rows_per_band`` tables of one min-hash
    each, OR-ed) and ``approxSimilarityJoin`` at distance ``1 - min_similarity``."""
    from pyspark.ml.feature import HashingTF, MinHashLSH

    blocked = grp.select("group_id", F.transform("shingles", lambda s: F.concat_ws("\u001f", F.col("block"), s))
                         .alias("_terms"))
    vec = HashingTF(inputCol="_terms", outputCol="_vec", numFeatures=1 << 22, binary=True).transform(blocked)
    model = MinHashLSH(inputCol="_vec", outputCol="_hashes", numHashTables=cfg.num_bands * cfg.rows_per_band,
                       seed=cfg.seed).fit(vec)
    joined = model.approxSimilarityJoin(vec, vec, 1.0 - cfg.min_similarity + 1e-9, distCol="_dist")
    return (joined.select(F.col("datasetA.group_id").alias("group_a"), F.col("datasetB.group_id").alias("group_b"))
            .where(F.col("group_a") < F.col("group_b")).distinct())


def decide(pairs: DataFrame, grp: DataFrame, cfg: MatchConfig) -> DataFrame:
    """Scores candidate group pairs: ``group_a, group_b, similarity, same_product`` for the pairs in the same
    block at or above ``min_similarity`` (a block check guards against hash collisions)."""
    g = grp.select("group_id", *GROUP_KEY, "second_variant")
    a = g.select(*[F.col(c).alias(f"a_{c}") for c in g.columns])
    b = g.select(*[F.col(c).alias(f"b_{c}") for c in g.columns])
    scored = (pairs.join(a, F.col("group_a") == F.col("a_group_id")).join(b, F.col("group_b") == F.col("b_group_id"))
              .where(F.col("a_block") == F.col("b_block"))
              .withColumn("similarity", jaccard(F.col("a_shingles"), F.col("b_shingles"))))
    a_num, b_num = F.col("a_numbers"), F.col("b_numbers")
    others = rules_agree(F.col("a_subcategory"), F.col("b_subcategory"), F.col("a_colour"), F.col("b_colour"),
                         F.col("a_colour_words"), F.col("b_colour_words"), a_num, a_num,
                         F.col("a_kind_words"), F.col("b_kind_words"))
    eligible = others & (a_num == b_num)
    # One title leaves the model number out, the other has one, the names are the same: the same product
    # while only one numbered variant of the name has been seen (judged at the pair's known_at, in match).
    gap = others & ((F.size(a_num) == 0) != (F.size(b_num) == 0)) & (F.col("a_letters") == F.col("b_letters"))
    return scored.where(F.col("similarity") >= cfg.min_similarity).select(
        "group_a", "group_b", "similarity",
        ((F.col("similarity") >= cfg.threshold) & eligible).alias("same_product"), eligible.alias("eligible"),
        gap.alias("number_gap"), F.coalesce("a_second_variant", "b_second_variant").alias("gap_until"))


def same_product(similarity: Column, threshold: float, sub_a: Column, sub_b: Column, colour_a: Column,
                 colour_b: Column, words_a: Column, words_b: Column, numbers_a: Column, numbers_b: Column,
                 kind_a: Column | None = None, kind_b: Column | None = None) -> Column:
    """The pairwise decision: similarity at least ``threshold`` and :func:`rules_agree`."""
    return (similarity >= threshold) & rules_agree(sub_a, sub_b, colour_a, colour_b, words_a, words_b, numbers_a,
                                                   numbers_b, kind_a, kind_b)


def rules_agree(sub_a: Column, sub_b: Column, colour_a: Column, colour_b: Column, words_a: Column, words_b: Column,
                numbers_a: Column, numbers_b: Column, kind_a: Column | None = None,
                kind_b: Column | None = None) -> Column:
    """Everything the same-product decision asks besides similarity: the same model numbers, the same type,
    agreeing colours, and neither listing a lot or an accessory (no kind words).

    Model numbers (digit runs in the model words: ``vemora 90``, ``vemora90``) must be the same set: a
    model's number is what tells ``Vemora 90`` from ``Vemora 95``, whose words are otherwise alike.  Colours
    agree when the colour words both titles name overlap (a seller's own word is the most specific); when
    either names none, when the colour attributes are equal.  A missing attribute (a source without colours or
    types) is no evidence either way and vetoes nothing."""
    both_named = (F.size(words_a) > 0) & (F.size(words_b) > 0)
    colour_ok = F.when(both_named, F.arrays_overlap(words_a, words_b)).otherwise(
        F.coalesce(colour_a == colour_b, F.lit(True)))
    out = (numbers_a == numbers_b) & F.coalesce(sub_a == sub_b, F.lit(True)) & colour_ok
    if kind_a is not None and kind_b is not None:
        # A lot of three or the box is not an instance of the product it names, nor of anything else.
        out = out & (F.size(kind_a) == 0) & (F.size(kind_b) == 0)
    return out


@dataclass(frozen=True)
class MatchResult:
    pairs: DataFrame
    """``listing_id, matched_listing_id, similarity, same_product, known_at``: both directions."""
    decided: DataFrame
    """:attr:`pairs` plus ``eligible`` (every rule of the decision but the similarity threshold holds): the
    precision-recall curve over the threshold (:func:`pr_curve`)."""
    group_pairs: DataFrame
    """``group_a, group_b, similarity, same_product`` (a < b), the scored candidates (persisted)."""
    members: DataFrame
    """``group_id, listing_id, created_at, valid_from, valid_to``: listing versions (persisted)."""
    candidates: DataFrame
    """``group_a, group_b``: what the LSH proposed, before scoring (what candidate generation costs)."""
    keyed: int
    """Listings that name a model (entered matching)."""
    groups: int
    """Distinct (block, type, colour, model words) groups among their versions."""
    brands_inferred: int = 0
    """Listings without a brand attribute that were given one (:func:`inferred_brands`)."""
    cached: tuple[DataFrame, ...] = ()

    def release(self) -> None:
        """Drops the cached frames (call when the pairs and clusters are written)."""
        for df in self.cached:
            df.unpersist()


def match(listings: DataFrame, cfg: MatchConfig) -> MatchResult:
    """Listing pairs at or above ``min_similarity`` in the same brand x category block, with the same-product
    decision.  Lazy except for the vocabulary and the inferred brands (small: computed once, checkpointed) and
    the small counts it returns; the caller persists what it reuses."""
    # Small, and read three times (the inferred brands twice, the keys once): computed once, its lineage cut so
    # that the plans below do not each carry the vocabulary's windows (their text alone outgrew the driver).
    vocab = vocabulary(listings).localCheckpoint()
    inferred = 0
    if cfg.infer_brand:
        # Small (a row per brandless listing it decides): computed once, lineage cut, like the vocabulary.
        brands = inferred_brands(listings, vocab).localCheckpoint()
        inferred = brands.count()
        listings = with_brands(listings, brands)
    keys = match_keys(listings, vocab)
    grp, members = groups(keys)
    grp, members = grp.persist(), members.persist()
    n_groups = grp.count()
    keyed = members.where(F.col("valid_from") == F.col("created_at")).count()  # a listing's first version
    cand = banded_candidates(grp, cfg) if cfg.method == "banded" else spark_ml_candidates(grp, cfg)
    # Scored once, read twice (listing pairs and clusters); the group attributes are then no longer needed.
    scored = decide(cand, grp, cfg).persist()
    # Listings of one group are each other's matches too (identical words, type and colours).
    # (Not when they are lots or accessories: those are no instance of anything.)
    plain = F.size("kind_words") == 0
    within = grp.where(F.col("n") > 1).select(F.col("group_id").alias("group_a"), F.col("group_id").alias("group_b"),
                                              F.lit(1.0).alias("similarity"), plain.alias("same_product"),
                                              plain.alias("eligible"), F.lit(False).alias("number_gap"),
                                              F.lit(None).cast("timestamp").alias("gap_until"))
    both = (scored.unionByName(scored.select(F.col("group_b").alias("group_a"), F.col("group_a").alias("group_b"),
                                             "similarity", "same_product", "eligible", "number_gap", "gap_until"))
            .unionByName(within))
    m_a = members.select(F.col("group_id").alias("group_a"), "listing_id", F.col("created_at").alias("_ca"),
                         F.col("valid_from").alias("_fa"), F.col("valid_to").alias("_ta"))
    m_b = members.select(F.col("group_id").alias("group_b"), F.col("listing_id").alias("matched_listing_id"),
                         F.col("created_at").alias("_cb"), F.col("valid_from").alias("_fb"),
                         F.col("valid_to").alias("_tb"))
    known_at = F.greatest("_ca", "_cb")
    # Each listing has one version valid at any time from its listing on: one row per listing pair, judged
    # with the vocabulary as of the pair's known_at.
    gap_ok = F.col("number_gap") & (F.col("gap_until").isNull() | (known_at < F.col("gap_until")))
    decided = (both.join(m_a, "group_a").join(m_b, "group_b")
               .where((F.col("listing_id") != F.col("matched_listing_id"))
                      & _valid(known_at, F.col("_fa"), F.col("_ta")) & _valid(known_at, F.col("_fb"), F.col("_tb")))
               .select("listing_id", "matched_listing_id", "similarity",
                       (F.col("same_product") | (gap_ok & (F.col("similarity") >= cfg.threshold))).alias("same_product"),
                       known_at.alias("known_at"), (F.col("eligible") | gap_ok).alias("eligible")))
    # As of the build (what clusters read): a number gap holds while no second variant has been seen at all.
    as_built = scored.select("group_a", "group_b", "similarity", (F.col("same_product") | (
        F.col("number_gap") & F.col("gap_until").isNull() & (F.col("similarity") >= cfg.threshold))).alias("same_product"))
    return MatchResult(decided.drop("eligible"), decided, as_built, members, cand, keyed, n_groups, inferred,
                       (grp, members, scored, vocab))


# ---- clusters -----------------------------------------------------------------------------------------------
def connected_components(edges: DataFrame, max_iterations: int, local_max_edges: int = 0) -> DataFrame:
    """``node, component``: the smallest node id of each node's connected component.  ``edges``: ``src, dst``
    (either direction is enough).

    A graph of at most ``local_max_edges`` distinct (directed) edges is collected and solved exactly on the driver
    (:func:`local_components`): a count and a collect instead of a few Spark jobs per round.  A larger one stays
    distributed: min-label propagation with pointer jumping, where each round a node takes the smallest label
    among its neighbours and its label's label, so long chains shrink geometrically (at most ``max_iterations``
    rounds)."""
    und = edges.select("src", "dst").unionByName(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    und = und.distinct().persist()
    # Counting fills the cache that the rounds below read anyway; only a small graph crosses to the driver.
    if local_max_edges > 0 and und.count() <= local_max_edges:
        small = und.toPandas()
        und.unpersist()
        node_type = edges.schema["src"].dataType
        comp = local_components(small["src"].to_numpy(), small["dst"].to_numpy())
        schema = T.StructType([T.StructField("node", node_type), T.StructField("component", node_type)])
        return edges.sparkSession.createDataFrame(comp, schema)
    labels = und.select(F.col("src").alias("node")).distinct().withColumn("label", F.col("node")).localCheckpoint()
    for _ in range(max_iterations):
        nbr = (und.join(labels.select(F.col("node").alias("dst"), "label"), "dst")
               .groupBy("src").agg(F.min("label").alias("nbr")))
        step = (labels.join(nbr, labels["node"] == nbr["src"], "left")
                .select("node", F.least("label", F.coalesce("nbr", "label")).alias("label")))
        jump = (step.join(step.select(F.col("node").alias("label"), F.col("label").alias("label2")), "label", "left")
                .select("node", F.least("label", F.coalesce("label2", "label")).alias("label"))).localCheckpoint()
        changed = jump.join(labels.withColumnRenamed("label", "old"), "node").where(F.col("label") != F.col("old"))
        labels = jump
        if changed.isEmpty():
            und.unpersist()
            return labels.withColumnRenamed("label", "component")
    und.unpersist()
    raise PricingError(f"product clusters did not converge in {max_iterations} rounds of label propagation; "
                       "raise match.max_cluster_iterations")


def local_components(src: np.ndarray, dst: np.ndarray) -> pd.DataFrame:
    """``node, component`` of the graph with edges ``src[i] - dst[i]``, in memory (scipy's connected components on
    the nodes' ranks): each node's component is the smallest node id in it, as :func:`connected_components`
    defines it.  Node ids keep their type (numbers or strings)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    nodes, index = np.unique(np.concatenate([src, dst]), return_inverse=True)  # sorted: rank order is id order
    n = len(nodes)
    if n == 0:
        return pd.DataFrame({"node": nodes, "component": nodes})
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (index[:len(src)], index[len(src):])), shape=(n, n))
    _, label = scipy_components(graph, directed=False)
    smallest = np.full(label.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, label, np.arange(n))  # the smallest rank, i.e. the smallest id, of each component
    return pd.DataFrame({"node": nodes, "component": nodes[smallest[label]]})


def clusters(result: MatchResult, max_iterations: int, local_max_edges: int = 0) -> DataFrame:
    """``listing_id, cluster_id, cluster_size, as_of``: every listing with at least one same-product match, in
    the connected component of the same-product graph; ``cluster_id`` is the component's smallest listing id
    and ``as_of`` its latest listing time (the cluster as stored exists from then on).  Clusters are built
    from every listing, so each listing takes part with its last version (the vocabulary as of the build)."""
    members = result.members.where(F.col("valid_to").isNull()).select("group_id", "listing_id", "created_at")
    live = members.select("group_id").distinct()
    edges = (result.group_pairs.where("same_product")
             .join(live.withColumnRenamed("group_id", "group_a"), "group_a", "left_semi")
             .join(live.withColumnRenamed("group_id", "group_b"), "group_b", "left_semi")
             .select(F.col("group_a").alias("src"), F.col("group_b").alias("dst")))
    comp = connected_components(edges, max_iterations, local_max_edges)
    members = members.join(comp.withColumnRenamed("node", "group_id"), "group_id", "left")
    # Groups with no same-product edge are components of their own.
    members = members.withColumn("component", F.coalesce("component", "group_id"))
    size = Window.partitionBy("component")
    out = (members.withColumn("cluster_id", F.min("listing_id").over(size))
           .withColumn("cluster_size", F.count("*").over(size))
           .withColumn("as_of", F.max("created_at").over(size)))
    return out.where(F.col("cluster_size") > 1).select("listing_id", "cluster_id", "cluster_size", "as_of")


# ---- evaluation against the simulator's truth (evaluation code only) ----------------------------------------
def _pairs_of(n: Column) -> Column:
    return n * (n - 1) / 2


def pair_scores(pairs: DataFrame, truth: DataFrame) -> dict[str, float]:
    """Pairwise precision and recall of the direct same-product decisions.  ``truth``: ``listing_id,
    product_id`` for every listing (null: no product).  A predicted pair is true when both listings are
    instances of one product; recall's denominator is every pair of instances of one product."""
    p = truth.select("listing_id", F.col("product_id").alias("_pa"))
    q = truth.select(F.col("listing_id").alias("matched_listing_id"), F.col("product_id").alias("_pb"))
    row = first_row(pairs.where("same_product").where(F.col("listing_id") < F.col("matched_listing_id"))
                    .join(p, "listing_id").join(q, "matched_listing_id")
                    .agg(F.count("*").alias("predicted"),
                         F.sum((F.col("_pa") == F.col("_pb")).cast("long")).alias("tp")))
    true_pairs = first_value(truth.where(F.col("product_id").isNotNull()).groupBy("product_id").count()
                             .agg(F.sum(_pairs_of(F.col("count"))))) or 0
    return _scores(int(row["predicted"] or 0), int(row["tp"] or 0), int(true_pairs))


def cluster_scores(clustered: DataFrame, truth: DataFrame) -> dict[str, float]:
    """Pairwise precision and recall of the clusters (every pair of listings in one cluster is predicted
    the same product), from cluster x product counts: nothing quadratic is materialised."""
    c = truth.join(clustered.select("listing_id", "cluster_id"), "listing_id", "left")
    cells = c.where(F.col("cluster_id").isNotNull()).groupBy("cluster_id", "product_id").count()
    predicted = first_value(cells.groupBy("cluster_id").agg(F.sum("count").alias("n")).agg(F.sum(_pairs_of(F.col("n")))))
    tp = first_value(cells.where(F.col("product_id").isNotNull()).agg(F.sum(_pairs_of(F.col("count")))))
    true_pairs = first_value(truth.where(F.col("product_id").isNotNull()).groupBy("product_id").count()
                             .agg(F.sum(_pairs_of(F.col("count")))))
    return _scores(int(predicted or 0), int(tp or 0), int(true_pairs or 0))


def pr_curve(decided: DataFrame, truth: DataFrame, thresholds: Iterable[float]) -> list[dict[str, float]]:
    """Pairwise precision and recall of the same-product decision at each similarity ``threshold`` (the other
    rules as they are), from :attr:`MatchResult.decided`: one pass over the pairs.  Thresholds below the
    comparables' ``min_similarity`` see only the pairs kept (the candidates are generated once)."""
    ts = sorted(set(thresholds))
    p = truth.select("listing_id", F.col("product_id").alias("_pa"))
    q = truth.select(F.col("listing_id").alias("matched_listing_id"), F.col("product_id").alias("_pb"))
    ok = decided.where("eligible").where(F.col("listing_id") < F.col("matched_listing_id"))
    hit = (F.col("_pa") == F.col("_pb")).cast("long")
    row = first_row(ok.join(p, "listing_id").join(q, "matched_listing_id").agg(*[
        agg for i, t in enumerate(ts) for agg in (
            F.count_if(F.col("similarity") >= t).alias(f"n{i}"),
            F.sum(F.when(F.col("similarity") >= t, hit).otherwise(0)).alias(f"tp{i}"))]))
    true_pairs = first_value(truth.where(F.col("product_id").isNotNull()).groupBy("product_id").count()
                             .agg(F.sum(_pairs_of(F.col("count"))))) or 0
    return [{"threshold": t, **_scores(int(row[f"n{i}"] or 0), int(row[f"tp{i}"] or 0), int(true_pairs))}
            for i, t in enumerate(ts)]


def _scores(predicted: int, tp: int, true_pairs: int) -> dict[str, float]:
    precision = tp / predicted if predicted else float("nan")
    recall = tp / true_pairs if true_pairs else float("nan")
    return {"precision": precision, "recall": recall, "predicted_pairs": float(predicted), "true_pairs": float(true_pairs),
            "true_positive_pairs": float(tp)}


def recall_at_k(pairs: DataFrame, truth: DataFrame, ks: Iterable[int]) -> dict[int, float]:
    """For each product instance with at least one other instance: of its ``min(k, others)`` best possible
    hits, the share found among its ``k`` top-ranked comparables (same-product matches first, then by
    similarity, then the lower listing id); averaged over instances.  Instances the matcher never keyed
    (no model words) count with zero hits."""
    ks = sorted(set(ks))
    inst = truth.where(F.col("product_id").isNotNull())
    others = inst.groupBy("product_id").agg((F.count("*") - 1).alias("others"))
    queries = inst.join(others.where("others > 0"), "product_id").select("listing_id", "product_id", "others")
    rank = F.row_number().over(Window.partitionBy("listing_id").orderBy(
        F.col("same_product").desc(), F.col("similarity").desc(), F.col("matched_listing_id")))
    q = truth.select(F.col("listing_id").alias("matched_listing_id"), F.col("product_id").alias("_pm"))
    ranked = (pairs.withColumn("rank", rank).where(F.col("rank") <= max(ks))
              .join(queries, "listing_id").join(q, "matched_listing_id")
              .withColumn("hit", (F.col("_pm") == F.col("product_id")).cast("int")))
    hits = ranked.groupBy("listing_id").agg(*[F.sum(F.when(F.col("rank") <= k, F.col("hit")).otherwise(0))
                                              .alias(f"h{k}") for k in ks])
    per = queries.join(hits, "listing_id", "left")
    row = first_row(per.agg(*[F.avg(F.coalesce(F.col(f"h{k}"), F.lit(0)) / F.least(F.col("others"), F.lit(k))).alias(f"r{k}")
                    for k in ks]))
    return {k: float(row[f"r{k}"]) if row[f"r{k}"] is not None else float("nan") for k in ks}


PAIR_SCHEMA = T.StructType([
    T.StructField("listing_id", T.LongType()), T.StructField("matched_listing_id", T.LongType()),
    T.StructField("similarity", T.DoubleType()), T.StructField("same_product", T.BooleanType()),
    T.StructField("known_at", T.TimestampType())])
