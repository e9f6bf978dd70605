"""The price model's split by listing time: windows, the label horizon (right-censoring), the gate's holdout."""

from __future__ import annotations

from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame

from pricing.platform.config import Config
from pricing.platform.errors import ConfigError, ModelGateError
from pricing.price_model.training import check_train_settings, time_split

SCHEMA = "listing_id long, as_of timestamp, sold_price double, sold_at timestamp"

# now = 01-20 (the latest listing), H = 5 days -> test/holdout window ends at T4 = 01-15;
# test_days = 2 -> T3 = 01-13; calibration_days = 2 -> T2 = 01-11; validation_days = 3 -> T1 = 01-08.
WINDOWS = ["features.sold_within_days=5", "train.test_days=2", "train.calibration_days=2",
           "train.validation_days=3", "promote.holdout_share=0.5"]


def d(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2025, 1, day, hour, minute)


ROWS = [
    (1, d(1), 10.0, d(3)),             # train
    (2, d(7, 23, 59), 12.0, d(12)),    # train: listed before T1, though it sold in the calibration window
    (3, d(8), 20.0, d(9)),             # valid: T1 itself belongs to the later window
    (4, d(10), 30.0, d(20)),           # sold 10 days after listing, beyond H: no label, in no window
    (5, d(11), 15.0, d(12)),           # calib
    (6, d(12), None, None),            # never sold: no label, in no window
    (7, d(13), 25.0, d(14)),           # test window, in the gate's holdout (xxhash64 bucket 337 < 5000)
    (8, d(14), 40.0, d(15)),           # test window, holdout (bucket 3803)
    (9, d(14, 12), 40.0, d(19, 12)),   # sold exactly H days after listing: not "within" H, no label
    (10, d(15), 50.0, d(16)),          # listed at T4: its H days are not over for every listing of its day
    (11, d(19), 60.0, d(19, 12)),      # censored region (after T4): a quick sale, but in no window
    (12, d(20), None, None),           # the latest listing: stands for "now"
    (13, d(9), 0.0, d(10)),            # a zero price is not a label
    (16, d(13, 6), 70.0, d(14)),       # test window, reported test rows (bucket 9695)
    (17, d(14, 6), 80.0, d(16)),       # test window, reported (bucket 8359)
]


def _ids(spark, ids: list[int]) -> DataFrame:
    return spark.createDataFrame([(i,) for i in ids], "listing_id long")


@pytest.fixture
def split_cfg(cfg: Config) -> Config:
    return cfg.with_overrides(WINDOWS)


def test_listings_are_split_by_listing_time_with_every_label_known(spark, split_cfg: Config) -> None:
    split = time_split(spark.createDataFrame(ROWS, SCHEMA), split_cfg)
    assert (split.now, split.end, split.test_start, split.calib_start, split.valid_start) == (
        d(20), d(15), d(13), d(11), d(8))
    assert split.horizon_days == 5
    for part, ids in {"train": [1, 2], "valid": [3], "calib": [5], "test": [16, 17], "holdout": [7, 8]}.items():
        assert_df_equality(getattr(split, part).select("listing_id"), _ids(spark, ids), ignore_row_order=True,
                           ignore_nullable=True)


def test_labels_are_log1p_of_the_sold_price(spark, split_cfg: Config) -> None:
    import math

    split = time_split(spark.createDataFrame(ROWS, SCHEMA), split_cfg)
    expected = spark.createDataFrame([(1, math.log1p(10.0)), (2, math.log1p(12.0))], "listing_id long, label double")
    assert_df_equality(split.train.select("listing_id", "label"), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_the_holdout_is_a_stable_share_of_the_test_window(spark, split_cfg: Config) -> None:
    # Another share moves listings between the two halves; none leaves the test window or enters it.
    split = time_split(spark.createDataFrame(ROWS, SCHEMA), split_cfg.with_overrides(["promote.holdout_share=0.9"]))
    assert_df_equality(split.holdout.select("listing_id"), _ids(spark, [7, 8, 17]), ignore_row_order=True,
                       ignore_nullable=True)
    assert_df_equality(split.test.select("listing_id"), _ids(spark, [16]), ignore_row_order=True,
                       ignore_nullable=True)


def test_an_empty_training_set_is_refused(spark, split_cfg: Config) -> None:
    with pytest.raises(ModelGateError, match="empty"):
        time_split(spark.createDataFrame([], SCHEMA), split_cfg)


def test_windows_shorter_than_the_label_horizon_are_refused(spark, cfg: Config) -> None:
    short = cfg.with_overrides(["features.sold_within_days=30", "train.validation_days=10",
                                "train.calibration_days=10"])
    with pytest.raises(ConfigError, match=r"validation_days \+ train.calibration_days = 20 .* = 30"):
        check_train_settings(spark, short, ("category_code",))
