from __future__ import annotations

from pathlib import Path

import pytest

from pricing.platform import spark as spark_mod
from pricing.platform.errors import SetupError
from pricing.platform.spark import CODEGEN_CACHE


def test_missing_jar_cache_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="make jars"):
        spark_mod.delta_jars(tmp_path / "nowhere")


def test_incomplete_jar_cache_is_reported(tmp_path: Path) -> None:
    (tmp_path / "MANIFEST").write_text("io.delta:delta-spark_4.2_2.13:4.4.0\ndelta-spark_4.2_2.13-4.4.0.jar\n")
    with pytest.raises(SetupError, match="incomplete"):
        spark_mod.delta_jars(tmp_path)


def test_missing_java_is_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark_mod.shutil, "which", lambda _: None)
    with pytest.raises(SetupError, match="Java was not found"):
        spark_mod._check_java()


def test_session_is_utc_with_delta_and_small_shuffle(spark) -> None:
    conf = spark.conf
    assert conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.sql.shuffle.partitions") == "2"
    assert "DeltaSparkSessionExtension" in conf.get("spark.sql.extensions")
    assert spark.sparkContext.getConf().get("spark.ui.enabled") == "false"


def test_the_driver_keeps_generated_classes_and_collects_with_parallel_gc(spark) -> None:
    """The JVM the session runs in, not only its conf: the codegen cache's size as Spark's SQL conf reads it, and
    the garbage collectors the driver JVM really runs."""
    jvm = spark.sparkContext._jvm
    assert jvm.org.apache.spark.sql.internal.SQLConf.get().codegenCacheMaxEntries() == int(CODEGEN_CACHE[1]) == 10000
    collectors = {b.getName() for b in jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()}
    assert collectors == {"PS Scavenge", "PS MarkSweep"}, collectors
