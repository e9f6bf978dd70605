"""The wheel is the whole deployment: a Databricks task installs it and calls its entry point from an unknown
working directory with no source checkout.  So it must carry the configuration (``conf/`` as ``pricing.conf``) and
every package, and ``load_config`` must find that configuration with no checkout and no environment variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = sorted(p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yml"))


def test_the_wheel_carries_the_configuration_and_every_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {"base.yml", "local.yml", "dev.yml", "prod.yml"} <= set(CONF)
        assert any(c.startswith("expectations/") for c in CONF)
        for rel in CONF:
            assert f"pricing/conf/{rel}" in names, f"conf/{rel} is not in the wheel as pricing/conf/{rel}"
            assert z.read(f"pricing/conf/{rel}") == (ROOT / "conf" / rel).read_bytes(), rel
        assert "pricing/conf/__init__.py" in names
        # Every module of the packages (pyproject lists them: a new package must be added there).
        modules = sorted(p.relative_to(ROOT).as_posix() for top in ("pricing", "jobs", "features")
                         for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)
        missing = [m for m in modules if m not in names]
        assert not missing, f"not in the wheel (add the package to [tool.setuptools] packages): {missing}"
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
        metadata = z.read(f"{dist_info}/METADATA").decode()
    assert "pricing = pricing.workflow.cli:main" in entry_points
    # The runtime's own Spark and Delta are used on Databricks: never a plain dependency of the wheel.
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:") and any(p in line for p in ("pyspark", "delta-spark", "delta_spark")):
            assert 'extra == "local"' in line, line


LOAD = """
import json, sys
import pricing
from pricing.platform.config import checkout_root, load_config
from pricing.validation.suites import load_suites

out = {"pricing": pricing.__file__, "checkout": str(checkout_root())}
for env in ("local", "prod"):
    cfg = load_config(env)
    out[env] = {"conf_dir": cfg.conf_dir, "state_dir": str(cfg.state_dir), "catalog": cfg.storage.catalog,
                "suites_dir": str(cfg.suites_dir), "suites": sorted(s.name for s in load_suites(cfg.suites_dir))}
print(json.dumps(out))
"""


def test_an_installed_wheel_finds_its_configuration_with_no_checkout(wheel: Path, tmp_path: Path) -> None:
    """The wheel's files alone on the path (as installed), run from an unrelated folder, no PRICING_HOME."""
    site, work = tmp_path / "site", tmp_path / "work"
    work.mkdir()
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    # A file, not `python -c`: with no __main__ file pyspark.sql.connect (imported by GX) assumes doctests and exits.
    script = tmp_path / "load.py"
    script.write_text(LOAD)
    env = {k: v for k, v in os.environ.items() if k not in ("PRICING_HOME", "PRICING_ENV", "PYTHONPATH")}
    run = subprocess.run([sys.executable, str(script)], cwd=work, env={**env, "PYTHONPATH": str(site)},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(out["pricing"]).is_relative_to(site), out["pricing"]
    assert out["checkout"] == "None"
    suites = sorted(Path(c).stem for c in CONF if c.startswith("expectations/"))
    for env_name, catalog in (("local", None), ("prod", "pricing_prod")):
        got = out[env_name]
        assert got["conf_dir"] == str(site / "pricing" / "conf")
        assert got["catalog"] == catalog
        assert got["suites_dir"] == str(site / "pricing" / "conf" / "expectations")
        assert got["suites"] == suites
    # A relative storage.root (local's `.pricing`) resolves against the working directory.
    assert out["local"]["state_dir"] == str(work / ".pricing")
