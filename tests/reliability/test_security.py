"""Security: no credential in the repository or ``conf/``; secrets only from the environment or Databricks secret
scopes; local servers bind to 127.0.0.1; Data Docs and model cards load nothing from outside; scoring loads the
registry's ``champion`` by version, never a path a user passes."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession

from pricing.platform import delta_io, tracking
from pricing.platform.config import Config, ScoreConfig
from pricing.platform.errors import ModelGateError
from pricing.platform.tables import table
from pricing.validation.data_docs import CSP, offline
from pricing.workflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {
    "Databricks token": re.compile(r"\bdapi[0-9a-f]{32}\b"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key": re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "API key": re.compile(r"\bsk-[A-Za-z0-9]{32,}\b"),
    "credential in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]{3,}@"),
    "password literal": re.compile(
        r"""(?i)\b(?:password|passwd|pwd|secret|token|api_?key|access_?key)\s*[=:]\s*["'][^"'\s{}$<>]{6,}["']"""),
}
SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|token|api_?key|access_?key|credential)")


def repo_files() -> list[Path]:
    """Tracked files, untracked ones git does not ignore, and everything under conf/."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode().split("\0")
    files = {ROOT / f for f in out if f} | set((ROOT / "conf").rglob("*"))
    return sorted(f for f in files if f.is_file() and f.stat().st_size < 5_000_000)


def scan(text: str) -> list[str]:
    return [f"{kind}: {m.group(0)[:60]}" for kind, pattern in TOKENS.items() for m in pattern.finditer(text)]


def test_the_scanner_finds_planted_credentials() -> None:
    planted = ["dapi" + "0123456789abcdef" * 2, "AKIA" + "ABCDEFGHIJKLMNOP", "-----BEGIN RSA PRIVATE " + "KEY-----",
               'password = "' + 'hunter2hunter2"', "postgresql://admin:" + "s3cr3t@db:5432/x",
               "ghp_" + "a" * 36, "token: '" + "abcdef123456'"]
    for p in planted:
        assert scan(p), p
    assert not scan('password = os.environ["DB_PASSWORD"]\ntoken: "{{secrets/pricing/token}}"\n')


def test_no_credential_in_the_repository_or_conf() -> None:
    files = repo_files()
    assert len(files) > 50 and any(f.parent.name == "conf" for f in files)
    hits = []
    for f in files:
        data = f.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary
        hits += [f"{f.relative_to(ROOT)}: {h}" for h in scan(data.decode("utf-8", errors="replace"))]
    assert not hits, "\n".join(hits)


def _walk(node: object, path: str = "") -> list[tuple[str, object]]:
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in [(f"{path}.{k}", v), *_walk(v, f"{path}.{k}")]]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in _walk(v, f"{path}[{i}]")]
    return []


def test_secrets_come_only_from_the_environment_or_secret_scopes() -> None:
    # The typed config has no place for a secret: a credential can only come from elsewhere.
    def fields(model: type, prefix: str = "") -> list[str]:
        out = []
        for name, f in model.model_fields.items():
            out.append(prefix + name)
            ann = f.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                out += fields(ann, f"{prefix}{name}.")
        return out
    assert not [f for f in fields(Config) if SECRET_KEY.search(f)]
    # Bundle and config YAML: a key naming a secret holds nothing, or a secret-scope / environment reference.
    ymls = [*(ROOT / "conf").rglob("*.yml"), ROOT / "databricks.yml", *(ROOT / "resources").glob("*.yml")]
    bad = []
    for y in ymls:
        for key, value in _walk(yaml.safe_load(y.read_text()) or {}):
            if SECRET_KEY.search(key.rsplit(".", 1)[-1]) and value not in (None, "") and not (
                    isinstance(value, str) and re.fullmatch(r"\{\{secrets/[\w.-]+/[\w.-]+\}\}|\$\{[\w.:-]+\}", value)):
                bad.append(f"{y.name}: {key} = {str(value)[:30]}")
    assert not bad, bad


