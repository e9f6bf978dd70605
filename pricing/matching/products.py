"""Product matching: the same product (one trainer model in one colourway) listed by many sellers with different
words, found at catalogue scale with MinHash LSH in Spark.

Pipeline (every step a pure function on DataFrames; the job at the edge reads and writes):

1. **Normalise** each title: lower case, letters and digits only, size mentions removed (``size M``, ``sz 10``,
   ``UK 8``: instances of one product differ in size), colour and type synonyms folded (``gray`` -> ``grey``,
   ``sneakers`` -> ``trainers``).
2. **Model words**: the title's words that are neither generic fashion vocabulary (:data:`GENERIC`: colours,
   types, materials, styles, condition and sales words, sizes, the category tree's own names, and their
   one-typo spellings) nor the listing's brand.  They name the model line (``vemora 90``); their digit runs
   are its model numbers.  A listing without
   any (``black trainers size 8``) names no product and is not matched.
3. **Shingles**: character bigrams of each model word (``#vemora#`` -> ``#v, ve, em, ...``), so a typo or a
   joined spelling (``vemora90``) still shares most shingles.  Similarity is the exact Jaccard index of two
   listings' shingle sets.
4. **Groups**: listings with the same block, type, colour and shingles are one group (a popular product's
   instances collapse into a few groups), and candidates are generated between groups.
5. **Candidates**: MinHash signatures (``num_bands x rows_per_band`` hash functions, seeded) of each group's
   shingles, **blocked** by brand and category: the block is hashed into every shingle, so groups of different
   blocks never share a bucket and the job never compares everything with everything.  Banding (a candidate
   pair agrees on all ``rows_per_band`` min-hashes of at least one band) keeps the chance of a candidate near 1
   for similar pairs and near 0 for unrelated ones, so candidates grow with the catalogue, not its square.
   ``method: spark_ml`` uses Spark ML's ``MinHashLSH.approxSimilarityJoin`` instead (one min-hash per table,
   OR-ed: no AND-amplification), kept for the measured comparison in ``bench/matching.py``.
6. **Decision**: a pair is the **same product** when its similarity is at least ``threshold``, the model
   numbers are the same, the type (subcategory) is the same and the colours agree (the colour words both titles name overlap; if either
   title names none, the colour attributes are equal).  Every candidate pair at or above ``min_similarity``
   is kept as a **comparable** (the same line in another colourway, a near namesake).
7. **Clusters**: connected components of the same-product pairs (min-label propagation with pointer jumping).

Every pair's similarity and decision depend on the two listings alone (fixed vocabulary, seeded hash
functions, exact Jaccard): never on other, later listings.  That keeps comparable-sales features point-in-time
correct and lets an incremental feature build equal a full rebuild.  Clusters are not pair-local (a later
listing can bridge two earlier ones), so features never read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from pricing.platform.config import MatchConfig
from pricing.platform.errors import PricingError
from pricing.world import catalogue as cd

# ---- vocabulary ---------------------------------------------------------------------------------------------
COLOUR_SYNONYMS = {
    "gray": "grey", "blk": "black", "wht": "white", "ecru": "cream", "offwhite": "cream", "multicolour": "multi",
    "multicolor": "multi", "multicoloured": "multi", "navyblue": "navy", "khaki": "beige", "tan": "beige",
    "burgundy": "red", "maroon": "red", "lilac": "purple", "olive": "green", "charcoal": "grey",
}
"""Colour word -> palette colour (after :data:`PHRASES` joined multi-word names)."""
COLOURS = frozenset(cd.COLOURS) | frozenset(COLOUR_SYNONYMS)
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


def _taxonomy_words() -> set[str]:
    words: set[str] = set()
    for _, dept, cat, sub, _price in cd.category_tree():
        for name in (dept, cat, sub):
            words.update(w for w in name.replace("-", " ").split())
    return words


def _typo_spellings(word: str) -> set[str]:
    """One dropped letter or two swapped neighbours: how a generic word is mistyped on a phone.  Only for
    words of five letters or more: shorter ones would shadow real model words (``pair`` -> ``air``)."""
    if len(word) < 5:
        return set()
    drops = {word[:i] + word[i + 1:] for i in range(len(word))}
    swaps = {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
    return (drops | swaps) - {word}


def _generic() -> frozenset[str]:
    base = set(_WORDS.split()) | _taxonomy_words() | set(COLOURS) | set(cd.STYLES) | set(cd.MATERIALS)
    base |= {w + "s" for w in list(base) if not w.endswith("s")} | {w.rstrip("s") for w in base if len(w) > 3}
    return frozenset(base | {t for w in base for t in _typo_spellings(w)})


GENERIC = _generic()
"""Words that never name a product: the fashion vocabulary above, the category tree's names, colours, styles,
materials, simple plurals, and each one's single-typo spellings (a dropped letter, swapped neighbours)."""
_COLOUR_CANON = {**{c: c for c in cd.COLOURS}, **COLOUR_SYNONYMS}
_COLOUR_TYPOS = {t: c for w, c in _COLOUR_CANON.items() for t in _typo_spellings(w) if t not in _COLOUR_CANON}


