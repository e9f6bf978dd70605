"""The summary every job returns, prints and logs: rows in and out, tables with Delta versions, run ids."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class JobSummary:
    job: str
    rows_in: dict[str, int] = field(default_factory=dict)
    rows_out: dict[str, int] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    """table -> Delta version after the job."""
    info: dict[str, Any] = field(default_factory=dict)
    task_values: dict[str, str | int] = field(default_factory=dict)
    """What the job hands to downstream tasks (Databricks task values; the local runner keeps them too)."""
    started: float = field(default_factory=time.time)
    elapsed_s: float = 0.0

    def finish(self) -> JobSummary:
        self.elapsed_s = round(time.time() - self.started, 2)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "rows_in": self.rows_in, "rows_out": self.rows_out, "tables": self.tables,
                "info": self.info, "task_values": self.task_values, "elapsed_s": self.elapsed_s}

    def render(self) -> str:
        lines = [f"== {self.job}: done in {self.elapsed_s:.1f} s"]
        for label, d in (("rows in", self.rows_in), ("rows out", self.rows_out)):
            if d:
                lines.append(f"   {label:9}: " + ", ".join(f"{k}={v:,}" for k, v in d.items()))
        for t, v in self.tables.items():
            lines.append(f"   table    : {t} @ v{v}")
        for k, v in self.info.items():
            text = json.dumps(v, default=str) if isinstance(v, dict | list) else str(v)
            lines.append(f"   {k:9}: {text}")
        if self.task_values:
            lines.append("   publishes: " + ", ".join(f"{k}={v}" for k, v in self.task_values.items()))
        return "\n".join(lines)
