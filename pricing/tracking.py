"""MLflow set-up: absolute store and artifact URIs, one experiment per environment, registry helpers.

Locally the tracking store and the model registry are one SQLite database under ``.pricing/``; on
Databricks they are ``databricks`` and ``databricks-uc`` (aliases only, never stages).
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pricing.config import Config

CHAMPION = "champion"
CHALLENGER = "challenger"


def tracking_uri(cfg: Config) -> str:
    if cfg.mlflow.tracking_uri:
        return cfg.mlflow.tracking_uri
    return f"sqlite:///{(cfg.state_dir / 'mlflow.db').resolve()}"


def artifact_root(cfg: Config) -> str:
    if cfg.mlflow.artifact_root:
        return cfg.mlflow.artifact_root
    return (cfg.state_dir / "mlartifacts").resolve().as_uri()


def setup(cfg: Config) -> str:
    """Point MLflow at this config's store and registry; return the experiment id."""
    # A stray ./mlruns would make MLflow fall back to the refused file store; always be explicit.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    Path(cfg.state_dir).mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    mlflow.set_registry_uri(cfg.mlflow.registry_uri or tracking_uri(cfg))
    client = MlflowClient()
    exp = client.get_experiment_by_name(cfg.mlflow.experiment)
    if exp is None:
        kwargs = {} if cfg.mlflow.tracking_uri == "databricks" else {"artifact_location": artifact_root(cfg)}
        exp_id = client.create_experiment(cfg.mlflow.experiment, **kwargs)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return str(exp_id)


def alias_version(client: MlflowClient, name: str, alias: str) -> int | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    try:
        return int(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
