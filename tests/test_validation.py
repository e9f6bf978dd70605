"""The validate job on hand-written Delta tables: GX suites from YAML, blocking vs warning, the two
extensions (row count relative to the previous run, freshness), ml.validation_results and Data Docs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from jobs import validate
from pricing.platform import delta_io
from pricing.platform.config import Config
from pricing.platform.errors import ConfigError, DataQualityError
from pricing.platform.tables import table
from pricing.validation.suites import (
    ExpectationSpec,
    SuiteSpec,
    load_suites,
    open_context,
    resolve,
    run_suite,
)

LISTINGS = "listing_id long, created_at timestamp, list_price double, condition string"
CONDITIONS = ["new_with_tags", "like_new", "good", "used", "fair"]
GOOD_ROWS = [
    (1, datetime(2025, 5, 19, 18), 12.0, "good"),
    (2, datetime(2025, 5, 18, 9), 30.0, "like_new"),
    (3, datetime(2025, 5, 10), 7.5, "fair"),
]


@pytest.fixture
def suites_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "suites"
    folder.mkdir()
    return folder


@pytest.fixture
def vcfg(cfg: Config, tmp_path: Path, suites_dir: Path) -> Config:
    """The session config with its own state root (no e2e tables) and a fixed freshness reference."""
    return cfg.with_overrides([f"storage.root={tmp_path / 'state'}", f"validate.suites_dir={suites_dir}",
                               "validate.reference_time=2025-05-20T00:00:00Z"])


def write_suite(folder: Path, name: str, expectations: list[dict[str, Any]], table_name: str = "silver.listings",
                **extra: Any) -> None:
    (folder / f"{name}.yml").write_text(yaml.safe_dump({"table": table_name, **extra, "expectations": expectations}))


def write_listings(spark: SparkSession, cfg: Config, rows: list[tuple]) -> None:
    delta_io.overwrite(spark.createDataFrame(rows, LISTINGS), table(cfg, "silver.listings"))


def results(spark: SparkSession, cfg: Config, run_id: str) -> DataFrame:
    return delta_io.read(spark, table(cfg, "ml.validation_results")).where(f"run_id = '{run_id}'")


def kwargs_of(spark: SparkSession, cfg: Config, run_id: str, expectation: str) -> dict[str, Any]:
    (row,) = results(spark, cfg, run_id).where(f"expectation = '{expectation}'").collect()
    return json.loads(row["kwargs"])


def last_run_id(spark: SparkSession, cfg: Config) -> str:
    df = delta_io.read(spark, table(cfg, "ml.validation_results"))
    return str(df.orderBy(df.validated_at.desc()).first()["run_id"])


def e(kind: str, severity: str = "blocking", /, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "severity": severity}


def test_a_passing_suite_records_every_result(spark, vcfg, suites_dir) -> None:
    write_listings(spark, vcfg, GOOD_ROWS)
    write_suite(suites_dir, "listings", [
        e("expect_table_columns_to_match_set", column_set=["listing_id", "created_at", "list_price"],
          exact_match=False),
        e("expect_column_values_to_be_of_type", column="listing_id", type_="LongType"),
        e("expect_column_values_to_be_unique", column="listing_id"),
        e("expect_compound_columns_to_be_unique", column_list=["listing_id", "condition"]),
        e("expect_column_values_to_be_between", column="list_price", min_value=0.01, max_value=100000),
        e("expect_column_values_to_be_in_set", "warning", column="condition", value_set=CONDITIONS),
    ])
    summary = validate.run(spark, vcfg)
    assert summary.info["passed"] == "6/6"
    assert "warnings" not in summary.info
    actual = results(spark, vcfg, summary.info["run_id"]).select("suite", "table", "expectation", "severity",
                                                                  "success", "observed", "expected")
    expected = spark.createDataFrame([
        ("listings", "silver.listings", "expect_table_columns_to_match_set", "blocking", True,
         json.dumps({"observed_value": ["condition", "created_at", "list_price", "listing_id"],
                     "details": {"mismatched": {"unexpected": ["condition"]}}}),
         "columns include {listing_id, created_at, list_price}"),
        ("listings", "silver.listings", "expect_column_values_to_be_of_type", "blocking", True,
         json.dumps({"observed_value": "LongType"}), "of type LongType"),
        ("listings", "silver.listings", "expect_column_values_to_be_unique", "blocking", True,
         json.dumps({"element_count": 3, "unexpected_count": 0, "unexpected_percent": 0.0, "missing_count": 0,
                     "partial_unexpected_list": []}), "values unique"),
        ("listings", "silver.listings", "expect_compound_columns_to_be_unique", "blocking", True,
         json.dumps({"element_count": 3, "unexpected_count": 0, "unexpected_percent": 0.0, "missing_count": 0,
                     "partial_unexpected_list": []}), "(listing_id, condition) unique"),
        ("listings", "silver.listings", "expect_column_values_to_be_between", "blocking", True,
         json.dumps({"element_count": 3, "unexpected_count": 0, "unexpected_percent": 0.0, "missing_count": 0,
                     "partial_unexpected_list": []}), "values between 0.01 and 100000"),
        ("listings", "silver.listings", "expect_column_values_to_be_in_set", "warning", True,
         json.dumps({"element_count": 3, "unexpected_count": 0, "unexpected_percent": 0.0, "missing_count": 0,
                     "partial_unexpected_list": []}), "values in {new_with_tags, like_new, good, used, fair}"),
    ], actual.schema)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_blocking_failure_stops_with_observed_and_expected_values(spark, vcfg, suites_dir) -> None:
    write_listings(spark, vcfg, [*GOOD_ROWS, (2, datetime(2025, 5, 19), -5.0, "good")])
    write_suite(suites_dir, "listings", [
        e("expect_column_values_to_be_unique", column="listing_id"),
        e("expect_column_values_to_be_between", column="list_price", min_value=0.01, max_value=100000),
        e("expect_column_values_to_be_in_set", column="condition", value_set=CONDITIONS),
    ])
    with pytest.raises(DataQualityError) as failure:
        validate.run(spark, vcfg)
    message = str(failure.value)
    assert message.startswith("2 blocking expectation(s) failed")
    assert ("  [blocking] silver.listings: expect_column_values_to_be_unique(column=listing_id): observed 2 of 4 "
            "rows unexpected (50%), e.g. [2, 2]; expected values unique\n") in message
    assert ("  [blocking] silver.listings: expect_column_values_to_be_between(column=list_price): observed 1 of 4 "
            "rows unexpected (25%), e.g. [-5]; expected values between 0.01 and 100000\n") in message
    assert "expect_column_values_to_be_in_set" not in message
    # The results are kept even though the job failed: the failure is on record with its run id.
    run_id = last_run_id(spark, vcfg)
    assert f"run_id = '{run_id}'" in message
    outcome = {r["expectation"]: r["success"] for r in results(spark, vcfg, run_id).collect()}
    assert outcome == {"expect_column_values_to_be_unique": False, "expect_column_values_to_be_between": False,
                       "expect_column_values_to_be_in_set": True}


def test_a_warning_is_reported_but_does_not_block(spark, vcfg, suites_dir) -> None:
    write_listings(spark, vcfg, [*GOOD_ROWS[:2], (3, datetime(2025, 5, 10), 7.5, "mint")])
    write_suite(suites_dir, "listings", [
        e("expect_column_values_to_be_unique", column="listing_id"),
        e("expect_column_values_to_be_in_set", "warning", column="condition", value_set=CONDITIONS),
    ])
    summary = validate.run(spark, vcfg)
    assert summary.info["passed"] == "1/2"
    assert summary.info["warnings"] == (
        "1\n  [warning] silver.listings: expect_column_values_to_be_in_set(column=condition): observed 1 of 3 rows "
        "unexpected (33.3%), e.g. [mint]; expected values in {new_with_tags, like_new, good, used, fair}")
    rows = results(spark, vcfg, summary.info["run_id"]).where("NOT success").select("expectation", "severity")
    assert [tuple(r) for r in rows.collect()] == [("expect_column_values_to_be_in_set", "warning")]


def test_row_count_is_checked_against_the_previous_accepted_run(spark, vcfg, suites_dir) -> None:
    write_suite(suites_dir, "listings", [e("expect_table_row_count_to_be_between", relative_to_previous=0.5)])
    count = "expect_table_row_count_to_be_between"

    def rows(n: int) -> list[tuple]:
        return [(i, datetime(2025, 5, 19), 10.0, "good") for i in range(n)]

    write_listings(spark, vcfg, rows(10))
    first = validate.run(spark, vcfg).info["run_id"]
    assert kwargs_of(spark, vcfg, first, count) == {"min_value": 1, "max_value": None}

    write_listings(spark, vcfg, rows(12))
    second = validate.run(spark, vcfg).info["run_id"]
    assert kwargs_of(spark, vcfg, second, count) == {"min_value": 5, "max_value": 15}

    write_listings(spark, vcfg, rows(4))
    for _ in range(2):  # a stopped run is no baseline: re-running does not wave the drop through
        with pytest.raises(DataQualityError) as failure:
            validate.run(spark, vcfg)
        assert kwargs_of(spark, vcfg, last_run_id(spark, vcfg), count) == {"min_value": 6, "max_value": 18}
        assert ("expect_table_row_count_to_be_between(): observed 4; expected row count between 6 and 18 "
                "(previous run 12 rows ±50%)") in str(failure.value)


@pytest.mark.parametrize(("relative", "previous", "bounds"), [
    ((0.5, 0.5), 12, (6, 18)),
    ((0.1, 0.1), 10, (9, 11)),          # 10 * 1.1 is 11.000000000000002 in floating point: still 11
    ((0.25, None), 10, (7, None)),      # [0.25, null]: a drop of more than a quarter fails, growth never does
    ((0.5, 0.5), None, (1, None)),      # no earlier run: at least one row
])
def test_relative_row_count_bounds(relative, previous, bounds) -> None:
    spec = ExpectationSpec("expect_table_row_count_to_be_between", {}, "blocking", relative_to_previous=relative)
    kwargs, _ = resolve(spec, previous, None)
    assert (kwargs["min_value"], kwargs["max_value"]) == bounds


def test_freshness_resolves_min_value_from_the_reference_time(spark, vcfg, suites_dir) -> None:
    write_listings(spark, vcfg, GOOD_ROWS)
    write_suite(suites_dir, "listings", [e("expect_column_max_to_be_between", column="created_at", max_age_hours=48)])
    fresh = validate.run(spark, vcfg).info["run_id"]
    assert kwargs_of(spark, vcfg, fresh, "expect_column_max_to_be_between") == {
        "column": "created_at", "min_value": "2025-05-18T00:00:00"}

    stale = vcfg.with_overrides(["validate.reference_time=2025-06-01T06:00:00Z"])
    with pytest.raises(DataQualityError) as failure:
        validate.run(spark, stale)
    assert ("expect_column_max_to_be_between(column=created_at): observed 2025-05-19T18:00:00; expected max >= "
            "2025-05-30T06:00:00 (at most 48 h older than the reference time 2025-06-01 06:00 UTC)") in str(failure.value)


def test_reference_time_defaults_to_the_end_of_the_source_data(cfg) -> None:
    # conftest's SMALL simulator: 200 days from 2024-11-01.
    assert validate.reference_time(cfg) == datetime(2025, 5, 20, tzinfo=UTC)
    partial = cfg.with_overrides(["simulator.export_through=2025-01-31"])
    assert validate.reference_time(partial) == datetime(2025, 2, 1, tzinfo=UTC)
    mercari = cfg.with_overrides(["ingest.source=mercari", "ingest.path=train.tsv"])
    assert validate.reference_time(mercari) == datetime(2019, 1, 1, tzinfo=UTC)
    fixed = cfg.with_overrides(["validate.reference_time=2025-03-01 12:00:00"])
    assert validate.reference_time(fixed) == datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_data_docs_index_is_written_and_lists_the_suite(spark, vcfg, suites_dir) -> None:
    write_listings(spark, vcfg, GOOD_ROWS)
    write_suite(suites_dir, "listings_docs", [e("expect_column_values_to_be_unique", column="listing_id")])
    summary = validate.run(spark, vcfg)
    index = Path(summary.info["data_docs"])
    assert index == vcfg.state_dir / "data_docs" / "index.html"
    assert "listings_docs" in index.read_text()
    pages = list((index.parent / "validations" / "listings_docs" / summary.info["run_id"]).rglob("*.html"))
    assert len(pages) == 1 and "listing_id" in pages[0].read_text()


def test_missing_tables_skip_optional_suites_and_fail_required_ones(spark, vcfg, suites_dir) -> None:
    unique = [e("expect_column_values_to_be_unique", column="event_id")]
    write_suite(suites_dir, "quarantine", unique, table_name="bronze.quarantine", optional=True)
    write_suite(suites_dir, "sales", unique, table_name="bronze.sales_raw")
    with pytest.raises(DataQualityError) as failure:
        validate.run(spark, vcfg)
    message = str(failure.value)
    assert message.startswith("1 blocking expectation(s) failed")
    assert ("[blocking] bronze.sales_raw: table_exists(): observed table not found; expected the table exists"
            in message)
    assert "quarantine" not in message


@pytest.mark.parametrize(("suite", "error"), [
    ({"table": "silver.listings", "expectations": [e("expect_column_values_to_not_be_null", colum="listing_id")]},
     r"expectations\[0\]: invalid kwargs for expect_column_values_to_not_be_null: .*colum"),
    ({"table": "silver.listings", "expectations": [e("expect_column_to_be_pretty", column="listing_id")]},
     r"unknown expectation type 'expect_column_to_be_pretty'"),
    ({"table": "silver.listings", "expectations": [e("expect_column_values_to_be_unique", "fatal", column="x")]},
     r"severity must be one of"),
    ({"table": "silver.listings", "expectations": [
        e("expect_table_row_count_to_be_between", relative_to_previous=0.5, min_value=3)]},
     r"relative_to_previous goes on expect_table_row_count_to_be_between, instead of min_value/max_value"),
    ({"table": "silver.listings", "expectations": [
        e("expect_table_row_count_to_be_between", relative_to_previous=[0.5])]},
     r"relative_to_previous must be a fraction"),
    ({"table": "silver.listings", "expectations": [
        e("expect_column_min_to_be_between", column="created_at", max_age_hours=24)]},
     r"max_age_hours goes on expect_column_max_to_be_between"),
    ({"table": "silver.listings; DROP TABLE x", "expectations": [e("expect_column_values_to_be_unique", column="a")]},
     r"is not a valid identifier"),
    ({"table": "silver.listings", "expectation": []}, r"unknown keys \['expectation'\]"),
])
def test_a_bad_suite_is_rejected_before_any_write(spark, vcfg, suites_dir, suite, error) -> None:
    write_suite(suites_dir, "good", [e("expect_column_values_to_be_unique", column="listing_id")])
    (suites_dir / "bad.yml").write_text(yaml.safe_dump(suite))
    with pytest.raises(ConfigError, match=error) as failure:
        validate.run(spark, vcfg)
    assert "bad.yml" in str(failure.value)
    assert not vcfg.state_dir.exists()  # no results table, no GX context, no Data Docs


def test_the_shipped_suites_load(cfg) -> None:
    suites = {s.name: s for s in load_suites(cfg.path(cfg.validate_.suites_dir))}
    # A superset: more feature tables get their suites as they are added.
    assert {s.table for s in suites.values()} >= {
        "bronze.listings_raw", "bronze.sales_raw", "bronze.price_changes_raw", "bronze.removals_raw",
        "bronze.quarantine", "silver.listings", "silver.sales", "features.listing_features", "features.training_set"}
    # Optional: tables that exist only once something happened (a record refused, `pricing match` run).
    assert sorted(s.name for s in suites.values() if s.optional) == [
        "bronze_quarantine", "comparable_sales", "product_matches"]
    # Training must not start on a broken label: the training set's label checks block.
    blocking = {x.type for x in suites["training_set"].expectations if x.severity == "blocking"}
    assert {"expect_column_quantile_values_to_be_between", "expect_column_values_to_be_unique",
            "expect_table_row_count_to_be_between"} <= blocking


def test_a_blocking_failure_fails_the_databricks_task(spark, vcfg, suites_dir, monkeypatch, capsys) -> None:
    """A task calls the wheel's `pricing` entry point as the Databricks trampoline does: `sys.argv = [package_name,
    *parameters]`, `entry_point.load()()`, the return value ignored.  A blocking failure must escape it."""
    import sys
    from importlib.metadata import entry_points

    write_listings(spark, vcfg, [*GOOD_ROWS, GOOD_ROWS[0]])
    write_suite(suites_dir, "listings", [e("expect_column_values_to_be_unique", column="listing_id")])
    sets = [f"storage.root={vcfg.storage.root}", f"validate.suites_dir={suites_dir}",
            "validate.reference_time=2025-05-20T00:00:00Z"]
    (entry_point,) = entry_points(group="console_scripts", name="pricing")
    monkeypatch.setattr(sys, "argv", ["marketplace_pricing", *[a for s in sets for a in ("--set", s)], "validate"])
    with pytest.raises(SystemExit) as exit_:
        entry_point.load()()
    assert exit_.value.code not in (0, None)
    assert isinstance(exit_.value.__cause__, DataQualityError)
    assert "pricing validate: error: 1 blocking expectation(s) failed" in capsys.readouterr().err


def test_uniqueness_counts_the_rows_of_repeated_values_as_gx_defines_them(spark, tmp_path) -> None:
    # What a uniqueness result reports, pinned (2026-12-05: counting these by one aggregation instead of GX's
    # window gave the same numbers, and validate at 1M 86.3 -> 84.5 s: not kept).
    # x: 1, 2 and 3 twice each are the 6 unexpected rows; its 2 nulls are missing, not unexpected.  y: a twice.
    # (x, y): (1, a) and (2, null) twice each are 4; the 2 rows missing both values are left out (GX's
    # ignore_row_if for compound uniqueness), and (3, b), (3, c) differ.
    rows = [(1, "a"), (1, "a"), (2, None), (2, None), (None, None), (None, None), (3, "b"), (3, "c")]
    df = spark.createDataFrame(rows, "x long, y string")
    suite = SuiteSpec("uniques", "t.uniques", (
        ExpectationSpec("expect_column_values_to_be_unique", {"column": "x"}, "blocking"),
        ExpectationSpec("expect_column_values_to_be_unique", {"column": "y"}, "blocking"),
        ExpectationSpec("expect_compound_columns_to_be_unique", {"column_list": ["x", "y"]}, "blocking"),
    ))
    context = open_context(tmp_path / "gx", tmp_path / "docs")
    out, _ = run_suite(suite, df, context, "unique-counts", datetime(2025, 5, 1, tzinfo=UTC))
    observed = [json.loads(r.observed) for r in out]
    assert [(o["element_count"], o["missing_count"], o["unexpected_count"]) for o in observed] == [
        (8, 2, 6), (8, 4, 2), (8, 2, 4)]
    assert [r.success for r in out] == [False, False, False]
    # And the failure's examples.
    assert sorted(observed[0]["partial_unexpected_list"]) == [1, 1, 2, 2, 3, 3]
    # Without the repeated a, y is unique: no unexpected rows.
    (ok,), _ = run_suite(SuiteSpec("ok", "t.ok", (suite.expectations[1],)), df.where("y IS NULL OR y != 'a'"),
                         context, "unique-ok", datetime(2025, 5, 1, tzinfo=UTC))
    assert ok.success and json.loads(ok.observed)["unexpected_count"] == 0
