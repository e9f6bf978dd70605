"""The demand model's parts: the price response and its elasticity, the choice of price, and a real fitted model
(xgboost.spark classifier + the distributed elasticity fit) on a confounded world with randomised price nudges:
its sale probability never rises with price, and the nudges recover the elasticity that the naive slope misses."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from pyspark.sql import functions as F

from pricing.demand_model.estimator import (
    ALL,
    DemandPredictor,
    choose,
    cloglog_slope,
    cumulative_hazard,
    expected_correlation,
    fit_control_function,
    fit_frailty,
    fit_theta,
    frailty_mean,
    price_response,
    survival_update,
)
from pricing.demand_model.training import (
    TAKE_UP_PSEUDO_ROWS,
    Exploration,
    demand_split,
    estimate_elasticities,
    experiment_rows,
    fit_classifier,
    newton_on_rows,
    realisation_curve,
    vectors,
    with_demand_inputs,
    with_selection_offset,
    with_take_up,
)
from pricing.platform.errors import ConfigError, ModelGateError


def test_price_response_falls_with_price_and_its_elasticity_is_theta() -> None:
    p0 = np.array([[0.05], [0.4], [0.7]])
    theta = np.array([[1.5], [3.0], [4.5]])
    change = np.linspace(-0.5, 0.5, 21)[None, :]
    p = price_response(p0, theta, change)
    assert np.all(np.diff(p, axis=1) < 0)
    np.testing.assert_allclose(p[:, 10], p0[:, 0], rtol=1e-12)
    # The cumulative hazard scales as (p / own) ** -theta: its log-log slope is theta exactly.
    np.testing.assert_allclose(cloglog_slope(np.tile(change, (3, 1)), p), theta[:, 0], rtol=1e-9)
    # A price 10% higher multiplies the cumulative hazard by 1.1 ** -theta.
    np.testing.assert_allclose(cumulative_hazard(price_response(p0, theta, np.log(1.1))),
                               cumulative_hazard(p0) * 1.1 ** -theta, rtol=1e-9)


def test_the_frailty_response_is_the_mixture_of_items_each_moving_by_theta() -> None:
    p0, theta, k = np.array([0.2, 0.5, 0.8]), 3.0, 2.5
    z = np.linspace(1e-6, 30, 200_001)
    dens = z ** (k - 1) * np.exp(-k * z)
    lam = frailty_mean(p0, k)
    for change in (-0.3, 0.0, 0.2):
        # Each item's cumulative hazard Z L scales by exp(-theta change); the mixture over Z ~ gamma(k, mean 1).
        want = 1 - (np.exp(-np.outer(lam * np.exp(-theta * change), z)) * dens).sum(axis=1) / dens.sum()
        np.testing.assert_allclose(price_response(p0, theta, change, k), want, rtol=1e-6)
    # Flatter than one item's curve: the same price change moves the mixture less.
    assert np.all(np.abs(price_response(p0, theta, 0.2, k) - p0) < np.abs(price_response(p0, theta, 0.2) - p0))


def test_the_frailty_likelihood_recovers_the_per_item_elasticity_the_proportional_one_attenuates() -> None:
    rng = np.random.default_rng(1)
    n, theta, k = 60_000, 3.5, 2.0
    p0 = rng.uniform(0.2, 0.7, n)                       # the mixture's probability at the own price (known)
    z = rng.gamma(k, 1.0 / k, n)                        # each item's hidden frailty
    delta = rng.uniform(-0.3, 0.3, n)
    y = (rng.uniform(size=n) < -np.expm1(-z * frailty_mean(p0, k) * np.exp(-theta * delta))).astype(float)
    offset = np.log(cumulative_hazard(p0))
    mixed, info = fit_theta(delta, offset, y, k=k)
    assert abs(mixed - theta) < 4 / np.sqrt(info)
    proportional, _ = fit_theta(delta, offset, y)
    assert proportional < theta - 0.3


def test_an_encouragement_design_recovers_the_elasticity_that_adopters_as_treated_miss(spark) -> None:
    rng = np.random.default_rng(0)
    n, theta, k = 80_000, 3.5, 2.0
    p0 = rng.uniform(0.2, 0.7, n)
    z = rng.gamma(k, 1.0 / k, n)                        # each item's hidden frailty: its seller knows it
    offered = rng.uniform(-0.3, 0.3, n)                 # the randomised suggestion
    known = (np.log(z) - np.log(z).mean()) / np.log(z).std()
    # Sellers of weak items take cuts, of strong ones raises; each seller has a taste of their own besides.
    adopted = rng.uniform(size=n) < 1 / (1 + np.exp(-(rng.normal(0, 1, n) + np.sign(offered) * known)))
    delta = np.where(adopted, offered, 0.0)
    y = (rng.uniform(size=n) < -np.expm1(-z * frailty_mean(p0, k) * np.exp(-theta * delta))).astype(float)
    offset = np.log(cumulative_hazard(p0))
    take_up = np.where(offered > 0, adopted[offered > 0].mean(), adopted[offered <= 0].mean())
    itt, info = fit_theta(offered, offset, y, k=k, take_up=take_up)
    assert abs(itt - theta) < 4 / np.sqrt(info)         # measured 3.58 +- 0.08
    as_treated, _ = fit_theta(delta, offset, y, k=k)
    assert as_treated < theta - 1.0                     # measured 2.12: adopters are not like the rest
    # The control function estimates how different the adopters are: cut-takers sell worse, raise-takers better.
    cf, cut, raise_ = fit_control_function(delta, offered, offset, y, take_up, k)
    assert abs(cf - theta) < 0.2 and cut < -0.2 and raise_ > 0.2  # measured 3.49, -0.56, +0.51
    # Always taken is the plain likelihood.
    plain = fit_theta(delta[:5_000], offset[:5_000], y[:5_000], k=k)
    assert fit_theta(delta[:5_000], offset[:5_000], y[:5_000], k=k, take_up=np.ones(5_000)) == pytest.approx(plain)
    # The per-segment Fisher scoring of a table's rows, with take-up, equals the one-segment in-memory one.
    rows = pd.DataFrame({"suggestion": offered[:5_000], "offset": offset[:5_000], "label": y[:5_000],
                         "take_up": take_up[:5_000]})
    pdf = experiment_rows(spark.createDataFrame(rows), F.lit(ALL), delta="suggestion", take_up="take_up")
    dist, _, counts = newton_on_rows(pdf, {ALL: 1.0}, None, k=k)
    local, _ = fit_theta(offered[:5_000], offset[:5_000], y[:5_000], k=k, take_up=take_up[:5_000])
    assert dist[ALL] == pytest.approx(local, abs=1e-5) and counts[ALL] == 5_000


def test_choose_by_revenue_or_sell_through_on_hand_written_curves() -> None:
    prices = np.array([[10.0, 12.0, 14.0, 16.0], [10.0, 12.0, 14.0, 16.0]])
    p_sale = np.array([[0.9, 0.8, 0.7, 0.5],      # revenue 9.0, 9.6, 9.8, 8.0 -> 14
                       [0.9, 0.9, 0.5, 0.2]])     # revenue 9.0, 10.8, 7.0, 3.2 -> 12
    assert choose(prices, p_sale, "revenue").tolist() == [2, 1]
    # sell_through keeps >= 90% of the best revenue (8.82, 9.72) and takes the likeliest sale: 10 (9.0 >= 8.82);
    # in row 2 only 12 qualifies (10 earns 9.0 < 9.72).
    assert choose(prices, p_sale, "sell_through", 0.9).tolist() == [0, 1]
    # Equally likely prices: the one earning more.
    flat = np.array([[0.8, 0.8, 0.8, 0.1]])
    assert choose(prices[:1], flat, "sell_through", 0.5).tolist() == [2]
    with pytest.raises(ValueError, match="unknown objective"):
        choose(prices, p_sale, "profit")


def test_fit_theta_finds_the_maximum_likelihood_elasticity() -> None:
    rng = np.random.default_rng(0)
    n, theta = 40_000, 2.5
    offset = rng.normal(-0.5, 0.8, n)
    delta = rng.uniform(-0.3, 0.3, n)
    y = (rng.uniform(size=n) < -np.expm1(-np.exp(offset - theta * delta))).astype(float)
    est, info = fit_theta(delta, offset, y)
    assert abs(est - theta) < 4 / np.sqrt(info)
    # A prior pulls the estimate toward its mean, more when it is tighter.
    loose, _ = fit_theta(delta[:500], offset[:500], y[:500], prior_mean=0.0, prior_sd=10.0)
    tight, _ = fit_theta(delta[:500], offset[:500], y[:500], prior_mean=0.0, prior_sd=0.1)
    assert 0 <= tight < loose


def _segments(rng: np.random.Generator, n_segments: int, rows: tuple[int, int]) -> pd.DataFrame:
    """Nudged listings of ``n_segments`` segments, each with a true elasticity U(2, 5) (sd 0.866) and between
    ``rows[0]`` and ``rows[1]`` rows."""
    theta = rng.uniform(2.0, 5.0, n_segments)
    seg = np.repeat(np.arange(n_segments), rng.integers(rows[0], rows[1] + 1, n_segments))
    offset = rng.normal(-0.5, 0.8, len(seg))
    delta = rng.uniform(-0.3, 0.3, len(seg))
    y = (rng.uniform(size=len(seg)) < -np.expm1(-np.exp(offset - theta[seg] * delta))).astype(float)
    return pd.DataFrame({"segment": [f"s{i:03d}" for i in seg], "price_nudge": delta, "offset": offset, "label": y,
                         "truth": theta[seg]})


def test_the_expected_correlation_is_what_shrunk_estimates_reach_against_the_truth() -> None:
    rng = np.random.default_rng(3)
    df = _segments(rng, 300, (30, 400))
    fits = [fit_theta(g["price_nudge"].to_numpy(), g["offset"].to_numpy(), g["label"].to_numpy(), 3.5, 5.0)
            for _, g in df.groupby("segment")]
    est = np.array([f[0] for f in fits])
    info = np.array([f[1] for f in fits]) - 5.0**-2
    truth = df.groupby("segment")["truth"].first().to_numpy()
    tau = truth.std()
    shrunk = est.mean() + tau**2 / (tau**2 + 1 / info) * (est - est.mean())
    expected = expected_correlation(tau, info)
    assert 0.6 < expected < 0.9
    assert np.corrcoef(shrunk, truth)[0, 1] == pytest.approx(expected, abs=0.05)
    # Four times the rows per segment: a higher ceiling; no spread between segments: nothing to rank.
    assert expected_correlation(tau, info * 4) > expected + 0.08
    assert expected_correlation(0.0, info) == 0.0


def test_the_elasticity_table_carries_the_correlation_its_noise_allows(spark) -> None:
    df = _segments(np.random.default_rng(4), 12, (100, 400))
    elasticity, table_ = estimate_elasticities(spark.createDataFrame(df.drop(columns="truth")), 0.5)
    overall, _ = fit_theta(df["price_nudge"].to_numpy(), df["offset"].to_numpy(), df["label"].to_numpy())
    assert table_.attrs["overall"] == pytest.approx(overall, abs=1e-5)
    info = []
    for s, g in df.groupby("segment"):
        theta, i = fit_theta(g["price_nudge"].to_numpy(), g["offset"].to_numpy(), g["label"].to_numpy(), overall, 0.5)
        assert elasticity[s] == pytest.approx(max(theta, 0.0), abs=1e-4), s
        info.append(i - 0.5**-2)
    assert table_.attrs["expected_corr"] == pytest.approx(expected_correlation(0.5, np.array(info)), rel=1e-4)


def test_survival_update_is_the_gamma_posterior_of_an_unsold_item() -> None:
    p0, k = np.array([0.2, 0.5, 0.8]), 2.5
    np.testing.assert_allclose(survival_update(p0, np.zeros(3), k), p0, rtol=1e-12)
    np.testing.assert_allclose(survival_update(p0, np.full(3, 2.0), None), p0)
    # By integration over the frailty Z ~ gamma(k, mean 1), weighted by the chance of staying unsold:
    # P = 1 - E[exp(-L Z) exp(-L Z e)] / E[exp(-L Z e)].
    z = np.linspace(1e-6, 30, 200_001)
    dens = z ** (k - 1) * np.exp(-k * z)
    lam = frailty_mean(p0, k)
    for e in (0.5, 2.0):
        got = survival_update(p0, np.full(3, e), k)
        unsold = np.exp(-np.outer(lam, z) * e) * dens
        want = 1 - (np.exp(-np.outer(lam, z)) * unsold).sum(axis=1) / unsold.sum(axis=1)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert np.all(got < p0)
    assert np.all(survival_update(p0, np.full(3, 3.0), k) < survival_update(p0, np.full(3, 1.0), k))


def test_fit_frailty_recovers_the_heterogeneity_and_the_hazard_shape() -> None:
    rng = np.random.default_rng(0)
    n, k = 30_000, 3.0
    p_h = rng.uniform(0.1, 0.9, n)
    # Cumulative hazard shape: 1 per day to day 20, 2 per day to day 60, nothing after; g(30) = 1.
    knots = np.array([0, 7, 14, 21, 28, 35, 42, 50, 60, 75, 90, 120], dtype=float)
    shape = np.interp(knots, [0, 20, 60, 120], [0, 20, 100, 100]) / 40.0
    target = rng.exponential(size=n) / (frailty_mean(p_h, k) * rng.gamma(k, 1 / k, n))
    day = np.interp(target, shape, knots)
    day = np.where(target >= shape[-1], np.nan, day)
    censor = rng.uniform(30, 200, n)
    est_k, est_g = fit_frailty(p_h, np.where(day < censor, day, np.nan), censor, 30, knots)
    assert est_k == pytest.approx(k, rel=0.25)
    np.testing.assert_allclose(est_g, shape, atol=0.06)


def _world(n: int, rng: np.random.Generator, nudge_share: float) -> pd.DataFrame:
    """Sellers see a hidden quality q the features miss and ask more for better items (confounding); the
    marketplace nudges a random share of prices.  Sale within the horizon: 1 - exp(-Lambda), with
    Lambda = 0.8 * exp(-3 * (log price - log value - q))."""
    v = rng.normal(3.0, 0.6, n)
    q = rng.normal(0.0, 0.3, n)
    own = np.exp(v + q + 0.1 + 0.2 * rng.normal(size=n))
    nudge = np.where(rng.uniform(size=n) < nudge_share, rng.uniform(-0.3, 0.3, n), 0.0)
    lam = 0.8 * np.exp(-3.0 * (np.log(own) + nudge - v - q))
    sold = rng.uniform(size=n) < -np.expm1(-lam)
    return pd.DataFrame({"listing_id": np.arange(n), "v": v, "own_price": own, "price_nudge": nudge,
                         "label": sold.astype(float), "segment": np.where(v > 3.0, "a", "b")})


@pytest.fixture(scope="module")
def fitted(spark, cfg):
    rng = np.random.default_rng(7)
    world = _world(6_000, rng, 0.35)
    # The value model: a real booster that learns log1p(value) from the one feature.
    value = xgb.train({"max_depth": 4, "eta": 0.3, "nthread": 1}, xgb.DMatrix(world[["v"]], np.log1p(np.exp(world["v"]))),
                      60)
    world["value_fold"] = 0
    probe = DemandPredictor(("v",), value, (value, value), {ALL: 0.0}, 30)
    world["log_value"] = probe.log_value(probe.matrix(world), world["value_fold"].to_numpy())
    world["log_price_to_value"] = np.log(world["own_price"]) - world["log_value"]
    control = spark.createDataFrame(world[world["price_nudge"] == 0]).withColumn(
        "is_valid", F.col("listing_id") % 5 == 0)
    small = cfg.with_overrides(["demand.booster.n_estimators=60", "demand.booster.max_depth=3"])
    clf = fit_classifier(spark, small, vectors(control, ["v", "log_value", "log_price_to_value"], "label"), 3)
    return world, DemandPredictor(("v",), clf, (value, value), {ALL: 0.0}, 30)


def test_a_fitted_classifier_never_raises_the_sale_probability_with_price(fitted) -> None:
    world, model = fitted
    rows = world.sample(500, random_state=1)
    prices = rows["own_price"].to_numpy()[:, None] * np.exp(np.linspace(-1.0, 1.0, 41))[None, :]
    served, naive = DemandPredictor(("v",), model.classifier, model.value_models, {ALL: 2.0, "a": 3.0}, 30).curves(
        rows, prices)
    assert np.all(np.diff(naive, axis=1) <= 1e-9)   # the monotone constraint on log(price / value)
    assert np.all(np.diff(served, axis=1) <= 1e-9)
    assert np.any(np.diff(naive, axis=1) < -1e-3)  # and the price does move it


def test_randomised_nudges_recover_the_elasticity_the_naive_slope_misses(spark, fitted) -> None:
    world, model = fitted
    nudged = world[world["price_nudge"] != 0].copy()
    p0 = model.classify(model.matrix(nudged), nudged["log_value"].to_numpy(), np.log(nudged["own_price"].to_numpy()))
    nudged["offset"] = np.log(cumulative_hazard(p0))
    theta, info, counts = newton_on_rows(experiment_rows(spark.createDataFrame(nudged), F.lit(ALL)), {ALL: 1.0}, None)
    # The per-segment Fisher scoring of a table's rows equals the one-segment in-memory one.
    local, _ = fit_theta(nudged["price_nudge"].to_numpy(), nudged["offset"].to_numpy(), nudged["label"].to_numpy())
    assert theta[ALL] == pytest.approx(local, abs=1e-5)
    assert counts[ALL] == len(nudged)
    band = np.linspace(-0.2, 0.2, 5)
    rows = world[world["price_nudge"] == 0].sample(2_000, random_state=2)
    naive = cloglog_slope(np.tile(band, (len(rows), 1)), model.curves(
        rows, rows["own_price"].to_numpy()[:, None] * np.exp(band)[None, :])[1]).mean()
    # Truth: 3.  Quality the features miss flattens the observational slope far more than the residual
    # heterogeneity flattens the randomised estimate.
    assert 2.4 < theta[ALL] < 3.6, theta
    assert naive < 1.8, naive
    assert theta[ALL] - 2 / np.sqrt(info[ALL]) > naive


def test_predictor_refuses_a_rising_demand_curve() -> None:
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(np.zeros((4, 1)), np.zeros(4)), 1)
    with pytest.raises(ValueError, match="elasticities must be finite and >= 0"):
        DemandPredictor(("v",), booster, (booster, booster), {ALL: 1.0, "x": -0.5}, 30)
    with pytest.raises(ValueError, match="overall entry"):
        DemandPredictor(("v",), booster, (booster, booster), {"x": 1.0}, 30)


def test_the_realisation_of_later_sales_by_hand(spark) -> None:
    """Mean sold / listed price per knot interval of days from listing to sale; unsold rows are ignored and an
    interval with too few sales takes the previous one's value."""
    from datetime import datetime, timedelta

    t0 = datetime(2026, 1, 1)
    rows = [  # (listing_id, sold after days, sold price, asking price)
        (1, 2.0, 9.0, 10.0), (2, 13.9, 10.0, 10.0),     # [0, 14): 0.9, 1.0 -> 0.95
        (3, 14.0, 8.0, 10.0), (4, 20.0, 16.0, 20.0),    # [14, 28): 0.8, 0.8 -> 0.8
        (5, 30.0, 7.0, 10.0),                           # [28, 60): one sale, too few -> 0.8
        (6, None, None, 10.0),                          # unsold
    ]
    df = spark.createDataFrame(
        [(i, t0, t0 + timedelta(days=d) if d is not None else None, sp, ap) for i, d, sp, ap in rows],
        "listing_id long, as_of timestamp, sold_at timestamp, sold_price double, asking_price double")
    got = realisation_curve(df, (0.0, 14.0, 28.0, 60.0, 90.0), fallback=0.93, min_sales=2)
    assert got == pytest.approx((0.95, 0.8, 0.8, 0.8))
    # No interval with enough sales: the fallback throughout.
    assert realisation_curve(df, (0.0, 14.0, 28.0), fallback=0.93, min_sales=5) == pytest.approx((0.93, 0.93))


