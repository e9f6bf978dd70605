"""The hard world (``simulator.world: hard``): how sellers title products in a world the matcher was not written
against.  Nothing here is read by the matcher (``pricing.matching`` never imports ``pricing.world``), so its
vocabulary is **held out**: the matcher can only learn it from the listings.

What changes against the standard world (which stays byte-identical):

* **Held-out words**: colour, type and condition words, abbreviations and typos (:data:`COLOUR_WORDS`,
  :data:`ITEM_WORDS`, :data:`FILLERS`) that appear in no list of the matcher's, in product and other titles alike.
* **Brand**: left out of 45% of product titles (15% in the standard world), and missing as an attribute too
  on :data:`NO_BRAND_SHARE` of branded listings (the seller did not fill it in; sometimes still in the title).
* **Sizes** in formats the matcher's size pattern does not know (``8uk``, ``eu36``, ``2xl``, ``x-small``,
  ``lrg``): instances of one product in different sizes are still one product.
* **Model names**: a typo now and then (a dropped or doubled letter), and the model number left out of
  :data:`NO_NUMBER_SHARE` of numbered titles (still the same product).
* **Namesakes**: :data:`NAMESAKE_SHARE` of model families copy another family's names (``Vemora 90``) under
  another brand, in the same leaf category: not the same product.
* **Lots and accessories**: :data:`LOT_SHARE` of would-be product instances are lots (``lot of 3 Vemora 90``,
  several items: priced a multiple) and :data:`ACCESSORY_SHARE` are not the product at all (``box only``,
  ``dust bag for``, ``receipt``: priced a fraction); they share the product's words but have no
  ``product_id`` in ``truth.listings``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

Uniform = Callable[[str], Column]

NO_BRAND_SHARE = 0.05
"""Branded listings whose brand attribute is missing (the seller left it empty)."""
BRAND_IN_TITLE = 0.55
"""Product titles that name the brand."""
NO_NUMBER_SHARE = 0.08
"""Numbered product titles without their model number."""
NAME_TYPO_SHARE = 0.08
"""Product titles with a typo in the model name."""
NAMESAKE_SHARE = 0.25
"""Model families named like the previous family (its brand is never theirs)."""
LOT_SHARE = 0.05
"""Would-be product instances that are lots of 2 to 5 (not the product)."""
ACCESSORY_SHARE = 0.05
"""Would-be product instances that are an accessory or paperwork of the product (not the product)."""
LOT_DISCOUNT = 0.85
"""A lot of n is priced n x this x the item."""
ACCESSORY_EFFECT = math.log(0.12)
"""An accessory's price relative to its product (log scale)."""

COLOUR_WORDS = {
    "black": ("black", "blck", "noir", "jet black", "onyx"), "white": ("white", "wte", "ivory", "snow white"),
    "grey": ("grey", "gry", "graphite", "ash"), "navy": ("navy", "nvy", "midnight"),
    "blue": ("blue", "blu", "cobalt", "sky"), "red": ("red", "rd", "crimson", "scarlet"),
    "green": ("green", "grn", "sage", "forest"), "pink": ("pink", "pnk", "blush", "rose"),
    "beige": ("beige", "bge", "sand", "stone"), "brown": ("brown", "brwn", "chocolate", "mocha"),
    "cream": ("cream", "crm", "vanilla"), "multi": ("multi", "rainbow", "mixed colour"),
    "purple": ("purple", "prpl", "violet", "plum"), "yellow": ("yellow", "yllw", "mustard", "lemon"),
    "orange": ("orange", "orng", "rust", "tangerine")}
"""Held-out colour spellings (the palette name first): the matcher knows the first, learns the rest or not."""
ITEM_WORDS = {
    "trainers": ("trnrs", "runners", "sneaks", "tennis shoes", "kicks"), "jumpers": ("jmpr", "pullover", "knit"),
    "hoodies": ("hoodi", "zip hoodie", "hoody"), "t-shirts": ("tshrt", "t shirt", "graphic tee"),
    "sweatshirts": ("swtshirt", "crew", "sweat"), "jackets": ("jkt", "jacket", "shacket"),
    "puffers": ("puffa", "puffer", "quilted jacket"), "jeans": ("jeans", "dnm", "denims"),
    "boots": ("bootz", "ankle boots", "boots"), "joggers": ("trackie bottoms", "jogs", "sweatpants"),
    "coats": ("overcoat", "coat", "trench"), "shirts": ("button up", "shirt", "button down"),
    "dresses": ("frock", "dress"), "skirts": ("skirt", "skrt"), "caps": ("snapback", "cap", "hat")}
