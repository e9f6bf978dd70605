"""Every table (bronze, silver, ml and truth) documents itself in the catalog: the table comment is its catalog
entry's description and each column has a comment (``DESCRIBE DETAIL`` / ``DESCRIBE TABLE``, Unity Catalog
Explorer), while reads through ``delta_io`` return plain rows."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from jobs import generate, ingest
from pricing.experiment import pipeline
from pricing.experiment.frames import (
    EXPERIMENTS_DOCS,
    EXPERIMENTS_SCHEMA,
    OUTCOMES_DOCS,
    OUTCOMES_SCHEMA,
    RESULTS_DOCS,
    RESULTS_SCHEMA,
    TRUTH_DOCS,
    TRUTH_SCHEMA,
)
from pricing.platform import catalog, delta_io
from pricing.platform.config import Config, load_config
from pricing.platform.tables import TableRef, table
from pricing.price_model.scoring import OUTPUT_DOCS
from pricing.sources import schemas
from pricing.sources.landing import bronze_schema
from pricing.sources.silver import COLUMN_DOCS, LISTINGS_DOCS, SALES_DOCS, build_listings, build_sales
from pricing.validation.gate import RESULT_DOCS, RESULT_SCHEMA
from pricing.world.export import FAULTS_DOCS, export_lines
from pricing.world.simulator import TRUTH_CATEGORIES_DOCS, TRUTH_LISTINGS_DOCS, simulate

SAMPLE = Path(__file__).parent / "sources" / "data" / "mercari_sample.tsv"
TINY_WORLD = ["simulator.n_listings=400", "simulator.n_sellers=60", "simulator.n_brands=20", "simulator.days=30",
              "simulator.partitions=2"]
"""A world just big enough that every table the generate job writes has rows."""
TRUTH_DOCS_BY_TABLE = {catalog.TRUTH_LISTINGS: TRUTH_LISTINGS_DOCS, catalog.TRUTH_CATEGORIES: TRUTH_CATEGORIES_DOCS,
                       catalog.TRUTH_LANDING_FAULTS: FAULTS_DOCS}
EXPERIMENT_SCHEMAS = {pipeline.OUTCOMES: (OUTCOMES_SCHEMA, OUTCOMES_DOCS), pipeline.RESULTS: (RESULTS_SCHEMA, RESULTS_DOCS),
                      pipeline.EXPERIMENTS: (EXPERIMENTS_SCHEMA, EXPERIMENTS_DOCS),
                      pipeline.TRUTH: (TRUTH_SCHEMA, TRUTH_DOCS)}
"""Each table the experiment jobs write: its schema and column descriptions."""


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


def test_description_and_properties_read_what_describe_detail_shows(spark: SparkSession, tmp_path: Path) -> None:
    ref = TableRef("scratch.undocumented", str(tmp_path / "scratch"), None)  # in no catalog: nothing documents it
    delta_io.overwrite(spark.createDataFrame([(1,)], "Comment long"), ref)
    assert delta_io.description(spark, ref) is None  # a column named "Comment" is not the table's comment
    assert not {k for k in delta_io.properties(spark, ref) if not k.startswith("delta.")}
    spark.sql(f"COMMENT ON TABLE {ref.sql} IS 'Prices, # and more'")
    spark.sql(f"ALTER TABLE {ref.sql} SET TBLPROPERTIES ('pricing.a' = 'x = 1', 'pricing.b' = '')")
    detail = spark.sql(f"DESCRIBE DETAIL {ref.sql}").first()
    assert delta_io.description(spark, ref) == detail["description"] == "Prices, # and more"
    props = delta_io.properties(spark, ref)
    assert {k: v for k, v in props.items() if not k.startswith("delta.")} == detail["properties"] == {
        "pricing.a": "x = 1", "pricing.b": ""}


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


def test_every_column_of_the_truth_and_experiment_tables_is_documented(spark: SparkSession, cfg: Config) -> None:
    sim = simulate(spark, cfg.with_overrides(TINY_WORLD).simulator)
    try:
        assert set(sim.truth_listings.columns) == set(TRUTH_LISTINGS_DOCS)
        assert set(sim.truth_categories.columns) == set(TRUTH_CATEGORIES_DOCS)
        for event_type, events in sim.events.items():
            _, faults = export_lines(events, event_type, seed=1, rate=0.01)
            assert set(faults.columns) == set(FAULTS_DOCS), event_type
    finally:
        sim.listings.unpersist()
    assert {t.logical for t in EXPERIMENT_SCHEMAS} == set(pipeline.COLUMN_DOCS)
    for entry, (schema, docs) in EXPERIMENT_SCHEMAS.items():
        assert set(schema.fieldNames()) == set(docs), entry
        assert pipeline.COLUMN_DOCS[entry.logical] is docs, entry
    for docs in (*TRUTH_DOCS_BY_TABLE.values(), OUTCOMES_DOCS, RESULTS_DOCS, EXPERIMENTS_DOCS, TRUTH_DOCS):
        assert all(text.strip() for text in docs.values())


def test_the_generate_job_documents_the_truth_tables(spark: SparkSession, tmp_path: Path) -> None:
    cfg = load_config("local", [*TINY_WORLD, f"storage.root={tmp_path}"])
    generate.run(spark, cfg)
    for entry, docs in TRUTH_DOCS_BY_TABLE.items():
        ref = table(cfg, entry)
        assert delta_io.read(spark, ref).count() > 0, entry
        assert _documentation(spark, ref) == (entry.description, docs), entry


def _example(schema: T.StructType, experiment_id: str) -> tuple[object, ...]:
    """One row of ``schema`` with a made-up value of each column's type."""
    values: dict[type, object] = {T.StringType: "x", T.LongType: 3, T.IntegerType: 2, T.DoubleType: 0.5,
                                  T.BooleanType: True, T.DateType: date(2025, 3, 5),
                                  T.TimestampType: datetime(2025, 3, 5, 6)}
    return tuple(experiment_id if f.name == "experiment_id" else values[type(f.dataType)] for f in schema.fields)


def test_the_experiment_tables_are_documented_by_their_writes(spark: SparkSession, tmp_path: Path) -> None:
    cfg = load_config("local", [f"storage.root={tmp_path}"])
    for entry, (schema, docs) in EXPERIMENT_SCHEMAS.items():
        ref = table(cfg, entry)
        for experiment_id in ("exp_a", "exp_b"):  # the first creates the table, the second replaces a slice
            df = spark.createDataFrame([_example(schema, experiment_id)], schema)
            pipeline.replace_rows(spark, df, ref, experiment_id)
        assert _documentation(spark, ref) == (entry.description, docs), entry
        assert delta_io.read(spark, ref).count() == 2, entry
