"""promote: champion/challenger gate.  `champion` moves to the challenger only if it beats the current
champion on the same most-recent holdout by the configured margin; the decision is tagged on the version."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

from jobs.train import labelled, time_split
from pricing import delta_io, tracking
from pricing.config import Config
from pricing.metrics import rmsle
from pricing.model import PriceModel, score_frame
from pricing.summary import JobSummary
from pricing.tables import table


def load_version(name: str, version: int) -> PriceModel:
    """The registered pyfunc's python model (booster, features, intervals) for one version."""
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()  # type: ignore[no-any-return]


def holdout_rmsle(spark: SparkSession, cfg: Config, model: PriceModel) -> float:
    ts = labelled(delta_io.read(spark, table(cfg, "features.training_set")))
    test = time_split(ts, cfg).test
    raw = bytes(model.booster.save_raw("json"))
    frame = score_frame(test, raw, model.features, model.intervals).join(test.select("listing_id", "label"),
                                                                          "listing_id").toPandas()
    return rmsle(frame["label"].to_numpy(), np.log1p(frame["p50"].to_numpy()))


def decide(challenger: float, champion: float | None, min_improvement: float) -> tuple[bool, str]:
    """Pure gate: promote when there is no champion, or the challenger is better by the margin."""
    if champion is None:
        return True, "no champion yet; challenger passed its sanity checks"
    needed = champion * (1 - min_improvement)
    if challenger < needed:
        return True, f"challenger RMSLE {challenger:.5f} < champion {champion:.5f} x (1 - {min_improvement})"
    return False, f"challenger RMSLE {challenger:.5f} does not beat champion {champion:.5f} by {min_improvement:.1%}"


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("promote")
    tracking.setup(cfg)
    client = MlflowClient()
    name = cfg.mlflow.model_name
    chal_v = tracking.alias_version(client, name, tracking.CHALLENGER)
    champ_v = tracking.alias_version(client, name, tracking.CHAMPION)
    info: dict[str, Any] = {"challenger": chal_v, "champion_before": champ_v}
    if chal_v is None:
        info["decision"] = "no challenger (the last model failed its sanity checks or none was trained)"
        summary.info.update(info)
        return summary.finish()
    if chal_v == champ_v:
        info["decision"] = f"v{chal_v} is already champion"
        summary.info.update(info)
        return summary.finish()
    chal = holdout_rmsle(spark, cfg, load_version(name, chal_v))
    champ = holdout_rmsle(spark, cfg, load_version(name, champ_v)) if champ_v is not None else None
    promote, reason = decide(chal, champ, cfg.promote.min_improvement)
    tags = {"promotion_decision": "promoted" if promote else "rejected", "promotion_reason": reason,
            "holdout_rmsle": f"{chal:.5f}"}
    if champ is not None:
        tags["champion_holdout_rmsle"] = f"{champ:.5f}"
    for k, v in tags.items():
        client.set_model_version_tag(name, str(chal_v), k, v)
    if promote:
        client.set_registered_model_alias(name, tracking.CHAMPION, str(chal_v))
    info.update({"decision": tags["promotion_decision"], "reason": reason,
                 "champion_after": chal_v if promote else champ_v})
    summary.info.update(info)
    return summary.finish()


def main(argv: list[str] | None = None) -> int:
    from pricing.cli import main as cli_main

    return cli_main(["promote", *(argv or [])])
