"""Optional hyperparameter search with Optuna (TPE), bounded by trial count and time.

Each trial is a nested MLflow run under the training run, with its parameters and its validation RMSLE.
The objective is scored on the validation weeks only; the test weeks stay untouched until the final model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import mlflow

from pricing.platform.config import TuningConfig

Objective = Callable[[dict[str, Any]], tuple[float, dict[str, float]]]
"""params -> (validation RMSLE, extra metrics to log)."""


def search_space(trial: Any, base: dict[str, Any]) -> dict[str, Any]:
    """Ranges that matter for gradient-boosted trees on tabular prices, around sensible defaults."""
    return {
        **base,
        "max_depth": trial.suggest_int("max_depth", 4, 10),
        "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 50.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 20.0, log=True),
    }


def tune(objective: Objective, base: dict[str, Any], cfg: TuningConfig, seed: int) -> dict[str, Any]:
    """Run the search; return the best parameters (``base`` itself when it is best).

    The configured parameters are the first trial, so tuning never returns anything worse than them.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: base[k] for k in ("max_depth", "learning_rate", "min_child_weight", "subsample",
                                              "colsample_bytree", "reg_lambda")})
    started = time.time()

    def run_trial(trial: Any) -> float:
        params = search_space(trial, base)
        t0 = time.time()
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(params)
            score, extra = objective(params)
            mlflow.log_metrics({"valid_rmsle": score, "trial_seconds": time.time() - t0, **extra})
        print(f"  tuning trial {trial.number + 1}/{cfg.n_trials}: valid RMSLE {score:.5f} "
              f"({time.time() - t0:.0f} s, {time.time() - started:.0f} s in total)", flush=True)
        return score

    study.optimize(run_trial, n_trials=cfg.n_trials, timeout=cfg.timeout_s)
    best = {**base, **study.best_params}
    mlflow.log_metrics({"tuning_best_valid_rmsle": study.best_value, "tuning_trials": float(len(study.trials))})
    return best
