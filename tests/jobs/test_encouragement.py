"""The encouragement design on the real stack: a world where the marketplace only *suggests* prices and sellers
choose (``simulator.exploration: encouragement``), exported with its adoption log, ingested, featurised, and the
demand job fitted on it.  The control function recovers the elasticity; comparing adopters with the rest (as
treated) is biased toward zero, because sellers take cuts on items worse than they look."""

from __future__ import annotations

import pytest

from jobs import demand, features, generate, ingest
from pricing.platform.config import Config
from pricing.sources.exploration import SUGGESTION_LOG

pytestmark = pytest.mark.slow  # generate -> ingest -> features -> demand on a small world

WORLD = ["simulator.exploration=encouragement", "simulator.price_nudge_share=0.5", "features.comparables=false"]


@pytest.fixture(scope="module")
def fitted(spark, cfg: Config, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    c = cfg.with_overrides([*WORLD, f"storage.root={tmp_path_factory.mktemp('encouragement-state')}"])
    generate.run(spark, c)
    ingest.run(spark, c)
    features.run(spark, c)
    return c, demand.run(spark, c)


def test_the_export_carries_the_adoption_log(spark, fitted) -> None:  # type: ignore[no-untyped-def]
    c, _ = fitted
    log = spark.read.parquet(str(c.landing_dir / SUGGESTION_LOG))
    n, adopted = log.count(), log.where("adopted").count()
    assert 0.4 * c.simulator.n_listings < n < 0.6 * c.simulator.n_listings
    assert 0.4 < adopted / n < 0.6


def test_the_control_function_recovers_the_elasticity_adopters_as_treated_miss(fitted) -> None:  # type: ignore[no-untyped-def]
    _, summary = fitted
    e, truth = summary.info["elasticity"], summary.info["elasticity_vs_truth"]
    assert 0.4 < e["take_up"] < 0.6
    # Cut-takers sell worse than the offset says, raise-takers better.
    assert e["selection_cut"] < 0 < e["selection_raise"], e
    bias = {k: truth[f"{k}_mean"] / truth["true_mean"] - 1
            for k in ("exploration", "intent_to_treat", "as_treated", "naive")}
    # Measured on this world (seed 42), see the closing note: intent to treat -12 %, adopters as treated -26 %,
    # naive -78 %.  The served control function (demand.encouragement) is the noisier of the two IV estimates
    # on this small a world (-22 %; -5.5 % at 200k listings): its accuracy is pinned on synthetic data in
    # tests/test_demand_model.py, here only that it is an estimate at all.
    assert abs(bias["intent_to_treat"]) < 0.2, bias
    assert bias["as_treated"] < bias["intent_to_treat"] - 0.08, bias
    assert abs(bias["exploration"]) < 0.35, bias
    assert bias["naive"] < -0.5, bias
