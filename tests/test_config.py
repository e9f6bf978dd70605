from __future__ import annotations

from pathlib import Path

import pytest

from pricing.platform.config import load_config, packaged_conf
from pricing.platform.errors import ConfigError
from pricing.platform.tables import table
from pricing.validation.suites import load_suites

ROOT = Path(__file__).resolve().parents[1]


def _conf(tmp_path: Path, base: str, env: str | None = None) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "base.yml").write_text(base)
    if env is not None:
        (conf / "prod.yml").write_text(env)
    return conf


def test_env_file_overrides_base_and_tables_resolve_per_environment() -> None:
    local = load_config("local")
    dev = load_config("dev")
    assert local.spark.master == "local[2]"
    assert table(local, "bronze.listings_raw").path == str(ROOT / ".pricing" / "warehouse" / "bronze" / "listings_raw")
    assert table(dev, "ml.price_suggestions").full_name == "pricing_dev.ml.price_suggestions"
    assert table(dev, "ml.price_suggestions").sql == "`pricing_dev`.`ml`.`price_suggestions`"


def test_unknown_key_is_named_with_the_file_that_set_it(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "train:\n  num_workers: 2\n", "train:\n  num_workerz: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config("prod", conf_dir=conf, project_dir=tmp_path)
    assert "train.num_workerz: unknown key" in str(err.value)
    assert "prod.yml" in str(err.value)


def test_wrong_type_is_named_with_key_and_file(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "spark:\n  shuffle_partitions: lots\n")
    with pytest.raises(ConfigError) as err:
        load_config("local", conf_dir=conf, project_dir=tmp_path)
    assert "spark.shuffle_partitions" in str(err.value) and "base.yml" in str(err.value)


def test_overrides_are_typed_too() -> None:
    assert load_config("local", ["train.num_workers=1"]).train.num_workers == 1
    with pytest.raises(ConfigError, match="train.quantiles"):
        load_config("local", ["train.quantiles=[0.9, 0.5, 0.1]"])


@pytest.mark.parametrize("bad", ["main; DROP TABLE x", "ma`in", "o'hare", "1abc"])
def test_identifiers_carrying_sql_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigError, match="identifier"):
        load_config("local", {"storage": {"catalog": bad}})


def test_bad_logical_table_name_fails_before_any_write() -> None:
    cfg = load_config("local")
    with pytest.raises(ConfigError, match="layer.table"):
        table(cfg, "bronze.listings; DROP")
    with pytest.raises(ConfigError, match="not in storage.schemas"):
        table(cfg, "gold.things")


def test_unity_catalog_needs_three_level_model_name() -> None:
    with pytest.raises(ConfigError, match="catalog.schema.model"):
        load_config("local", ["mlflow.registry_uri=databricks-uc"])


def test_unknown_environment() -> None:
    with pytest.raises(ConfigError, match="unknown environment"):
        load_config("staging")


def test_bad_optimisation_settings_fail_before_any_write() -> None:
    with pytest.raises(ConfigError, match=r"recommend.max_change"):
        load_config("local", ["recommend.max_change=1.2"])
    with pytest.raises(ConfigError, match=r"recommend.objective"):
        load_config("local", ["recommend.objective=profit"])
    with pytest.raises(ConfigError, match=r"simulator.price_nudge_share"):
        load_config("local", ["simulator.price_nudge_share=-0.1"])
    with pytest.raises(ConfigError, match="demand_model_name must be catalog.schema.model"):
        load_config("local", ["mlflow.registry_uri=databricks-uc", "mlflow.model_name=c.s.price"])


# ---- where the configuration is found: PRICING_HOME, else the checkout's conf/, else the packaged one ----------
def test_a_checkout_s_conf_wins_and_its_state_stays_in_the_checkout(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.delenv("PRICING_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = load_config("local")
    assert Path(cfg.conf_dir) == ROOT / "conf" and Path(cfg.project_dir) == ROOT
    assert cfg.state_dir == ROOT / ".pricing" and cfg.suites_dir == ROOT / "conf" / "expectations"


def test_without_a_checkout_the_packaged_conf_is_used_and_state_goes_under_the_working_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PRICING_HOME", raising=False)
    monkeypatch.setattr("pricing.platform.config.checkout_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    packaged = packaged_conf()  # in an editable install, the checkout's conf/ is the package pricing.conf
    assert packaged is not None and (packaged / "base.yml").is_file()
    assert load_config("prod").storage.catalog == "pricing_prod"
    cfg = load_config("local")
    assert Path(cfg.conf_dir) == packaged and cfg.state_dir == tmp_path.resolve() / ".pricing"
    assert cfg.suites_dir == packaged / "expectations"
    assert sorted(cfg.suites_dir.glob("*.yml"))


def test_pricing_home_holds_the_conf_and_the_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = _conf(tmp_path, "spark:\n  shuffle_partitions: 3\n")
    monkeypatch.setenv("PRICING_HOME", str(tmp_path))
    cfg = load_config("local")
    assert cfg.spark.shuffle_partitions == 3 and Path(cfg.conf_dir) == conf.resolve()
    assert cfg.state_dir == tmp_path.resolve() / ".pricing"
    assert cfg.suites_dir == tmp_path.resolve() / "conf" / "expectations"


def test_missing_configuration_is_named_with_where_it_was_looked_for(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("PRICING_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"nowhere/conf/base.yml not found: PRICING_HOME="):
        load_config("local")
    monkeypatch.delenv("PRICING_HOME")
    monkeypatch.setattr("pricing.platform.config.checkout_root", lambda: None)
    monkeypatch.setattr("pricing.platform.config.packaged_conf", lambda: None)
    with pytest.raises(ConfigError) as err:
        load_config("local")
    assert "no configuration found" in str(err.value) and "conf/base.yml" in str(err.value)
    assert "pricing.conf" in str(err.value) and "PRICING_HOME" in str(err.value)
    # A target's own file is not optional: without it a Databricks task would run on local settings.
    conf = _conf(tmp_path, "{}\n")
    with pytest.raises(ConfigError, match=r"conf/prod.yml not found: environment 'prod'"):
        load_config("prod", conf_dir=conf, project_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"expectation suites folder .*/nosuites not found"):
        load_suites(tmp_path / "nosuites")


def test_renaming_one_schema_keeps_the_other_layers() -> None:
    """Every bundle task passes ``--set storage.schemas.ml=${var.schema}``: the other layers keep their schemas."""
    cfg = load_config("prod", ["storage.schemas.ml=pricing_ml"])
    assert cfg.storage.schemas == {"bronze": "bronze", "silver": "silver", "features": "features",
                                   "ml": "pricing_ml", "truth": "truth"}
