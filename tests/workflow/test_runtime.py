"""The Databricks runtime the bundle runs on agrees with what the tests run and with what the wheel asks for.

Every task installs the wheel on the runtime that ``spark_version`` (databricks.yml) names, and that runtime brings
its own Spark, MLflow and xgboost: its Spark must be the pyspark the tests run (constraints.txt), its MLflow must
satisfy the wheel's range (or installing the wheel would replace it), the versions the tests run must satisfy the
same ranges, and ``requires-python`` must admit the runtime's Python as well as ours."""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from pricing.workflow.bundle import Bundle, load_bundle

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Runtime:
    spark: str
    python: str
    mlflow: str | None = None
    """None: not recorded here; a runtime the bundle names must have it."""


RUNTIMES = {
    # Databricks Runtime ML release notes: what each runtime brings.  Add a runtime here before naming it in the bundle.
    "19.0": Runtime(spark="4.2.0", python="3.12", mlflow="3.12.0"),
    "18.0": Runtime(spark="4.1.0", python="3.12", mlflow="3.8.1"),
    "17.3": Runtime(spark="4.0.0", python="3.12"),
}
# ML runtimes only: they bring MLflow and xgboost (xgboost.spark); Scala 2.13 as the Delta jars the tests use.
SPARK_VERSION = re.compile(r"^(?P<version>\d+\.\d+)\.x-(?:cpu|gpu)-ml-scala2\.13$")
# What the runtime brings and installing the wheel must therefore never replace.
RUNTIME_PACKAGES = ("pyspark", "delta-spark", "mlflow", "xgboost")


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(ROOT)


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.fixture(scope="module")
def pins() -> dict[str, str]:
    """constraints.txt: name -> the exact version the tests run."""
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            out[canonicalize_name(name)] = version.strip()
    return out


def requirements(project: dict, *extras: str) -> dict[str, Requirement]:
    reqs = [Requirement(r) for r in project["dependencies"]]
    reqs += [Requirement(r) for e in extras for r in project["optional-dependencies"][e]]
    return {canonicalize_name(r.name): r for r in reqs}


def runtimes_named(bundle: Bundle) -> dict[str, str]:
    """Where -> spark_version, for the variable's default and every target's value."""
    named = {"variables.spark_version.default": bundle.variables["spark_version"]["default"]}
    for target in bundle.targets:
        named[f"targets.{target}"] = bundle.target_variables(target)["spark_version"]
    return named


def runtime(spark_version: str, where: str) -> Runtime:
    match = SPARK_VERSION.match(str(spark_version))
    assert match, f"{where}: {spark_version!r} is not a Databricks Runtime ML (N.M.x-cpu-ml-scala2.13)"
    version = match["version"]
    assert version in RUNTIMES, (f"{where}: runtime {version} is not in RUNTIMES; add its Spark, Python and "
                                 "MLflow versions from the Databricks release notes")
    return RUNTIMES[version]


def test_every_cluster_runs_the_bundle_s_runtime_variable(bundle: Bundle) -> None:
    for key, job in bundle.jobs.items():
        for cluster in job.spec.get("job_clusters") or []:
            assert cluster["new_cluster"]["spark_version"] == "${var.spark_version}", \
                f"{key}.{cluster['job_cluster_key']}: set spark_version through the variable, which is checked here"


def test_the_runtime_s_spark_is_the_pyspark_the_tests_run(bundle: Bundle, project: dict, pins: dict[str, str]) -> None:
    local = requirements(project, "local")
    for where, spark_version in runtimes_named(bundle).items():
        spark = runtime(spark_version, where).spark
        assert spark == pins["pyspark"], (f"{where}: {spark_version} runs Spark {spark}, the tests run pyspark "
                                          f"{pins['pyspark']} (constraints.txt)")
        assert local["pyspark"].specifier.contains(spark), f"{where}: the local extra's pyspark excludes {spark}"


def test_installing_the_wheel_keeps_the_runtime_s_mlflow(bundle: Bundle, project: dict) -> None:
    mlflow = requirements(project)["mlflow"].specifier
    for where, spark_version in runtimes_named(bundle).items():
        version = runtime(spark_version, where).mlflow
        assert version is not None, f"{where}: record {spark_version}'s MLflow version in RUNTIMES"
        assert mlflow.contains(version), f"{where}: {spark_version} brings MLflow {version}, the wheel wants {mlflow}"


def test_the_runtime_s_packages_are_ranges_and_spark_stays_out_of_the_wheel(project: dict) -> None:
    deps = requirements(project)
    assert "pyspark" not in deps and "delta-spark" not in deps, "pyspark and delta-spark belong in the local extra"
    for name in ("mlflow", "xgboost"):
        assert name in deps, name
        assert not any(s.operator in ("==", "===") for s in deps[name].specifier), \
            f"{name} is pinned exactly ({deps[name]}): a range the runtime's version satisfies, pins in constraints.txt"
    for name, req in deps.items():
        assert str(req.specifier), f"{name}: give a compatible range"


def test_the_versions_the_tests_run_satisfy_the_wheel_s_ranges(project: dict, pins: dict[str, str]) -> None:
    reqs = requirements(project, *project["optional-dependencies"])
    for name in RUNTIME_PACKAGES:
        assert name in pins, f"constraints.txt pins no {name}"
    unsatisfied = {name: (str(req.specifier), pins[name]) for name, req in reqs.items()
                   if name in pins and not req.specifier.contains(pins[name], prereleases=True)}
    assert not unsatisfied, f"pyproject range vs constraints.txt pin: {unsatisfied}"


def test_requires_python_admits_ours_and_the_runtime_s(bundle: Bundle, project: dict) -> None:
    requires = SpecifierSet(project["requires-python"])
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    for version in {"3.11", "3.12", ours}:
        assert requires.contains(version), f"requires-python {requires} excludes Python {version}"
    for where, spark_version in runtimes_named(bundle).items():
        python = runtime(spark_version, where).python
        assert requires.contains(python), f"{where}: {spark_version} runs Python {python}, outside {requires}"