def test_person_period_rows_and_the_sale_probability_by_hand() -> None:
    from pricing.demand_model.hazard import interval_bounds, p_sold_within, person_period

    assert interval_bounds(30, 7).tolist() == [0, 7, 14, 21, 28, 30]
    # Listing 0 sold on day 9; 1 never sold, watched 40 days; 2 watched 10 days, unsold (its second week only
    # partly seen: left out); 3 sold on day 20 but watched only 15 days (the sale is not seen yet); 4 sold on day 29.
    idx, interval, label = person_period(np.array([9.0, np.nan, np.nan, 20.0, 29.0]),
                                         np.array([60.0, 40.0, 10.0, 15.0, 60.0]), 30, 7)
    got = sorted(zip(idx.tolist(), interval.tolist(), label.tolist(), strict=True))
    assert got == [(0, 0, 0.0), (0, 1, 1.0),
                   (1, 0, 0.0), (1, 1, 0.0), (1, 2, 0.0), (1, 3, 0.0), (1, 4, 0.0),
                   (2, 0, 0.0),
                   (3, 0, 0.0), (3, 1, 0.0),
                   (4, 0, 0.0), (4, 1, 0.0), (4, 2, 0.0), (4, 3, 0.0), (4, 4, 1.0)]
    np.testing.assert_allclose(p_sold_within(np.array([[0.1, 0.2], [0.0, 0.0]])), [1 - 0.9 * 0.8, 0.0])


