"""The table catalog: every table the suite writes, declared once with its layer, name and description.

Jobs and library code name tables by these constants, never by strings.  :func:`pricing.platform.tables.table`
resolves one through config: a Delta path under ``<storage.root>/warehouse/`` locally, ``catalog.schema.table``
on Databricks.  The description becomes the Delta table comment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    layer: str
    """Logical layer (bronze, silver, features, ml, truth): ``storage.schemas`` maps it to a schema."""
    name: str
    description: str

    @property
    def logical(self) -> str:
        return f"{self.layer}.{self.name}"

    def __str__(self) -> str:
        return self.logical



# ---- bronze: events as landed
BRONZE_LISTINGS_RAW = Table("bronze", "listings_raw",
    "Listing-created events as landed: one row per event_id, insert-only, with source file and ingest time.")
BRONZE_PRICE_CHANGES_RAW = Table("bronze", "price_changes_raw",
    "Price-change events as landed: one row per event_id, insert-only.")
BRONZE_SALES_RAW = Table("bronze", "sales_raw",
    "Sale events as landed: one row per event_id, insert-only.")
BRONZE_REMOVALS_RAW = Table("bronze", "removals_raw",
    "Listing-removed events as landed: one row per event_id, insert-only.")
BRONZE_QUARANTINE = Table("bronze", "quarantine",
    "Records that failed parsing or checks: raw payload, source file, reason code and ingest time.")

BRONZE_EVENT_TABLES: dict[str, Table] = {
    "listing_created": BRONZE_LISTINGS_RAW,
    "price_changed": BRONZE_PRICE_CHANGES_RAW,
    "listing_sold": BRONZE_SALES_RAW,
    "listing_removed": BRONZE_REMOVALS_RAW,
}
"""Landing event type -> its bronze table."""

# ---- silver: typed and deduplicated
SILVER_LISTINGS = Table("silver", "listings",
    "Typed, deduplicated listings (latest event wins per listing_id) with their price history and status.")
SILVER_SALES = Table("silver", "sales",
    "Typed, deduplicated sales: one row per sold listing.")

# ---- features: point-in-time correct feature tables (schemas in features/)
LISTING_FEATURES = Table("features", "listing_features",
    "Listing attributes, seller history and text features per listing and (re)price time, "
                "point-in-time correct as of as_of.")
TRAINING_SET = Table("features", "training_set",
    "Every listing's features as of its listing time (listing_features + market_stats, as-of "
                "joined) with its labels; active listings are the scoring input.")
PRODUCT_MATCHES = Table("features", "product_matches",
    "Similar listings in the same brand x category block (MinHash LSH on title shingles), both "
                "directions, with the same-product decision; pair-local, so usable point in time.")
PRODUCT_CLUSTERS = Table("features", "product_clusters",
    "Product clusters: connected components of the same-product pairs of product_matches.")
MARKET_STATS = Table("features", "market_stats",
    "Rolling 7/30/90-day sold-price quantiles and sell-through per segment, from strictly earlier "
                "sales, shrunk toward the parent segment.")
COMPARABLE_SALES = Table("features", "comparable_sales",
    "Sold prices of each listing's same-product matches and nearest comparables, strictly before its "
                "listing time.")

# ---- ml: validation, model outputs, experiments
ML_VALIDATION_RESULTS = Table("ml", "validation_results",
    "One row per expectation per validation run: suite, table, observed and expected values, outcome.")
ML_PRICE_SUGGESTIONS = Table("ml", "price_suggestions",
    "p10/p50/p90 price suggestions for every active listing, per scoring date, with model and data versions.")
ML_PRICE_RECOMMENDATIONS = Table("ml", "price_recommendations",
    "Revenue-optimal price recommendations within guardrails, per scoring date, with a reason each.")
ML_RECOMMENDATION_EVAL = Table("ml", "recommendation_eval",
    "Pricing policies judged against the simulator's true demand (simulated sources only).")
ML_EXPERIMENT_OUTCOMES = Table("ml", "experiment_outcomes",
    "Per-listing outcomes of a pricing-policy experiment, by experiment_id.")
ML_EXPERIMENT_RESULTS = Table("ml", "experiment_results",
    "Per-metric effects, intervals and checks (SRM, balance) of an analysed experiment.")
ML_EXPERIMENTS = Table("ml", "experiments",
    "One row per experiment: design, policies, dates and status.")

# ---- truth: the simulator's hidden world (evaluation only)
TRUTH_LISTINGS = Table("truth", "listings",
    "Simulator ground truth per listing (fair value, noise, demand parameters): evaluation only.")
TRUTH_CATEGORIES = Table("truth", "categories",
    "Simulator ground truth per category (base price, hazard, elasticity): evaluation only.")
TRUTH_LANDING_FAULTS = Table("truth", "landing_faults",
    "Simulator ground truth of the damaged landing records it injected: evaluation only.")
TRUTH_EXPERIMENT_EFFECTS = Table("truth", "experiment_effects",
    "Simulator ground truth of an experiment's effects: evaluation only.")

TABLES: dict[str, Table] = {t.logical: t for t in (
    BRONZE_LISTINGS_RAW, BRONZE_PRICE_CHANGES_RAW, BRONZE_SALES_RAW, BRONZE_REMOVALS_RAW,
    BRONZE_QUARANTINE, SILVER_LISTINGS, SILVER_SALES, LISTING_FEATURES,
    TRAINING_SET, PRODUCT_MATCHES, PRODUCT_CLUSTERS, MARKET_STATS,
    COMPARABLE_SALES, ML_VALIDATION_RESULTS, ML_PRICE_SUGGESTIONS, ML_PRICE_RECOMMENDATIONS,
    ML_RECOMMENDATION_EVAL, ML_EXPERIMENT_OUTCOMES, ML_EXPERIMENT_RESULTS, ML_EXPERIMENTS,
    TRUTH_LISTINGS, TRUTH_CATEGORIES, TRUTH_LANDING_FAULTS, TRUTH_EXPERIMENT_EFFECTS,
)}
