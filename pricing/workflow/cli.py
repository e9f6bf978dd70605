"""The ``pricing`` command: one subcommand per job, and ``run`` for the whole workflow.

    pricing [--env local|dev|prod] [--set section.key=value ...] <job>
    pricing run [--job pricing_training|pricing_scoring] [--from TASK]
    pricing ingest --format mercari PATH      (load a Mercari Price Suggestion .tsv instead)
    pricing experiment simulate|analyse|design  (A/B tests of pricing policies; docs/experiments.md)
    pricing config                             (the effective configuration, documented)

Every job is ``jobs.<name>.run(spark, cfg) -> JobSummary``: the CLI, the tests and the Databricks
tasks call that same function.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import logging
import sys
from pathlib import Path

from pricing.platform.config import load_config, render
from pricing.platform.errors import PricingError
from pricing.workflow.dag import run_workflow
from pricing.workflow.runner import JOBS, run_experiment, run_job


def _summary(module: str) -> str:
    """The first line of ``module``'s docstring, read from its source without importing it: importing every job
    (MLflow, xgboost, Great Expectations) would cost each command seconds before it starts."""
    spec = importlib.util.find_spec(module)
    source = spec.loader.get_source(module) if spec and spec.loader else None  # type: ignore[attr-defined]
    doc = ast.get_docstring(ast.parse(source)) if source else None
    return doc.strip().splitlines()[0] if doc else ""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pricing", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default=None, help="configuration environment: local (default), dev, prod")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set simulator.n_listings=10000 (repeatable)")
    sub = p.add_subparsers(dest="command", required=True)
    for name in JOBS:
        job = sub.add_parser(name, help=_summary(f"jobs.{name}"))
        if name == "ingest":
            job.add_argument("--format", dest="source", choices=("simulator", "mercari", "tables"), default=None,
                             help="input format (default: ingest.source from config); tables: your own tables, "
                                  "mapped by ingest.tables in config")
            job.add_argument("path", nargs="?", default=None,
                             help="input file for file formats, e.g. a Mercari train.tsv")
    exp = sub.add_parser("experiment", help="pricing-policy A/B tests: simulate, analyse or design one")
    exp.add_argument("action", choices=("simulate", "analyse", "analyze", "design"),
                     help="simulate: outcomes of a seller-randomised experiment; analyse: effects, SRM, CUPED "
                          "-> ml.experiment_results + MLflow report; design: power / sample size from history")
    sub.add_parser("config", help="print the effective configuration (base.yml + <env>.yml + --set), each key "
                                  "with its documentation; defaults live in pricing/platform/config.py")
    r = sub.add_parser("run", help="run the whole workflow (the bundle's task graph) in dependency order")
    r.add_argument("--from", dest="from_task", default=None, help="resume from this task")
    r.add_argument("--job", default="pricing_training", help="which bundle job's task graph to run")
    r.add_argument("--report", default=None, type=Path, metavar="FILE",
                   help="write each finished task's start, seconds and summary to this JSON file")
    return p


QUIET_LOGGERS = ("XGBoost-PySpark",)
"""Library loggers held at WARNING: their INFO lines repeat what the job summary and the MLflow run show
(xgboost.spark: the workers, booster params and start and end of every fit); their warnings still print."""


def quiet_libraries() -> None:
    """``QUIET_LOGGERS`` at WARNING, unless a level was set for them already (a user's logging config wins)."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """The ``pricing`` console script and the wheel's entry point on Databricks (``python_wheel_task``, whose
    trampoline calls this with ``sys.argv = [package_name, *parameters]`` and ignores the return value).

    Returns 0 when the command succeeded.  A job error (:class:`PricingError`) is printed to stderr as one
    readable message and raised as ``SystemExit(2)``: a non-zero exit for the console script, and an exception
    that fails the Databricks task.  Any other exception propagates with its traceback.
    """
    args = _parser().parse_args(argv)
    quiet_libraries()
    overrides = list(args.set)
    if getattr(args, "source", None):
        overrides.append(f"ingest.source={args.source}")
    if getattr(args, "path", None):
        overrides.append(f"ingest.path={Path(args.path).resolve()}")
    try:
        cfg = load_config(args.env, overrides)
        if args.command == "config":
            print(render(cfg), end="")
            return 0
        from pricing.platform.spark import get_spark  # Spark and Java start only for commands that need them

        if args.command == "experiment":
            spark = get_spark(cfg, app_name="pricing-experiment")
            action = "analyse" if args.action == "analyze" else args.action
            print(run_experiment(action, spark, cfg).render(), flush=True)
        elif args.command == "run":
            spark = get_spark(cfg, app_name="pricing-run")
            run_workflow(spark, cfg, job=args.job, from_task=args.from_task, report=args.report)
        else:
            spark = get_spark(cfg, app_name=f"pricing-{args.command}")
            run_job(args.command, spark, cfg)
    except PricingError as exc:
        print(f"pricing {args.command}: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from exc
    return 0


if __name__ == "__main__":
    sys.exit(main())