def test_take_up_by_segment_and_direction_by_hand(spark) -> None:
    rows = spark.createDataFrame(
        [("a", 0.1, 0.1), ("a", 0.2, 0.0), ("a", -0.1, -0.1), ("b", 0.3, 0.0), ("b", -0.2, 0.0), ("b", -0.3, -0.3)],
        "segment string, suggestion double, price_nudge double")
    taken = with_take_up(rows)
    got = {(r.segment, r.suggestion): r.take_up for r in taken.collect()}
    # Raises: 1 of 3 taken overall, cuts 2 of 3; each segment's share shrunk toward them by 50 rows.
    up, down, m = 1 / 3, 2 / 3, TAKE_UP_PSEUDO_ROWS
    assert got == pytest.approx({("a", 0.1): (1 + m * up) / (2 + m), ("a", 0.2): (1 + m * up) / (2 + m),
                                 ("a", -0.1): (1 + m * down) / (1 + m), ("b", 0.3): (m * up) / (1 + m),
                                 ("b", -0.2): (1 + m * down) / (2 + m), ("b", -0.3): (1 + m * down) / (2 + m)})
    # The control function's offset: each item's hazard times exp(shift * (adopted - take_up)), through the
    # frailty mixture exactly as fit_control_function moves P0.
    shifts, k = (-0.4, 0.3), 2.5
    moved = with_selection_offset(taken.withColumn("offset", F.lit(-0.5)), shifts, k).orderBy("segment", "suggestion")
    for r in moved.collect():
        shift = (shifts[0] if r.suggestion < 0 else shifts[1]) * (float(r.price_nudge != 0) - r.take_up)
        want = price_response(-np.expm1(-np.exp(-0.5)), 1.0, -shift, k)
        assert r.offset == pytest.approx(np.log(cumulative_hazard(want)), abs=1e-12)


