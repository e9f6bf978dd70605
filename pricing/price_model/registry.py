"""Registration of a trained price model: the logged pyfunc, its registry version, tags, description and
`challenger` alias."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from pricing.platform import faults, tracking
from pricing.platform.config import Config
from pricing.platform.tables import TableRef
from pricing.price_model import pyfunc
from pricing.price_model.predictor import PricePredictor
from pricing.price_model.training import Evaluation, Split, git_commit


def register(cfg: Config, predictor: PricePredictor, split: Split, tmp: Path, run_id: str, ev: Evaluation,
             ref: TableRef, ts_version: int, card: str) -> int:
    """Log the pyfunc (signature + input example from ``split.test``) to run ``run_id``, then ``ev``'s metrics
    with its ``model_id`` (on the run and on the logged model), register a version of ``mlflow.model_name``, tag it (training table ``ref`` at
    ``ts_version``, ``ev``'s metrics, sanity, git commit), make the model ``card`` the description of the
    version and of the registered model, and alias it `challenger` when ``ev`` found no problems.  Returns the
    version.

    The model is logged from code: ``pricing/price_model/pyfunc.py``, self-contained, is the model's code, so
    it loads wherever its pip requirements are installed (Model Serving, ``spark_udf`` in a virtualenv), not
    only where our wheel is."""
    metrics, best_baseline, floor, problems = ev.metrics, ev.best_baseline, ev.noise_floor, ev.problems
    example = split.test.select(*predictor.features).limit(5).toPandas().astype("float64")
    p10, p50, p90 = predictor.predict(predictor.matrix(example))
    signature = infer_signature(example, pd.DataFrame({"p10": p10, "p50": p50, "p90": p90}))
    info = tracking.log_code_model(Path(pyfunc.__file__), predictor.save(tmp / "predictor"),
                                   registered_as=cfg.mlflow.model_name, signature=signature, example=example)
    # The run's metrics, logged once and linked to the logged model (MLflow 3 LoggedModel): they show on the
    # model and its registered version as well as on the run.
    mlflow.log_metrics(ev.logged, model_id=info.model_id)
    client = MlflowClient()
    name, version = cfg.mlflow.model_name, int(info.registered_model_version)
    faults.point("train.after_register")
    tags = {"training_table": str(ref), "training_table_version": str(ts_version), "run_id": run_id,
            "test_rmsle": f"{metrics['rmsle']:.5f}", "best_baseline_rmsle": f"{best_baseline:.5f}",
            "coverage_80": f"{metrics['coverage_80']:.4f}", "intervals": predictor.intervals.method,
            "git_commit": git_commit(cfg), "sanity": "passed" if not problems else "; ".join(problems)}
    if floor:
        tags["rmsle_over_noise_floor"] = f"{metrics['rmsle'] / floor:.4f}"
    for k, v in tags.items():
        client.set_model_version_tag(name, str(version), k, v)
    client.update_model_version(name, str(version), description=card)
    client.update_registered_model(name, description=card)
    if not problems:
        client.set_registered_model_alias(name, tracking.CHALLENGER, str(version))
    return version
