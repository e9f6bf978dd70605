"""Every bronze, silver and ml table documents itself in the catalog: the table comment is its catalog entry's
description and each column has a comment (``DESCRIBE DETAIL`` / ``DESCRIBE TABLE``, Unity Catalog Explorer),
while reads through ``delta_io`` return plain rows."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from jobs import ingest
from pricing.platform import catalog, delta_io
from pricing.platform.config import Config, load_config
from pricing.platform.tables import TableRef, table
from pricing.price_model.scoring import OUTPUT_DOCS
from pricing.sources import schemas
from pricing.sources.landing import bronze_schema
from pricing.sources.silver import COLUMN_DOCS, LISTINGS_DOCS, SALES_DOCS, build_listings, build_sales
from pricing.validation.gate import RESULT_DOCS, RESULT_SCHEMA

SAMPLE = Path(__file__).parent / "sources" / "data" / "mercari_sample.tsv"


def _documentation(spark: SparkSession, ref: TableRef) -> tuple[str | None, dict[str, str | None]]:
    """(table comment, column -> comment) as the catalog shows them."""
    description = spark.sql(f"DESCRIBE DETAIL {ref.sql}").select("description").collect()[0][0]
    columns = {}
    for r in spark.sql(f"DESCRIBE TABLE {ref.sql}").collect():
        if not r["col_name"] or r["col_name"].startswith("#"):
            break  # partitioning and detail sections follow the columns
        columns[r["col_name"]] = r["comment"]
    return description, columns


@pytest.fixture(scope="module")
def ingested(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """A small real ingest (the Mercari sample: bronze, quarantine and silver) through the jobs' own writes."""
    root = tmp_path_factory.mktemp("docs-state")
    cfg = load_config("local", [f"storage.root={root}", "ingest.source=mercari", f"ingest.path={SAMPLE}"])
    ingest.run(spark, cfg)
    return cfg


def test_bronze_and_silver_tables_carry_table_and_column_comments(spark: SparkSession, ingested: Config) -> None:
    expected = {t: schemas.BRONZE_DOCS[et] for et, t in catalog.BRONZE_EVENT_TABLES.items()}
    expected |= {catalog.BRONZE_QUARANTINE: schemas.QUARANTINE_DOCS} | COLUMN_DOCS
    for entry, docs in expected.items():
        description, columns = _documentation(spark, table(ingested, entry))
        assert description == entry.description, entry
        assert columns == docs, entry


def test_reads_return_rows_without_the_comments(spark: SparkSession, ingested: Config) -> None:
    raw = spark.read.format("delta").load(table(ingested, catalog.SILVER_LISTINGS).local_path)
    assert raw.schema["listing_id"].metadata["comment"] == LISTINGS_DOCS["listing_id"]
    df = delta_io.read(spark, table(ingested, catalog.SILVER_LISTINGS))
    assert df.columns == raw.columns and all("comment" not in f.metadata for f in df.schema.fields)
    assert df.count() == raw.count()


def test_an_ml_table_is_documented_and_a_documented_table_gets_no_further_commit(
        spark: SparkSession, tmp_path: Path) -> None:
    cfg = load_config("local", [f"storage.root={tmp_path}"])
    ref = table(cfg, catalog.ML_PRICE_SUGGESTIONS)
    row = (1, "tops", 10.0, 8.0, 10.0, 12.0, 11.0, False, [], "marketplace_price", 3, 7, date(2025, 3, 5),
           datetime(2025, 3, 5, 6))
    schema = ("listing_id long, category string, suggested_price double, p10 double, p50 double, p90 double, "
              "current_price double, needs_review boolean, review_reasons array<string>, model_name string, "
              "model_version int, feature_table_version long, scoring_date date, scored_at timestamp")
    df = spark.createDataFrame([row], schema)
    assert set(df.columns) == set(OUTPUT_DOCS)
    # A table an earlier version wrote without column comments ...
    delta_io.overwrite(df, ref, replace_where="scoring_date = DATE'2025-03-05'")
    description, columns = _documentation(spark, ref)
    assert description == catalog.ML_PRICE_SUGGESTIONS.description
    assert set(columns.values()) == {None}
    # ... gains them on the next write (a replaceWhere keeps the table's schema: they are set afterwards).
    delta_io.overwrite(df, ref, replace_where="scoring_date = DATE'2025-03-05'", docs=OUTPUT_DOCS)
    assert _documentation(spark, ref) == (catalog.ML_PRICE_SUGGESTIONS.description, OUTPUT_DOCS)
    before = delta_io.version(spark, ref)
    delta_io.overwrite(df, ref, replace_where="scoring_date = DATE'2025-03-05'", docs=OUTPUT_DOCS)
    assert delta_io.version(spark, ref) == before + 1, "a documented table was documented again"


def test_every_column_of_bronze_silver_and_validation_results_is_documented(spark: SparkSession) -> None:
    for et, docs in schemas.BRONZE_DOCS.items():
        assert set(bronze_schema(spark, et).fieldNames()) == set(docs), et
    assert set(schemas.QUARANTINE.fieldNames()) == set(schemas.QUARANTINE_DOCS)
    created, changes, sold, removed = (spark.createDataFrame([], bronze_schema(spark, et)) for et in schemas.LANDING)
    assert set(build_listings(created, changes, sold, removed).columns) == set(LISTINGS_DOCS)
    assert set(build_sales(created, sold).columns) == set(SALES_DOCS)
    assert set(spark.createDataFrame([], RESULT_SCHEMA).columns) == set(RESULT_DOCS)
    for docs in (*schemas.BRONZE_DOCS.values(), LISTINGS_DOCS, SALES_DOCS, OUTPUT_DOCS, RESULT_DOCS):
        assert all(text.strip() for text in docs.values())