def test_encouragement_inputs_take_the_nudge_from_the_log(spark, tmp_path) -> None:
    design = Exploration(42, 1.0, 0.3, "encouragement", str(tmp_path / "log"))
    listings = spark.createDataFrame([(1, 100.0, "x"), (2, 50.0, "y"), (3, 20.0, "x")],
                                     "listing_id long, asking_price double, leaf string")
    with pytest.raises(ConfigError, match="encouragement experiment's log"):
        listings.transform(with_demand_inputs(design, ("leaf",)))
    # Listing 1 took its suggestion, listing 2 did not, listing 3 is missing from the log (not taken).
    spark.createDataFrame([(1, True), (2, False)], "listing_id long, adopted boolean").write.parquet(design.log)
    got = listings.transform(with_demand_inputs(design, ("leaf",))).orderBy("listing_id").toPandas()
    offered = got["suggestion"].to_numpy()
    assert np.all(offered != 0) and np.all(np.abs(offered) <= 0.3)
    np.testing.assert_allclose(got["price_nudge"], [offered[0], 0.0, 0.0])
    np.testing.assert_allclose(got["own_price"], [100.0 * np.exp(-offered[0]), 50.0, 20.0])
    assert got["segment"].tolist() == ["x", "y", "x"]
    # Under the nudge design every offered move is in the price.
    nudged = listings.transform(with_demand_inputs(Exploration(42, 1.0, 0.3), ("leaf",))).orderBy("listing_id")
    np.testing.assert_allclose(nudged.toPandas()["price_nudge"], offered)