def vocabulary(spark: SparkSession) -> DataFrame:
    """``word, colour, generic``: every generic word, with the palette colour it names (null when none).
    Small: broadcast into the token join."""
    rows = [(w, _COLOUR_CANON.get(w, _COLOUR_TYPOS.get(w)), True) for w in sorted(GENERIC)]
    return spark.createDataFrame(rows, "word string, colour string, generic boolean")


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


def match_keys(listings: DataFrame, vocab: DataFrame) -> DataFrame:
    """One row per branded listing that names a model: ``listing_id, created_at, brand, category,
    subcategory, colour, block, model_words, colour_words, shingles``.

    ``listings`` needs ``listing_id, created_at, title, brand, category, subcategory, colour``.  Words are
    classified by a broadcast join with ``vocab`` (:func:`vocabulary`), not per-row list scans.
    """
    keyed = (listings.where(F.col("brand").isNotNull() & F.col("category").isNotNull() & F.col("title").isNotNull())
             .select("listing_id", "created_at", "brand", "category", "subcategory", "colour",
                     normalise_title(F.col("title")).alias("_norm"), brand_words(F.col("brand")).alias("_brand_words")))
    words = (keyed.select("listing_id", "_brand_words", F.explode(F.split("_norm", " ")).alias("word"))
             .where(F.length("word") > 0)
             .join(F.broadcast(vocab), "word", "left"))
    model = (F.col("generic").isNull() & ~_is_brand_word(F.col("word"), F.col("_brand_words"))
             & ~F.col("word").isin(*sorted(STOPWORDS)))
    per_listing = words.groupBy("listing_id").agg(
        F.array_sort(F.collect_set(F.when(model, F.col("word")))).alias("model_words"),
        F.array_sort(F.collect_set(F.col("colour"))).alias("colour_words"))
    return (keyed.drop("_norm", "_brand_words").join(per_listing, "listing_id")
            .where(F.size("model_words") > 0)
            .withColumn("block", F.concat_ws("\u001f", F.lower("brand"), F.lower("category")))
            .withColumn("shingles", bigrams(F.col("model_words")))
            .withColumn("numbers", F.array_sort(F.array_distinct(
                F.regexp_extract_all(F.concat_ws(" ", "model_words"), F.lit(r"(\d+)"), 1)))))


# ---- candidates ---------------------------------------------------------------------------------------------
GROUP_KEY = ("block", "subcategory", "colour", "colour_words", "numbers", "shingles")


