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