def test_the_demand_split_cuts_labelled_rows_by_listing_time_and_refuses_an_empty_part(spark, cfg) -> None:
    # H = 2 days, test 3 days, validation 3 days; "now" is the latest listing (day 20): cutoff day 18, test from
    # day 15, validation from day 12.  A row without an asking price is no row.
    c = cfg.with_overrides(["features.sold_within_days=2", "demand.test_days=3", "demand.validation_days=3"])
    start = datetime(2025, 1, 1)

    def frame(days: list[tuple[float, float]]):  # type: ignore[no-untyped-def]
        rows = [(i, start + timedelta(days=d), price, None, None, 0, 0.0, 0.0, price, "a", True)
                for i, (d, price) in enumerate(days)]
        return spark.createDataFrame(rows, "listing_id long, as_of timestamp, asking_price double, sold_price double, "
                                           "sold_at timestamp, value_fold int, suggestion double, price_nudge double, "
                                           "own_price double, segment string, sold_within_days boolean")

    days = [(0, 10.0), (11, 10.0), (11.9, 0.0), (12, 10.0), (14, 10.0), (15, 10.0), (18, 10.0), (19, 10.0), (20, 10.0)]
    split = demand_split(frame(days), c, (), "t")  # type: ignore[arg-type]
    assert split.rows == {"train": 2, "valid": 2, "test": 2}
    assert (split.last, split.cutoff) == (start + timedelta(days=20), start + timedelta(days=18))
    assert (split.valid_start, split.test_start) == (start + timedelta(days=12), start + timedelta(days=15))
    assert sorted(r.listing_id for r in split.labelled.collect()) == [0, 1, 3, 4, 5, 6]
    with pytest.raises(ModelGateError, match=r"empty demand split \{'train': 2, 'valid': 0, 'test': 2\}"):
        demand_split(frame([d for d in days if not 12 <= d[0] < 15]), c, (), "t")  # type: ignore[arg-type]
