"""The validate job's library half: the reference "now" of freshness checks and the ``ml.validation_results``
schema."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from pricing.platform import catalog
from pricing.platform.config import Config

RESULTS = catalog.ML_VALIDATION_RESULTS


RESULT_SCHEMA = ("run_id string, validated_at timestamp, suite string, table string, expectation string, "
                 "kwargs string, severity string, success boolean, observed string, expected string")

RESULT_DOCS = {
    "run_id": "One validate run: every row it wrote shares this id.",
    "validated_at": "When the run started (UTC).",
    "suite": "Expectation suite (one per table, conf/expectations/<suite>.yml).",
    "table": "Logical table the suite checked (layer.table).",
    "expectation": "Great Expectations expectation type, e.g. expect_column_values_to_be_unique.",
    "kwargs": "The expectation's arguments as JSON.",
    "severity": "blocking (a failure stops the workflow) or warning (reported only).",
    "success": "Whether the expectation held.",
    "observed": "What GX observed, as JSON (counts, unexpected values, the observed value).",
    "expected": "What the expectation required, in words.",
}
"""Column -> description of ``ml.validation_results``."""


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
