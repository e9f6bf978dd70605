"""The structured oracle's ridge: the exact solve equals scikit-learn's ``Ridge`` (an unpenalised intercept), and
the oracle learns a simulated additive world down to its noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.linear_model import Ridge

from pricing.price_model.oracle import ATTRIBUTES, TRUE_FLAGS, ridge_path, ridge_predict, structured_oracle


def test_the_exact_ridge_equals_scikit_learns_with_its_intercept_unpenalised() -> None:
    rng = np.random.default_rng(3)
    n = 400
    onehot = sparse.csr_matrix((np.ones(n), (np.arange(n), rng.integers(0, 25, n))), shape=(n, 25))
    X = sparse.hstack([onehot, sparse.csr_matrix(rng.normal(size=(n, 3)))]).tocsr()
    y = 2.5 + X @ rng.normal(size=28) + rng.normal(scale=0.3, size=n)
    fitted = ridge_path(X, y, (0.5, 4.0))
    for alpha, w in fitted.items():
        ref = Ridge(alpha=alpha, solver="cholesky").fit(X.toarray(), y)  # a direct solve: exact too
        np.testing.assert_allclose(w[:-1], ref.coef_, rtol=0, atol=1e-9)
        assert w[-1] == pytest.approx(ref.intercept_, abs=1e-9)
        np.testing.assert_allclose(ridge_predict(X, w), ref.predict(X.toarray()), rtol=0, atol=1e-9)
    # The penalty shrinks: a larger one gives a smaller coefficient norm.
    assert np.linalg.norm(fitted[4.0][:-1]) < np.linalg.norm(fitted[0.5][:-1])


def _world(n: int, rng: np.random.Generator, noise: float) -> pd.DataFrame:
    frame = pd.DataFrame({a: rng.integers(0, 6, n).astype(str) for a in ATTRIBUTES})
    frame["brand"] = np.where(rng.random(n) < 0.3, None, frame["brand"])  # unbranded listings: no brand effect
    for f in TRUE_FLAGS:
        frame[f] = rng.random(n) < 0.1
    frame["product_id"] = np.where(rng.random(n) < 0.5, None, rng.integers(0, 40, n).astype(str))
    frame["seller_skill"] = rng.normal(size=n)
    effects = {a: {str(v): e for v, e in enumerate(np.random.default_rng(7 + i).normal(scale=0.4, size=6))}
               for i, a in enumerate(ATTRIBUTES)}
    products = {str(v): e for v, e in enumerate(np.random.default_rng(99).normal(scale=0.3, size=40))}
    log_price = 3.0 + sum(frame[a].map(effects[a]).fillna(0.0) for a in ATTRIBUTES)
    log_price += frame["product_id"].map(products).fillna(0.0) + 0.2 * frame["seller_skill"]
    log_price += 0.5 * frame["is_rare"] - 0.4 * frame["has_stain"]
    frame["label"] = log_price + rng.normal(scale=noise, size=n)
    return frame


def test_the_oracle_learns_an_additive_world_down_to_its_noise() -> None:
    rng = np.random.default_rng(11)
    train, valid, test = _world(4000, rng, 0.2), _world(500, rng, 0.2), _world(500, rng, 0.2)
    rmsle = structured_oracle(train, valid, test)
    assert rmsle is not None
    assert 0.18 < rmsle < 0.23  # the noise's 0.2; a model missing the effects is far off
    flat = float(np.sqrt(np.mean((test["label"] - train["label"].mean()) ** 2)))
    assert flat > 0.5
    assert structured_oracle(train.head(49), valid, test) is None  # too few rows to fit