"""Held-out type words per subcategory (or category); others are written by name."""
FILLERS = ("vgc", "euc", "gc", "nwot", "bnib", "fab cond", "hardly worn", "as new", "preloved", "pre loved",
           "mint cond", "stunning", "must have", "fits tts", "worn twice", "rrp", "grail", "steal", "bargain",
           "smoke free home", "pet free", "quick sale", "price drop", "reduced")
"""Held-out words sellers add (condition abbreviations, sales talk)."""
SIZES = {"XXS": ("xxs", "2xs", "xx-small"), "XS": ("x-small", "xsmall", "extra small"),
         "S": ("small", "sml", "sm"), "M": ("medium", "med", "md"), "L": ("large", "lrg", "lg"),
         "XL": ("x-large", "xlarge", "extra large"), "XXL": ("2xl", "xx-large", "xxlarge"),
         "one size": ("os", "one-size", "onesize")}
"""Held-out size spellings; numeric sizes are written ``8uk``, ``uk 8`` or ``eu36``."""
LOT_PATTERNS = ("lot of {n} {line} {item}", "{n}x {brand} {line} {item}", "{line} {item} x{n} bundle",
                "job lot {n} {brand} {line}", "{n} pack {line} {item}", "set of {n} {line} {item}",
                "{brand} {line} {item} joblot {n} pcs")
"""How a lot of ``n`` items is titled."""
ACCESSORY_PATTERNS = ("box only {brand} {line}", "empty box for {line} {item}", "dust bag for {brand} {line}",
                      "{brand} {line} receipt", "replacement laces for {line} {item}", "{line} tags only",
                      "original packaging {brand} {line}", "{brand} {line} insoles only",
                      "shoe bag {line} {brand}", "{line} {item} spare buttons")
"""How a listing that is not the product but belongs to it is titled."""


def pick_text(options: tuple[str, ...], u: Column) -> Column:
    """One of ``options``, uniformly."""
    return F.element_at(F.array(*[F.lit(o) for o in options]), (F.floor(u * len(options)) + 1).cast("int"))


def _spelt(words: Mapping[str, tuple[str, ...]], key: Column, u: Column) -> Column:
    spellings = F.create_map(*[x for k, opts in words.items()
                               for x in (F.lit(k), F.array(*[F.lit(o) for o in opts]))])
    options = F.element_at(spellings, key)
    return F.element_at(options, (F.floor(u * F.size(options)) + 1).cast("int"))


def kinds(seed_u: Uniform) -> Callable[[DataFrame], DataFrame]:
    """``_kind``: ``item`` for a product instance, ``lot`` / ``accessory`` for would-be instances that are not the
    product (their ``product_id`` is then null, but the title still names the product: ``_line_name``), null
    for other listings; ``_lot_n`` and ``_kind_effect`` (log price relative to one item)."""
    def step(df: DataFrame) -> DataFrame:
        u = seed_u("hard_kind")
        kind = (F.when(F.col("product_id").isNull(), F.lit(None))
                .when(u < LOT_SHARE, "lot").when(u < LOT_SHARE + ACCESSORY_SHARE, "accessory").otherwise("item"))
        n = (F.floor(seed_u("hard_lot_n") * 4) + 2).cast("int")
        return (df.withColumn("_kind", kind).withColumn("_lot_n", n)
                .withColumn("_kind_effect", F.when(F.col("_kind") == "lot", F.log(n * LOT_DISCOUNT))
                            .when(F.col("_kind") == "accessory", ACCESSORY_EFFECT).otherwise(0.0))
                .withColumn("_line_name", F.col("line_name"))
                .withColumn("product_id", F.when(F.col("_kind") == "item", F.col("product_id"))))
    return step


def without_brand(seed_u: Uniform) -> Callable[[DataFrame], DataFrame]:
    """Keeps the brand's name for titles (``_brand_text``) and empties the attribute on a share of listings."""
    def step(df: DataFrame) -> DataFrame:
        return (df.withColumn("_brand_text", F.col("brand"))
                .withColumn("brand", F.when(seed_u("hard_no_brand") >= NO_BRAND_SHARE, F.col("brand"))))
    return step


def _size_text(u: Uniform) -> Column:
    numeric = F.col("size").rlike("^[0-9]+$")
    num_fmt = F.floor(u("h_size_fmt") * 3)
    num = (F.when(num_fmt == 0, F.concat(F.col("size"), F.lit("uk")))
           .when(num_fmt == 1, F.concat(F.lit("uk "), F.col("size")))
           .otherwise(F.concat(F.lit("eu"), (F.col("size").cast("int") + 28).cast("string"))))
    return F.when(numeric, num).otherwise(F.coalesce(_spelt(SIZES, F.col("size"), u("h_size_word")), F.col("size")))


