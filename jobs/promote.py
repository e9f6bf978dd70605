"""promote: champion/challenger gate.  Both models are scored on the same most-recent holdout; `champion`
moves to the challenger only if it is better overall by the configured margin and no major segment gets
worse beyond a tolerance.  The decision and its reasons are tagged on the version and printed.
"""

from __future__ import annotations

from typing import Any

from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

from pricing.platform import tracking
from pricing.platform.config import Config
from pricing.platform.errors import ModelGateError
from pricing.platform.summary import JobSummary
from pricing.price_model.promotion import decide, evaluate_on_holdout, load_version


def run(spark: SparkSession, cfg: Config) -> JobSummary:
    summary = JobSummary("promote")
    tracking.setup(cfg)
    client = MlflowClient()
    name = cfg.mlflow.model_name
    chal_v = tracking.alias_version(client, name, tracking.CHALLENGER)
    champ_v = tracking.alias_version(client, name, tracking.CHAMPION)
    info: dict[str, Any] = {"challenger": chal_v, "champion_before": champ_v}
    summary.task_values["champion_version"] = champ_v if champ_v is not None else ""
    expected = cfg.promote.challenger_version
    if expected is not None and chal_v != expected:
        sanity = client.get_model_version(name, str(expected)).tags.get("sanity", "")
        if sanity and sanity != "passed":
            # The version this workflow trained is not fit to serve: nothing to gate, the champion stays.
            client.set_model_version_tag(name, str(expected), "promotion_decision", "rejected")
            client.set_model_version_tag(name, str(expected), "promotion_reason", f"failed sanity: {sanity}"[:5000])
            info.update({"decision": "rejected", "reasons": [f"v{expected} failed its sanity checks: {sanity}"],
                         "champion_after": champ_v})
            summary.info.update(info)
            return summary.finish()
        raise ModelGateError(f"the train task registered version {expected}, but alias `challenger` points at "
                             f"{chal_v}: another run changed the registry; re-run the workflow")
    if chal_v is None:
        info["decision"] = "no challenger (the last model failed its sanity checks or none was trained)"
        summary.info.update(info)
        return summary.finish()
    if chal_v == champ_v:
        info["decision"] = f"v{chal_v} is already champion"
        summary.info.update(info)
        return summary.finish()
    chal = evaluate_on_holdout(spark, cfg, load_version(name, chal_v))
    champ = None
    if champ_v is not None:
        try:
            champ = evaluate_on_holdout(spark, cfg, load_version(name, champ_v))
        except ModelGateError as exc:
            raise ModelGateError(f"champion v{champ_v} cannot be scored on the current holdout ({exc}); "
                                 f"compare the two versions by hand and move the alias with the MLflow client") from None
    promote, reasons = decide(chal, champ, cfg.promote)
    reason = "; ".join(reasons)
    tags = {"promotion_decision": "promoted" if promote else "rejected", "promotion_reason": reason[:5000],
            "holdout_rmsle": f"{chal.rmsle:.5f}", "holdout_rows": str(chal.rows)}
    if champ is not None:
        tags.update({"champion_version_compared": str(champ_v), "champion_holdout_rmsle": f"{champ.rmsle:.5f}"})
    for k, v in tags.items():
        client.set_model_version_tag(name, str(chal_v), k, v)
    if promote:
        client.set_registered_model_alias(name, tracking.CHAMPION, str(chal_v))
    after = chal_v if promote else champ_v
    summary.task_values["champion_version"] = after if after is not None else ""
    info.update({"decision": tags["promotion_decision"], "reasons": reasons, "champion_after": after,
                 "holdout_rmsle": {"challenger": round(chal.rmsle, 5),
                                   "champion": None if champ is None else round(champ.rmsle, 5)}})
    summary.info.update(info)
    return summary.finish()
