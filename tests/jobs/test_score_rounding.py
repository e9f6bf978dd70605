from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.score import round_to_price_points


def test_suggestions_round_to_the_price_points_sellers_use(spark) -> None:  # type: ignore[no-untyped-def]
    df = spark.createDataFrame([(1, 12.2), (2, 12.4), (3, 12.8), (4, 13.02), (5, 0.1)], "id int, p double")
    got = df.select("id", round_to_price_points(F.col("p"), (0.0, 0.5, 0.99)).alias("r"))
    expected = spark.createDataFrame([(1, 12.0), (2, 12.5), (3, 12.99), (4, 13.0), (5, 0.0)], "id int, r double")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