def groups(keys: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(groups, members): listings with identical :data:`GROUP_KEY` are one group (``group_id``: a hash of
    the key).  ``groups``: ``group_id`` + the key + ``n``; ``members``: ``group_id, listing_id, created_at``."""
    gid = F.xxhash64(*[F.col(c) for c in GROUP_KEY])
    members = keys.withColumn("group_id", gid)
    grouped = members.groupBy("group_id", *GROUP_KEY).agg(F.count("*").alias("n"))
    return grouped, members.select("group_id", "listing_id", "created_at")


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
    g = grp.select("group_id", *GROUP_KEY)
    a = g.select(*[F.col(c).alias(f"a_{c}") for c in g.columns])
    b = g.select(*[F.col(c).alias(f"b_{c}") for c in g.columns])
    scored = (pairs.join(a, F.col("group_a") == F.col("a_group_id")).join(b, F.col("group_b") == F.col("b_group_id"))
              .where(F.col("a_block") == F.col("b_block"))
              .withColumn("similarity", jaccard(F.col("a_shingles"), F.col("b_shingles"))))
    return scored.where(F.col("similarity") >= cfg.min_similarity).select(
        "group_a", "group_b", "similarity",
        same_product(F.col("similarity"), cfg.threshold, F.col("a_subcategory"), F.col("b_subcategory"),
                     F.col("a_colour"), F.col("b_colour"), F.col("a_colour_words"), F.col("b_colour_words"),
                     F.col("a_numbers"), F.col("b_numbers"))
        .alias("same_product"))


def same_product(similarity: Column, threshold: float, sub_a: Column, sub_b: Column, colour_a: Column,
                 colour_b: Column, words_a: Column, words_b: Column, numbers_a: Column, numbers_b: Column) -> Column:
    """The pairwise decision: similar model words, the same model numbers, the same type, agreeing colours.

    Model numbers (digit runs in the model words: ``vemora 90``, ``vemora90``) must be the same set: a
    model's number is what tells ``Vemora 90`` from ``Vemora 95``, whose words are otherwise alike.  Colours
    agree when the colour words both titles name overlap (a seller's own word is the most specific); when
    either names none, when the colour attributes are equal.  A missing attribute (a source without colours or
    types) is no evidence either way and vetoes nothing."""
    both_named = (F.size(words_a) > 0) & (F.size(words_b) > 0)
    colour_ok = F.when(both_named, F.arrays_overlap(words_a, words_b)).otherwise(
        F.coalesce(colour_a == colour_b, F.lit(True)))
    return ((similarity >= threshold) & (numbers_a == numbers_b) & F.coalesce(sub_a == sub_b, F.lit(True))
            & colour_ok)


@dataclass(frozen=True)
class MatchResult:
    pairs: DataFrame
    """``listing_id, matched_listing_id, similarity, same_product, known_at``: both directions."""
    group_pairs: DataFrame
    """``group_a, group_b, similarity, same_product`` (a < b), the scored candidates (persisted)."""
    members: DataFrame
    """``group_id, listing_id, created_at`` (persisted)."""
    candidates: DataFrame
    """``group_a, group_b``: what the LSH proposed, before scoring (what candidate generation costs)."""
    keyed: int
    """Listings that name a model (entered matching)."""
    groups: int
    """Distinct (block, type, colour, model words) groups among them."""
    cached: tuple[DataFrame, ...] = ()

    def release(self) -> None:
        """Drops the cached frames (call when the pairs and clusters are written)."""
        for df in self.cached:
            df.unpersist()


def match(listings: DataFrame, cfg: MatchConfig) -> MatchResult:
    """Listing pairs at or above ``min_similarity`` in the same brand x category block, with the same-product
    decision.  Lazy except for the small counts it returns; the caller persists what it reuses."""
    spark = listings.sparkSession
    keys = match_keys(listings, vocabulary(spark))
    grp, members = groups(keys)
    grp, members = grp.persist(), members.persist()
    counts = grp.agg(F.sum("n").alias("keyed"), F.count("*").alias("groups")).first()
    cand = banded_candidates(grp, cfg) if cfg.method == "banded" else spark_ml_candidates(grp, cfg)
    # Scored once, read twice (listing pairs and clusters); the group attributes are then no longer needed.
    scored = decide(cand, grp, cfg).persist()
    # Listings of one group are each other's matches too (identical words, type and colours).
    within = grp.where(F.col("n") > 1).select(F.col("group_id").alias("group_a"), F.col("group_id").alias("group_b"),
                                              F.lit(1.0).alias("similarity"), F.lit(True).alias("same_product"))
    both = (scored.unionByName(scored.select(F.col("group_b").alias("group_a"), F.col("group_a").alias("group_b"),
                                             "similarity", "same_product"))
            .unionByName(within))
    m_a = members.select(F.col("group_id").alias("group_a"), "listing_id", F.col("created_at").alias("_ca"))
    m_b = members.select(F.col("group_id").alias("group_b"), F.col("listing_id").alias("matched_listing_id"),
                         F.col("created_at").alias("_cb"))
    pairs = (both.join(m_a, "group_a").join(m_b, "group_b")
             .where(F.col("listing_id") != F.col("matched_listing_id"))
             .select("listing_id", "matched_listing_id", "similarity", "same_product",
                     F.greatest("_ca", "_cb").alias("known_at")))
    return MatchResult(pairs, scored, members, cand, int(counts["keyed"] or 0), int(counts["groups"] or 0),
                       (grp, members, scored))


# ---- clusters -----------------------------------------------------------------------------------------------
def connected_components(edges: DataFrame, max_iterations: int) -> DataFrame:
    """``node, component``: the smallest node id of each node's connected component.  ``edges``: ``src, dst``
    (either direction is enough).  Min-label propagation with pointer jumping: each round a node takes the
    smallest label among its neighbours and its label's label, so long chains shrink geometrically."""
    und = edges.select("src", "dst").unionByName(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    und = und.distinct().persist()
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


def clusters(result: MatchResult, max_iterations: int) -> DataFrame:
    """``listing_id, cluster_id, cluster_size, as_of``: every listing with at least one same-product match, in
    the connected component of the same-product graph; ``cluster_id`` is the component's smallest listing id
    and ``as_of`` its latest listing time (the cluster as stored exists from then on)."""
    edges = result.group_pairs.where("same_product").select(F.col("group_a").alias("src"), F.col("group_b").alias("dst"))
    comp = connected_components(edges, max_iterations)
    members = result.members.join(comp.withColumnRenamed("node", "group_id"), "group_id", "left")
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
    row = (pairs.where("same_product").where(F.col("listing_id") < F.col("matched_listing_id"))
           .join(p, "listing_id").join(q, "matched_listing_id")
           .agg(F.count("*").alias("predicted"), F.sum((F.col("_pa") == F.col("_pb")).cast("long")).alias("tp"))
           .first())
    true_pairs = (truth.where(F.col("product_id").isNotNull()).groupBy("product_id").count()
                  .agg(F.sum(_pairs_of(F.col("count")))).first()[0] or 0)
    return _scores(int(row["predicted"] or 0), int(row["tp"] or 0), int(true_pairs))


def cluster_scores(clustered: DataFrame, truth: DataFrame) -> dict[str, float]:
    """Pairwise precision and recall of the clusters (every pair of listings in one cluster is predicted
    the same product), from cluster x product counts: nothing quadratic is materialised."""
    c = truth.join(clustered.select("listing_id", "cluster_id"), "listing_id", "left")
    cells = c.where(F.col("cluster_id").isNotNull()).groupBy("cluster_id", "product_id").count()
    predicted = cells.groupBy("cluster_id").agg(F.sum("count").alias("n")).agg(F.sum(_pairs_of(F.col("n")))).first()[0]
    tp = cells.where(F.col("product_id").isNotNull()).agg(F.sum(_pairs_of(F.col("count")))).first()[0]
    true_pairs = (truth.where(F.col("product_id").isNotNull()).groupBy("product_id").count()
                  .agg(F.sum(_pairs_of(F.col("count")))).first()[0])
    return _scores(int(predicted or 0), int(tp or 0), int(true_pairs or 0))


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
    row = per.agg(*[F.avg(F.coalesce(F.col(f"h{k}"), F.lit(0)) / F.least(F.col("others"), F.lit(k))).alias(f"r{k}")
                    for k in ks]).first()
    return {k: float(row[f"r{k}"]) if row[f"r{k}"] is not None else float("nan") for k in ks}


PAIR_SCHEMA = T.StructType([
    T.StructField("listing_id", T.LongType()), T.StructField("matched_listing_id", T.LongType()),
    T.StructField("similarity", T.DoubleType()), T.StructField("same_product", T.BooleanType()),
    T.StructField("known_at", T.TimestampType())])
