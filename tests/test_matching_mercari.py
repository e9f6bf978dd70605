"""Product matching on 64 hand-written secondhand-fashion titles in the Mercari training format
(``tests/data/mercari_fashion_titles.tsv``), read through the Mercari adapter the way ``pricing ingest`` reads a
Mercari file, with known products (``tests/data/mercari_fashion_products.tsv``, written by hand: which listings
are the same item, one model in one colourway, whatever the size).  Real brand and model names, none of which
the matcher lists: it must find them from the titles alone."""

from __future__ import annotations

import csv
from datetime import datetime
from itertools import combinations
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from pricing.matching import products as matching
from pricing.platform.config import MatchConfig
from pricing.sources.landing import parse, to_bronze
from pricing.sources.mercari import mercari_landing

DATA = Path(__file__).parent / "data"
TITLES = DATA / "mercari_fashion_titles.tsv"
PRODUCTS = DATA / "mercari_fashion_products.tsv"


def _products() -> dict[int, str | None]:
    with PRODUCTS.open() as f:
        return {int(r["train_id"]): r["product"] or None for r in csv.DictReader(f, delimiter="\t")}


def _true_pairs() -> set[tuple[int, int]]:
    by_product: dict[str, list[int]] = {}
    for listing, product in _products().items():
        if product:
            by_product.setdefault(product, []).append(listing)
    return {p for ids in by_product.values() for p in combinations(sorted(ids), 2)}


@pytest.fixture(scope="module")
def listings(spark):
    """The silver listing columns the matcher reads, from the Mercari adapter's bronze rows."""
    created = mercari_landing(spark, str(TITLES), start=datetime(2025, 1, 1), days=30)["listing_created"]
    bronze = created.transform(parse("listing_created")).where(F.col("reason").isNull()).transform(
        to_bronze("listing_created"))
    return bronze.select(
        "listing_id", F.col("event_time").alias("created_at"), "title", "brand",
        F.split("category_path", "/").getItem(1).alias("category"),
        F.split("category_path", "/").getItem(2).alias("subcategory"), "colour",
        F.col("price").alias("list_price")).localCheckpoint()


@pytest.fixture(scope="module")
def predicted(listings) -> set[tuple[int, int]]:
    res = matching.match(listings, MatchConfig())
    got = {(r.listing_id, r.matched_listing_id) for r in
           res.pairs.where("same_product").where("listing_id < matched_listing_id").collect()}
    res.release()
    return got


def test_the_fixture_is_what_it_says(listings) -> None:
    products = _products()
    assert listings.count() == len(products) == 64
    assert {r.listing_id for r in listings.collect() if r.brand is None} == {59, 60, 61, 62, 63}
    groups = {p for p in products.values() if p}
    assert len(groups) >= 20 and len(_true_pairs()) >= 40


# What the matcher gets wrong on these 64 titles, each for a reason it states.  Its generic vocabulary is a small
# seed plus what the listings teach (a word is generic once four brands use it); 64 listings teach little, so
# a descriptive word that only one product's sellers use is read as part of the model's name.
MISSED = {
    (0, 1), (1, 2), (1, 3),  # "triple white": "triple" is one product's word here
    (11, 12),  # "Core Black" against "white gum": "core" and "gum" likewise (11-13 is found: similarity 0.55)
    (16, 17), (17, 18), (19, 20),  # "smooth" (leather) is only written by Dr. Martens sellers
    (38, 39),  # "shoulder bag" and "pebbled": two such words (37-39, one word, is found: similarity 0.5)
    (40, 41),  # "signature" (print) likewise
    (45, 46),  # "Chuck Taylor 70 Hi" and "Chuck 70 high top": two words each the other lacks
    (16, 61), (18, 61),  # "smooth" again (61 has no brand; its title names Dr. Martens, and it is found with 17)
    (26, 63), (27, 63), (28, 63),  # 63 has no brand and names none; "align" was written under Lululemon and H&M
}
WRONG = {
    (0, 54), (2, 54), (3, 54),  # "Air Force 1 Shadow" is another model: one extra word, similarity 0.63 >= 0.5
    (12, 58),  # Samba black / white gum and white / green gum: the colour words overlap on "white"
    (39, 56),  # a dust bag for the Tabby 26: kind words ("dust") are learned from 20 listings' prices, not here
}


def test_same_product_pairs_on_mercari_titles(predicted) -> None:
    truth = _true_pairs()
    assert truth >= MISSED and not WRONG & truth
    # Exact: every other true pair is found, nothing else is predicted.  Namesakes under another brand (51,
    # 52), generic titles (53), a lot of three (55: its number) and a bundle (57: no model) match nothing.
    assert predicted == (truth - MISSED) | WRONG
    tp = len(predicted & truth)
    # Listings 60-63 have no brand: 60 and 62 take Nike and The North Face from their model words ("air max",
    # "nuptse"), 61 the brand its title names; 63 is left unbranded (see MISSED).
    assert {(a, b) for a, b in predicted if b >= 60} == {(6, 60), (7, 60), (8, 60), (17, 61), (31, 62), (32, 62),
                                                         (33, 62)}
    assert (len(truth), len(predicted), tp) == (53, 43, 38)  # precision 0.884, recall 0.717


def test_nothing_is_matched_across_brands_or_without_a_model(predicted) -> None:
    products = _products()
    unmatched = {51, 52, 53, 55, 57, 59}
    assert not {i for pair in predicted for i in pair} & unmatched
    assert all(products[i] is None for i in unmatched)
