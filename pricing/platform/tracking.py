"""MLflow set-up: absolute store and artifact URIs, one experiment per environment, registry helpers.

Locally the tracking store and the model registry are one SQLite database under ``.pricing/``; on
Databricks they are ``databricks`` and ``databricks-uc`` (aliases only, never stages).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pricing.platform.config import Config
from pricing.platform.errors import ModelGateError

CHAMPION = "champion"
CHALLENGER = "challenger"

# MLflow runs a model logged from code by executing its file with a stand-in for ``dbutils`` put in sys.modules,
# and hands the model back through a module global (``mlflow.models.set_model``).  Neither is safe when two
# threads of one process load or log such a model at once: a thread can get the other's model, and the stand-in
# can stay in sys.modules for good.  So this process does one at a time.
_CODE_MODEL = threading.Lock()


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
        location = None if cfg.mlflow.tracking_uri == "databricks" else artifact_root(cfg)
        exp_id = client.create_experiment(cfg.mlflow.experiment, artifact_location=location)
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


def log_code_model(code: Path, artifacts: dict[str, str], *, registered_as: str, signature: Any,
                   example: Any) -> Any:
    """Log (and register as ``registered_as``) the model that the file ``code`` defines; its ``ModelInfo``."""
    with _CODE_MODEL:
        return mlflow.pyfunc.log_model(
            name="model", python_model=code, artifacts=artifacts, signature=signature, input_example=example,
            registered_model_name=registered_as, pip_requirements=model_requirements(),
        )


def load_code_model(name: str, version: int) -> Any:
    """The Python model object of one registered version of a model logged from code."""
    with _CODE_MODEL:
        return mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()


def model_requirements() -> list[str]:
    """Pip pins for a logged pyfunc model: the versions of what its predictor runs on, as installed here."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    return [f"xgboost=={xgb.__version__}", f"mlflow=={mlflow.__version__}", f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}"]


def checked_champion(name: str, expected: int | None, *, what: str, missing: str, handed_over: str,
                     rerun: str) -> int:
    """The version `champion` of ``name`` points at, checked against ``expected``, the one an upstream task of
    this workflow handed over (None: nothing handed over, e.g. a job run on its own).  ``what`` names the model
    in errors, ``missing`` says what to run when there is no champion, ``handed_over`` which task left
    ``expected`` and ``rerun`` what to run again when the registry changed under the run."""
    version = alias_version(MlflowClient(), name, CHAMPION)
    if version is None:
        raise ModelGateError(f"{what} {name!r} has no `champion` alias: {missing}")
    if expected is not None and version != expected:
        raise ModelGateError(f"alias `champion` of {name!r} points at v{version}, but {handed_over} v{expected}: "
                             f"the registry changed under the run; {rerun}")
    return version
