"""Library half of the ``validate`` job (moved out of ``jobs/validate.py``).

validate: run the Great Expectations suites in conf/expectations; a blocking failure stops the workflow.

Every result is appended to ``ml.validation_results`` (one row per expectation and run) and rendered
into GX Data Docs under ``<storage.root>/<validate.data_docs_dir>``, before a blocking failure raises.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from pricing.platform import catalog
from pricing.platform.config import Config

RESULTS = catalog.ML_VALIDATION_RESULTS


RESULT_SCHEMA = ("run_id string, validated_at timestamp, suite string, table string, expectation string, "
                 "kwargs string, severity string, success boolean, observed string, expected string")


def reference_time(cfg: Config) -> datetime:
    """The "now" that freshness checks (``max_age_hours``) measure against, aware UTC.

    ``validate.reference_time`` when set.  Otherwise, for the simulator and Mercari sources, the end of
    their data: both timelines are fixed (the simulator's ``start_date + days``, cut at
    ``export_through`` + 1 day; Mercari's synthetic ``start_date + days``), so against the wall clock
    every freshness check would fail once that period is over.  Any other source: the current time.
    """
    if cfg.validate_.reference_time is not None:
        return cfg.validate_.reference_time
    if cfg.ingest.source == "simulator":
        sim = cfg.simulator
        end = sim.start_date + timedelta(days=sim.days)
        if sim.export_through is not None:
            end = min(end, sim.export_through + timedelta(days=1))
        return datetime.combine(end, time(), tzinfo=UTC)
    if cfg.ingest.source == "mercari":
        m = cfg.ingest.mercari
        return datetime.combine(m.start_date + timedelta(days=m.days), time(), tzinfo=UTC)
    return datetime.now(UTC)
