"""Seller objectives: their names, the config that picks them, and the demand model's value of a price under each
(worked out by hand from the survival layer's closed form)."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from pricing.demand_model.estimator import ALL, DemandPredictor
from pricing.platform.config import RecommendConfig
from pricing.platform.objective import Objective


def test_objective_names_parse_with_and_without_a_horizon() -> None:
    assert Objective.parse("revenue") == Objective("revenue", None, 0.0)
    assert Objective.parse("continuation_60d", discount=0.8) == Objective("continuation", 60, 0.8)
    # The discount belongs to continuation only.
    assert Objective.parse("revenue_30d", discount=0.8) == Objective("revenue", 30, 0.0)
    assert Objective.parse("continuation").at(30).name == "continuation_30d"
    assert Objective.parse("revenue_45d").at(30).horizon_days == 45
    assert Objective("continuation", 30, 0.5).after_horizon == 0.5
    assert Objective("revenue", 30).after_horizon == 0.0
    for bad in ("profit", "revenue_30", "continuation_0d", "revenue_d"):
        with pytest.raises(ValueError):
            Objective.parse(bad)
    with pytest.raises(ValueError, match="discount"):
        Objective("continuation", 30, 1.5)


def test_the_config_checks_objectives_before_anything_runs() -> None:
    r = RecommendConfig()
    assert r.objective == "continuation" and r.continuation_discount == 0.9
    assert r.objective_spec() == Objective("continuation", None, 0.9)
    assert RecommendConfig(objective="revenue", horizon_days=60).objective_spec() == Objective("revenue", 60)
    assert [o.name for o in r.judged_specs()] == ["revenue", "continuation", "continuation_60d"]
    assert r.judged_specs()[1].discount == 0.9
    with pytest.raises(ValueError, match="should read"):
        RecommendConfig(objective="profit")
    with pytest.raises(ValueError, match="only revenue and continuation"):
        RecommendConfig(evaluate_objectives=("sell_through",))
    with pytest.raises(ValueError, match="repeats"):
        RecommendConfig(evaluate_objectives=("revenue", "revenue"))


def _survival_model(k: float | None) -> DemandPredictor:
    """A predictor whose survival layer is hand-set: hazard shape g = 0, 1, 1.5 at days 0, 30, 60 (flat after),
    realisation 0.95 before day 30 and 0.85 after; horizon 30 days."""
    stub = xgb.train({"nthread": 1}, xgb.DMatrix(np.zeros((2, 1)), np.zeros(2)), 1)
    return DemandPredictor(("v",), stub, (stub, stub), {ALL: 2.0}, 30, 0.95, frailty_k=k,
                           exposure_knots=(0.0, 30.0, 60.0), exposure_values=(0.0, 1.0, 1.5),
                           realisation_values=(0.95, 0.85))


@pytest.mark.parametrize("k", [2.0, None])
def test_sale_value_by_hand_from_the_survival_layer(k: float | None) -> None:
    model = _survival_model(k)
    prices = np.array([[10.0, 20.0], [40.0, 8.0]])
    p30 = np.array([[0.5, 0.2], [0.1, 0.7]])
    if k is None:
        lam = -np.log1p(-p30)
        surv = lambda g: np.exp(-lam * g)                    # noqa: E731
    else:
        lam = k * ((1 - p30) ** (-1 / k) - 1)                 # (1 + L / k) ** -k = 1 - p30
        surv = lambda g: (1 + lam * g / k) ** -k              # noqa: E731
    s30, s45, s60 = surv(1.0), surv(1.25), surv(1.5)
    np.testing.assert_allclose(s30, 1 - p30, rtol=1e-12)
    # Revenue within the model's own horizon: price x p x realisation, as ever.
    value, sold = model.sale_value(prices, p30, 30)
    np.testing.assert_allclose(value, prices * p30 * 0.95)
    np.testing.assert_allclose(sold, p30)
    # Within 60 days: the later sales close at the lower realisation.
    value, sold = model.sale_value(prices, p30, 60)
    np.testing.assert_allclose(value, prices * (0.95 * (1 - s30) + 0.85 * (s30 - s60)), rtol=1e-12)
    np.testing.assert_allclose(sold, 1 - s60, rtol=1e-12)
    # Continuation at 30 days: the later sales count at the discount; at 45 (between knots) g interpolates.
    value, sold = model.sale_value(prices, p30, 30, after=0.5)
    np.testing.assert_allclose(value, prices * (0.95 * (1 - s30) + 0.5 * 0.85 * (s30 - s60)), rtol=1e-12)
    np.testing.assert_allclose(sold, p30, rtol=1e-12)
    value, sold = model.sale_value(prices, p30, 45, after=0.5)
    np.testing.assert_allclose(value, prices * (0.95 * (1 - s30) + 0.85 * (s30 - s45) + 0.5 * 0.85 * (s45 - s60)),
                               rtol=1e-12)
    np.testing.assert_allclose(sold, 1 - s45, rtol=1e-12)
    # Nothing sells after the last knot's shape stops rising, whatever the horizon.
    np.testing.assert_allclose(model.sale_value(prices, p30, 200)[0], model.sale_value(prices, p30, 60)[0])


def test_a_model_without_a_survival_layer_values_only_its_own_horizon() -> None:
    model = _survival_model(2.0)
    bare = DemandPredictor(model.features, model.classifier, model.value_models, {ALL: 2.0}, 30, 0.95)
    prices, p = np.array([[10.0]]), np.array([[0.4]])
    np.testing.assert_allclose(bare.sale_value(prices, p, 30)[0], [[10.0 * 0.4 * 0.95]])
    with pytest.raises(ValueError, match="survival layer"):
        bare.sale_value(prices, p, 30, after=0.9)
    with pytest.raises(ValueError, match="survival layer"):
        bare.sale_value(prices, p, 60)
    # The survival layer survives a round trip (Spark broadcast, MLflow artifacts).
    again = DemandPredictor.from_bytes(model.to_bytes())
    assert again.realisation_values == (0.95, 0.85) and again.exposure_values == (0.0, 1.0, 1.5)