def _colour_word(u: Uniform) -> Column:
    colour = F.coalesce(F.col("product_colour"), F.col("colour"))
    return F.when(u("h_colour_std") < 0.5, colour).otherwise(_spelt(COLOUR_WORDS, colour, u("h_colour_word")))


def _item_word(u: Uniform) -> Column:
    fallback = F.regexp_replace(F.regexp_replace("subcategory", "-", " "), "s$", "")
    key = F.coalesce(F.element_at(F.create_map(*[F.lit(x) for k in ITEM_WORDS for x in (k, k)]), F.col("subcategory")),
                     F.element_at(F.create_map(*[F.lit(x) for k in ITEM_WORDS for x in (k, k)]), F.col("category")))
    return F.when(u("h_item_std") < 0.3, fallback).otherwise(F.coalesce(_spelt(ITEM_WORDS, key, u("h_item_word")),
                                                                         fallback))


def _filler(u: Uniform) -> Column:
    return F.when(u("h_filler") < 0.5, pick_text(FILLERS, u("h_filler_word")))


def _line_text(u: Uniform) -> Column:
    """The model name as this seller writes it: spaced, joined or hyphenated; now and then without its number
    or with a typo in the name."""
    line = F.col("_line_name")
    spelling = F.floor(u("h_line_spelling") * 10)
    line = F.when(u("h_no_number") < NO_NUMBER_SHARE, F.trim(F.regexp_replace(line, r"\s*\d+$", ""))).otherwise(line)
    name = F.split(line, " ").getItem(0)
    rest = F.regexp_replace(line, r"^\S+", "")
    k = (F.floor(u("h_typo_pos") * (F.length(name) - 2)) + 2).cast("int")
    typo = F.when(u("h_typo_kind") < 0.5, F.concat(name.substr(F.lit(1), k - 1), name.substr(k + 1, F.lit(100))))\
        .otherwise(F.concat(name.substr(F.lit(1), k), name.substr(k, F.lit(100))))
    name = F.when(u("h_typo") < NAME_TYPO_SHARE, typo).otherwise(name)
    line = F.concat(name, rest)
    return (F.when(spelling < 7, line).when(spelling < 9, F.regexp_replace(line, " ", ""))
            .otherwise(F.regexp_replace(line, " ", "-")))


def _fill(pattern: Column, n: Column, brand: Column, line: Column, item: Column) -> Column:
    out = F.regexp_replace(pattern, r"\{n\}", n.cast("string"))
    out = F.regexp_replace(out, r"\{brand\}", F.coalesce(brand, F.lit("")))
    out = F.regexp_replace(out, r"\{line\}", line)
    out = F.regexp_replace(out, r"\{item\}", item)
    return F.trim(F.regexp_replace(out, r"\s+", " "))


def title(u: Uniform) -> Column:
    """The hard world's title of every listing (product instances, lots, accessories and the rest)."""
    brand = F.col("_brand_text")
    colour, item, size, filler = _colour_word(u), _item_word(u), _size_text(u), _filler(u)
    signals = F.col("_signals")
    line = _line_text(u)
    b = F.when(u("h_brand") < BRAND_IN_TITLE, brand)
    c = F.when(u("h_p_colour") < 0.8, colour)
    s = F.when(u("h_p_size") < 0.85, size)
    orders = [(signals, b, line, colour, item, filler, s), (signals, c, b, line, item, s, filler),
              (signals, line, item, c, s, filler), (signals, item, b, line, c, s, filler),
              (signals, filler, b, c, line, item, s)]
    o = F.floor(u("h_word_order") * len(orders))
    product = F.concat_ws(" ", *orders[-1])
    for i, parts in enumerate(orders[:-1]):
        product = F.when(o == i, F.concat_ws(" ", *parts)).otherwise(product)
    lot = _fill(pick_text(LOT_PATTERNS, u("h_lot_pattern")), F.col("_lot_n"), b, line, item)
    accessory = _fill(pick_text(ACCESSORY_PATTERNS, u("h_acc_pattern")), F.lit(""), b, line, item)
    other = F.concat_ws(" ", signals, F.when(u("brand_title") < 0.8, brand), F.col("_style_word"), colour, item,
                        filler, s)
    return (F.when(F.col("_kind") == "item", product).when(F.col("_kind") == "lot", lot)
            .when(F.col("_kind") == "accessory", accessory).otherwise(other))
