"""The experiment section of the config: defaults, the names it shares with the code, and clear errors."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from pricing.experiment.analysis import METRIC_NAMES
from pricing.experiment.simulate import POLICIES
from pricing.platform.config import ExperimentConfig, ExperimentMetric, ExperimentPolicy, load_config
from pricing.platform.errors import ConfigError
from pricing.world.simulator import HORIZON_DAYS


def test_base_config_has_the_experiment_defaults() -> None:
    e = load_config("local").experiment
    assert e == ExperimentConfig()
    assert (e.control_policy, e.treatment_policy, e.correction, e.treatment_share) == (
        "own_price", "challenger", "holm", 0.5)


def test_config_names_match_the_code() -> None:
    assert typing.get_args(ExperimentMetric) == METRIC_NAMES
    assert typing.get_args(ExperimentPolicy) == POLICIES
    bounds = ExperimentConfig.model_fields["horizon_days"].metadata
    assert [b.le for b in bounds if hasattr(b, "le")] == [HORIZON_DAYS]


def test_bad_values_name_the_key_and_file(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "base.yml").write_text("experiment:\n  treatment_share: 1.5\n  horizon_days: 90\n")
    with pytest.raises(ConfigError) as err:
        load_config("local", conf_dir=conf, project_dir=tmp_path)
    msg = str(err.value)
    assert "experiment.treatment_share: Input should be less than 1" in msg
    assert "experiment.horizon_days: Input should be less than or equal to 60" in msg and "base.yml" in msg
    with pytest.raises(ConfigError, match="experiment.treatment_policy"):
        load_config("local", ["experiment.treatment_policy=discount"])
    with pytest.raises(ConfigError, match="mde_relative must be a non-empty list of positive shares"):
        load_config("local", ["experiment.mde_relative=[0.0]"])
