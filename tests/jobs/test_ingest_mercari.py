"""`pricing ingest --format mercari PATH`: the public Mercari format into the same bronze and silver."""

from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality

from jobs import ingest
from pricing.platform import delta_io
from pricing.platform.config import load_config
from pricing.platform.tables import table
from pricing.workflow.cli import main

SAMPLE = Path(__file__).parents[1] / "sources" / "data" / "mercari_sample.tsv"


@pytest.mark.slow
def test_mercari_file_lands_in_bronze_and_silver(spark, tmp_path, capsys) -> None:
    root = f"storage.root={tmp_path}"
    assert main(["--set", root, "ingest", "--format", "mercari", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    # 10 data lines -> 10 listing events + 8 sale events (malformed lines give no sale).  Quarantine:
    # 2 malformed lines, condition 6, and price 0 and "abc" on both of their events.  Bronze: 5 listings
    # and 6 sales (the condition-6 item's sale is a valid event; silver drops it for lack of a listing).
    assert "read 18 = bronze 11 + quarantine 7 + duplicates 0" in out
    assert '"malformed_json": 2, "non_positive_price": 2, "unknown_condition": 1, "wrong_type": 2' in out
    cfg = load_config("local", [root, "ingest.source=mercari", f"ingest.path={SAMPLE}"])
    silver = delta_io.read(spark, table(cfg, "silver.listings"))
    expected = spark.createDataFrame(
        [(0, "nike", "men/tops/t-shirts", "good", 10.0, "sold"),
         (1, "coach", "women/womens-handbags/shoulder-bag", "new_with_tags", 35.0, "sold"),
         (2, None, "women/tops-and-blouses/blouse", "like_new", 8.0, "sold"),
         (3, None, None, "used", 15.0, "sold"),
         (6, "apple", "electronics/computers-and-tablets/ipad-tablet-ebook-access", "like_new", 120.0, "sold")],
        "listing_id long, brand string, category string, condition string, sold_price double, status string")
    got = silver.selectExpr("listing_id", "lower(brand) AS brand",
                            "concat_ws('/', department, category, subcategory) AS category", "condition",
                            "sold_price", "status")
    # concat_ws turns a missing category into "": compare it as missing.
    assert_df_equality(got.na.replace("", None, ["category"]), expected, ignore_row_order=True,
                       ignore_nullable=True)
    again = ingest.run(spark, cfg)
    assert again.info["counts"] == {"read": 18, "inserted": 0, "quarantined": 0, "duplicates": 18}