def test_the_mlflow_ui_and_local_spark_bind_to_loopback(spark: SparkSession) -> None:
    dry = subprocess.run(["make", "-n", "ui"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    (ui,) = [line for line in dry.splitlines() if "mlflow ui" in line or "mlflow server" in line]
    assert re.search(r"--host\s+127\.0\.0\.1\b", ui), ui
    assert "0.0.0.0" not in dry
    for f in repo_files():
        if f.suffix in {".py", ".yml", ".toml", ".cfg", ".sh", ""} or f.name == "Makefile":
            text = f.read_text(errors="replace")
            assert not re.search(r"""(?:--host[ =]|host\s*=\s*["'])0\.0\.0\.0""", text), f
    # The local test session: Spark's driver (UI, RPC, block manager) listens on the loopback interface.
    assert os.environ.get("SPARK_LOCAL_IP") == "127.0.0.1"
    assert spark.sparkContext.getConf().get("spark.driver.host") in ("127.0.0.1", "localhost")


EXTERNAL = re.compile(
    r"""<(?:script|img|iframe|embed|source|audio|video)\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import\s+["']?(?:url\()?\s*["']?(?:https?:)?//"""
    r"""|!\[[^\]]*\]\(\s*(?:https?:)?//""", re.I)


def test_offline_rewrite_removes_every_external_load() -> None:
    page = ('<html><head><script src="https://cdn.example/jquery.js"></script>'
            "<link rel='stylesheet' href='//cdn.example/b.css'><style>@import url(https://x/y.css); "
            "body{background:url('http://x/bg.png')}</style></head><body>"
            '<img src="https://greatexpectations.io/logo.png?id=abc&t=1"><script src="local.js"></script>'
            "<p>observed 12 rows</p></body></html>")
    out = offline(page)
    assert not EXTERNAL.search(out), out
    assert "local.js" in out and "observed 12 rows" in out and CSP in out


@pytest.mark.slow
def test_data_docs_and_model_cards_load_nothing_from_outside(ref: Config) -> None:
    docs = sorted(ref.state_path(ref.validate_.data_docs_dir).rglob("*.htm*"))
    cards = sorted((ref.state_dir / "mlartifacts").rglob("model_card.md"))
    assert docs and cards
    hits = []
    for f in [*docs, *cards, *(ref.state_path(ref.validate_.data_docs_dir).rglob("*.css"))]:
        hits += [f"{f.name}: {m.group(0)}" for m in EXTERNAL.finditer(f.read_text(errors="replace"))]
    assert not hits, hits[:10]
    assert all(CSP in f.read_text() for f in docs)


def test_scoring_loads_the_champion_by_version_never_a_path(spark: SparkSession, ref: Config,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import jobs.score

    # No setting can hand scoring a model path or URI.
    assert not [f for f in ScoreConfig.model_fields if re.search(r"path|uri|file|model$", f)]
    with pytest.raises(SystemExit) as exit_:
        main(["--set", f"storage.root={ref.state_dir}", "--set", "score.model_path=/tmp/evil", "score"])
    assert exit_.value.code == 2 and "unknown key" in capsys.readouterr().err
    # What it loads: the registry's model name and the version `champion` points at.
    tracking.setup(ref)
    from mlflow.tracking import MlflowClient

    champion = tracking.alias_version(MlflowClient(), ref.mlflow.model_name, tracking.CHAMPION)
    loaded = []

    class Stop(Exception):
        pass

    def spy(name: str, version: int) -> None:
        loaded.append((name, version))
        raise Stop

    monkeypatch.setattr(jobs.score, "load_version", spy)
    with pytest.raises(Stop):
        jobs.score.run(spark, ref)
    assert loaded == [(ref.mlflow.model_name, champion)]
    # A champion that moved since the workflow promoted another version is refused before anything is written.
    out = table(ref, "ml.price_suggestions")
    before = delta_io.version(spark, out)
    with pytest.raises(ModelGateError, match="champion"):
        jobs.score.run(spark, ref.with_overrides([f"score.champion_version={champion + 7}"]))
    assert delta_io.version(spark, out) == before
