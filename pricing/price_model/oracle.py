"""The structured oracle: a second, attainable reference beside the noise floor (evaluation only).

The noise floor knows every brand and product effect exactly; no model trained on finite data can.  The
structured oracle knows the simulator's *functional form* instead (log price = additive effects of the
subcategory, brand, condition, material and style, the text signals, the product, and a seller markup linear in
skill, plus noise) and learns every effect from the **same training rows** as the model: a ridge regression on
one-hot attributes, the true text flags and product ids, and the seller's skill, its penalty chosen on the
validation window.  Ridge on one-hot groups is the random-effects (mixed-model) estimate with one shared
variance ratio: rare brands and products are shrunk toward zero, as a model learning them from sales must.

It reads the simulator's truth (``truth.listings``: text flags, product ids, seller skill), so only evaluation
calls it, and only where that truth exists.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from pricing.price_model.metrics import rmsle

ATTRIBUTES = ("subcategory", "brand", "condition", "material", "style")
"""Observable attributes whose effects the simulator adds on the log scale (each one-hot)."""
TRUE_FLAGS = ("is_deadstock", "is_rare", "has_stain", "is_bundle")
"""The true text signals (the listing's text states them noisily; the oracle knows them)."""
ALPHAS = (0.3, 1.0, 3.0, 10.0)
"""Ridge penalties tried; the validation window picks one."""


def oracle_frame(rows: DataFrame, truth: DataFrame) -> pd.DataFrame:
    """``rows`` (``listing_id, label`` and :data:`ATTRIBUTES`) joined to their truth, on the driver."""
    cols = ["listing_id", *TRUE_FLAGS, "product_id", "seller_skill"]
    return rows.select("listing_id", "label", *ATTRIBUTES).join(truth.select(*cols), "listing_id").toPandas()


def _design(frame: pd.DataFrame, vocab: dict[str, dict[str, int]] | None = None
            ) -> tuple[object, dict[str, dict[str, int]]]:
    """Sparse design matrix: one-hot attributes and product (levels seen in training; unseen ones all zero),
    the true flags and seller skill.  ``vocab`` None: learnt from ``frame``."""
    from scipy import sparse

    groups = (*ATTRIBUTES, "product_id")
    if vocab is None:
        vocab = {g: {v: i for i, v in enumerate(sorted(frame[g].dropna().astype(str).unique()))} for g in groups}
    n = len(frame)
    blocks = []
    for g in groups:
        idx = frame[g].astype(str).map(vocab[g])
        hit = idx.notna().to_numpy()
        blocks.append(sparse.csr_matrix((np.ones(hit.sum()), (np.flatnonzero(hit), idx[hit].astype(int))),
                                        shape=(n, max(1, len(vocab[g])))))
    dense = frame[[*TRUE_FLAGS, "seller_skill"]].astype(float).fillna(0.0).to_numpy()
    return sparse.hstack([*blocks, sparse.csr_matrix(dense)]).tocsr(), vocab


def structured_oracle(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> float | None:
    """Test RMSLE (log1p scale) of the ridge oracle fitted on ``train``, its penalty chosen on ``valid``; frames
    from :func:`oracle_frame`.  None when there are too few rows to fit."""
    from sklearn.linear_model import Ridge

    if len(train) < 50 or not len(valid) or not len(test):
        return None
    X, vocab = _design(train)
    Xv, Xt = _design(valid, vocab)[0], _design(test, vocab)[0]
    y = train["label"].to_numpy()
    fitted = {a: Ridge(alpha=a).fit(X, y) for a in ALPHAS}
    best = min(ALPHAS, key=lambda a: rmsle(valid["label"].to_numpy(), fitted[a].predict(Xv)))
    return rmsle(test["label"].to_numpy(), fitted[best].predict(Xt))
