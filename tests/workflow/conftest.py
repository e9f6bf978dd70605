"""The wheel, built once per test run exactly as the bundle builds its artifact, for the wheel and the
deployed-path tests."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pricing.workflow.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "pricing", "jobs", "features", "conf")
"""What the build reads: copied, so the build leaves nothing (build/, *.egg-info, dist/) in the working tree."""


def bundle_build_command() -> list[str]:
    """``artifacts.pricing_wheel.build`` from ``databricks.yml``, with ``python`` as this interpreter."""
    artifact = load_bundle(ROOT).config["artifacts"]["pricing_wheel"]
    assert artifact["type"] == "whl" and artifact["path"] == "."
    argv = shlex.split(artifact["build"])
    assert argv[0] == "python", f"the bundle builds with {argv[0]!r}: teach the tests that interpreter"
    return [sys.executable, *argv[1:]]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel the bundle deploys: its own build command, run in a copy of the sources."""
    src = tmp_path_factory.mktemp("wheel-src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    build = subprocess.run(bundle_build_command(), cwd=src, capture_output=True, text=True, timeout=540)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (whl,) = (src / "dist").glob("marketplace_pricing-*.whl")
    return whl
