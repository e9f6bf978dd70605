from __future__ import annotations

from pathlib import Path

import pytest

from pricing.dag import load_tasks
from pricing.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_local_runner_reads_the_bundle_task_graph_in_order() -> None:
    tasks = load_tasks(ROOT, "pricing_training")
    assert [t.key for t in tasks] == ["generate", "ingest", "features", "validate", "train", "promote", "score"]
    assert [t.job for t in tasks] == ["generate", "ingest", "features", "validate", "train", "promote", "score"]
    # Bundle variables are meaningless locally, so the train task carries no override here.
    assert next(t for t in tasks if t.key == "train").overrides == ()


def test_unknown_dependency_fails(tmp_path: Path) -> None:
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "j.yml").write_text(
        "resources:\n  jobs:\n    j:\n      tasks:\n"
        "        - task_key: a\n          python_wheel_task: {parameters: [ingest]}\n"
        "          depends_on: [{task_key: nope}]\n")
    with pytest.raises(ConfigError, match="unknown task"):
        load_tasks(tmp_path, "j")


def test_unknown_job_fails() -> None:
    with pytest.raises(ConfigError, match="no bundle job"):
        load_tasks(ROOT, "nonexistent")
