"""The ``pricing`` command starts fast: its help lines come from the jobs' source, not from importing them."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from pricing.workflow.cli import _summary
from pricing.workflow.runner import JOBS


def test_help_lines_are_each_jobs_docstring_first_line() -> None:
    for name in JOBS:
        module = importlib.import_module(f"jobs.{name}")
        assert _summary(f"jobs.{name}") == (module.__doc__ or "").strip().splitlines()[0]


def test_parsing_arguments_imports_no_job_and_no_heavy_library() -> None:
    probe = ("import json, sys\n"
             "from pricing.workflow.cli import _parser\n"
             "_parser().parse_args(['--set', 'simulator.n_listings=10', 'validate'])\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('jobs', 'mlflow', 'xgboost', 'great_expectations') and m != 'jobs')))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout) == []


def test_xgboost_sparks_info_lines_stay_out_of_a_tasks_output_and_its_warnings_do_not() -> None:
    probe = ("import contextlib, io, sys\n"
             "from pricing.workflow.cli import main\n"
             "if sys.argv[1] == 'cli':\n"
             "    with contextlib.redirect_stdout(io.StringIO()):\n"
             "        main(['config'])\n"
             "from xgboost.spark.utils import get_logger\n"
             "get_logger('XGBoost-PySpark').info('probe-info')\n"
             "get_logger('XGBoost-PySpark').warning('probe-warning')\n")
    def stderr(mode: str) -> str:
        return subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True, check=True,
                              timeout=120).stderr

    quiet, plain = stderr("cli"), stderr("plain")
    assert "probe-info" in plain and "probe-warning" in plain   # xgboost.spark alone prints both
    assert "probe-info" not in quiet and "probe-warning" in quiet
