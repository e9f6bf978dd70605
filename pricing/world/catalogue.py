"""Static reference data for the simulator: a Depop-like category tree with base prices (GBP)."""

from __future__ import annotations

# (department, category, subcategory, base price GBP, daily sale hazard at fair price, price elasticity)
_WOMEN = {
    "tops": [("t-shirts", 12), ("blouses", 16), ("crop-tops", 11), ("shirts", 16), ("vests", 9),
             ("bodysuits", 13), ("corsets", 20)],
    "knitwear": [("jumpers", 22), ("cardigans", 20), ("hoodies", 24), ("sweatshirts", 20)],
    "bottoms": [("jeans", 22), ("trousers", 20), ("shorts", 13), ("leggings", 14), ("joggers", 16)],
    "skirts": [("mini-skirts", 14), ("midi-skirts", 18), ("maxi-skirts", 20)],
    "dresses": [("mini-dresses", 20), ("midi-dresses", 25), ("maxi-dresses", 28), ("evening-dresses", 40)],
    "outerwear": [("jackets", 35), ("coats", 48), ("blazers", 30), ("puffers", 45), ("denim-jackets", 28)],
    "footwear": [("trainers", 38), ("boots", 40), ("heels", 26), ("sandals", 18), ("flats", 16)],
    "bags": [("handbags", 35), ("shoulder-bags", 30), ("tote-bags", 18), ("backpacks", 25)],
    "accessories": [("jewellery", 12), ("sunglasses", 15), ("belts", 11), ("hats", 12), ("scarves", 10)],
    "activewear": [("sports-bras", 14), ("gym-leggings", 18), ("tracksuits", 25)],
}
_MEN = {
    "tops": [("t-shirts", 13), ("shirts", 18), ("polos", 15), ("vests", 9)],
    "knitwear": [("jumpers", 24), ("hoodies", 26), ("sweatshirts", 22), ("cardigans", 22)],
    "bottoms": [("jeans", 24), ("trousers", 22), ("shorts", 14), ("joggers", 18), ("cargos", 22)],
    "outerwear": [("jackets", 40), ("coats", 52), ("puffers", 50), ("fleeces", 26), ("gilets", 24)],
    "footwear": [("trainers", 42), ("boots", 45), ("shoes", 32), ("sliders", 14)],
    "accessories": [("caps", 12), ("watches", 30), ("bags", 24), ("belts", 12), ("sunglasses", 16)],
    "activewear": [("football-shirts", 22), ("tracksuits", 28), ("shorts-sport", 12)],
    "suits": [("suit-jackets", 40), ("waistcoats", 18)],
}
_KIDS = {
    "kids": [("girls-clothing", 10), ("boys-clothing", 10), ("baby-clothing", 8), ("kids-shoes", 14)],
}
_HOME = {
    "lifestyle": [("vinyl", 15), ("books", 7), ("cameras", 55), ("home-decor", 15), ("art", 20)],
}

# Outerwear sells in autumn/winter, swimwear-like light items in summer.
SEASONAL_PEAK_MONTH = {"outerwear": 11, "knitwear": 12, "skirts": 6, "dresses": 6, "activewear": 1}


def category_tree() -> list[tuple[int, str, str, str, float]]:
    """Leaves as (leaf_id, department, category, subcategory, base_price)."""
    leaves: list[tuple[int, str, str, str, float]] = []
    for dept, cats in (("women", _WOMEN), ("men", _MEN), ("kids", _KIDS), ("everything-else", _HOME)):
        for cat, subs in cats.items():
            for sub, price in subs:
                leaves.append((len(leaves), dept, cat, sub, float(price)))
    return leaves


CONDITIONS = ("new_with_tags", "like_new", "good", "used", "fair")
# Mercari's mix of item_condition_id 1..5 is roughly 43/25/29/2/0.2 %.
CONDITION_WEIGHTS = (0.432, 0.253, 0.291, 0.022, 0.002)
CONDITION_EFFECT = (0.25, 0.10, 0.0, -0.30, -0.55)

SIZES = ("XXS", "XS", "S", "M", "L", "XL", "XXL", "6", "8", "10", "12", "14", "16", "one size")
COLOURS = ("black", "white", "blue", "navy", "grey", "red", "green", "pink", "beige", "brown", "cream",
           "multi", "purple", "yellow", "orange")
MATERIALS = ("cotton", "denim", "polyester", "wool", "leather", "linen", "silk", "cashmere", "nylon", "suede")
MATERIAL_EFFECT = (0.0, 0.05, -0.10, 0.12, 0.30, 0.05, 0.20, 0.45, -0.05, 0.15)
STYLES = ("vintage", "y2k", "streetwear", "minimalist", "boho", "grunge", "preppy", "sporty", "none")

# Words that only appear in the text, with their effect on fair value (log scale).
TEXT_SIGNALS = {"deadstock": 0.25, "rare": 0.18, "stain": -0.35, "bundle": 0.30}

# ---- canonical products (simulator.product_share): how sellers write the same item differently ----------
COLOURWAYS = 3
"""Colourways per model line: products 3k, 3k+1, 3k+2 are line k in three colours (the hard negatives of
product matching: same brand, model and type, another colour)."""
COLOURWAY_STEP = 5
"""Colour-index step between a line's colourways; no two colourways of a line are each other's NEAR_COLOUR."""
NEAR_COLOUR = {"black": "grey", "grey": "black", "white": "cream", "cream": "beige", "beige": "cream",
               "navy": "blue", "blue": "navy", "red": "pink", "pink": "red", "green": "brown", "brown": "beige",
               "multi": "pink", "purple": "multi", "yellow": "orange", "orange": "yellow"}
"""The palette colour a seller sometimes picks for a product's colourway (the attribute; the title keeps the
colourway's own name)."""
COLOUR_WORDS = {"black": ("black", "blk"), "white": ("white", "wht"), "grey": ("grey", "gray"),
                "navy": ("navy", "navy blue"), "cream": ("cream", "off white", "ecru"),
                "multi": ("multi", "multicolour", "multicolor")}
"""How titles spell a colour (the first is the palette name); colours not listed are written as named."""
ITEM_WORDS = {"trainers": ("trainers", "sneakers", "trainer", "kicks"), "jumpers": ("jumper", "sweater", "knit"),
              "hoodies": ("hoodie", "hoody", "hooded sweatshirt"), "t-shirts": ("t-shirt", "tee", "tshirt"),
              "sweatshirts": ("sweatshirt", "crewneck", "sweat"), "jackets": ("jacket", "jackets"),
              "puffers": ("puffer", "puffer jacket", "down jacket"), "jeans": ("jeans", "denim jeans"),
              "boots": ("boots", "boot"), "joggers": ("joggers", "trackies", "jogging bottoms"),
              "handbags": ("handbag", "bag"), "backpacks": ("backpack", "rucksack"),
              "tracksuits": ("tracksuit", "track suit"), "caps": ("cap", "baseball cap")}
"""Title words (synonyms) per subcategory; subcategories not listed are written by name."""
LINE_SUFFIXES = ("1", "2", "3", "5", "90", "95", "97", "270", "350", "500", "700", "720")
"""Model numbers some lines carry after their name (``Vemora 90``)."""
FILLER_WORDS = ("oversized", "cropped", "slim fit", "baggy", "cute", "classic", "authentic", "genuine", "og",
                "unisex", "summer", "winter", "comfy", "lightweight", "worn once", "great condition",
                "barely worn", "immaculate", "statement", "everyday", "limited edition", "mens", "womens")
"""Extra words sellers add to titles; none is a text-only price signal (see ``TEXT_SIGNALS``)."""
