"""How to give the price model the brand (and the other attributes, the text, the comparables): time-respecting
target statistics ("premiums") against the booster's native categoricals, side by side on one split.

    .venv/bin/python bench/encodings.py --set storage.root=/tmp/s200b [--set ...]

Needs a built `features.training_set` under that storage root (`pricing run` up to `features`).  Every variant is
a native `xgboost.train` median booster with the train job's parameters, on the train job's split (`time_split`):
early stopping on the validation window, which is also the column a choice is made on; the test column is
reported.  The variants start from the model's features without the brand premium.

A *premium* of a key (brand, subcategory, seller, a word of the text ...) is the statistic the training set
stores for the brand (`mkt_brand_premium`): the mean log ratio of the key's sold prices to their category x
condition's 90-day median, over its sales in the `features.brand_window_days` days strictly before the listing,
shrunk toward 0 by `features.shrinkage_k`.  Here it is recomputed in pandas for every key; for the brand the
recomputation must equal the stored column (checked: an independent implementation of the feature).
Writes bench/results/<date>-encodings-<rows>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from features.training_set import BRAND_FEATURES
from pricing.platform import catalog, delta_io
from pricing.platform.config import Config, load_config
from pricing.platform.spark import get_spark
from pricing.platform.tables import table
from pricing.price_model.training import features_of, time_split

KEYS = {"brand": ["brand"], "subcategory": ["category", "subcategory"],
        "brand x subcategory": ["brand", "category", "subcategory"], "material": ["material"], "style": ["style"],
        "colour": ["colour"], "seller": ["seller_id"]}
NATIVE = {"brand": ["brand"], "subcategory": ["subcategory"], "brand x subcategory": ["brand", "subcategory"]}
CODES = ["brand_code", "subcategory_code"]


def premium(df: pd.DataFrame, keys: list[str], k: float, window_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(premium, n) for every row of ``df`` (``as_of``, ``sold_at``, ``_ratio``: null unless sold): the ratios of
    the key's sales in ``[as_of - window, as_of)``, summed and divided by n + k (0 with no sales)."""
    key = df[keys].astype(str).agg("|".join, axis=1).to_numpy() if len(keys) > 1 else df[keys[0]].astype(str).to_numpy()
    t = df["as_of"].to_numpy("datetime64[us]").astype(np.int64)
    w = np.int64(window_days) * 86_400 * 1_000_000
    out_p, out_n = np.zeros(len(df)), np.zeros(len(df), dtype=np.int64)
    sold = df["_ratio"].notna().to_numpy()
    s_t = df["sold_at"].to_numpy("datetime64[us]").astype(np.int64)
    order = pd.Series(np.arange(len(df))).groupby(key).indices
    for idx in order.values():
        si = idx[sold[idx]]
        so = np.argsort(s_t[si], kind="stable")
        times, cum = s_t[si][so], np.concatenate([[0.0], np.cumsum(df["_ratio"].to_numpy()[si][so])])
        hi = np.searchsorted(times, t[idx], "left")
        lo = np.searchsorted(times, t[idx] - w, "left")
        n = hi - lo
        out_n[idx] = n
        out_p[idx] = np.where(n > 0, (cum[hi] - cum[lo]) / (n + k), 0.0)
    return out_p, out_n


def text_premiums(df: pd.DataFrame, k: float, window_days: int) -> pd.DataFrame:
    """Each word's premium (as :func:`premium`, the word as the key) and, per listing, their sum, mean, min and max."""
    words = df[["as_of", "sold_at", "_ratio", "text_tokens"]].assign(_row=np.arange(len(df))).explode("text_tokens")
    words = words.dropna(subset=["text_tokens"]).drop_duplicates(["_row", "text_tokens"]).reset_index(drop=True)
    words["p"], _ = premium(words, ["text_tokens"], k, window_days)
    agg = words.groupby("_row")["p"].agg(["sum", "mean", "min", "max"]).add_prefix("txt_premium_")
    return agg.reindex(np.arange(len(df))).fillna(0.0).set_index(df.index)


def fit(cfg: Config, parts: dict[str, pd.DataFrame], cols: list[str]) -> dict[str, float]:
    t = cfg.train
    params = {"tree_method": "hist", "seed": t.booster.seed, "objective": "reg:squarederror", "eval_metric": "rmse",
              "max_cat_to_onehot": 1,
              **{("eta" if k == "learning_rate" else k): v for k, v in t.booster.tree_params().items()}}

    def matrix(part: pd.DataFrame) -> xgb.DMatrix:
        X = part[cols].copy()
        for c in cols:
            if not isinstance(X[c].dtype, pd.CategoricalDtype):
                X[c] = X[c].astype(float)
        return xgb.DMatrix(X, part["label"], enable_categorical=True)

    t0 = time.perf_counter()
    booster = xgb.train(params, matrix(parts["train"]), t.booster.n_estimators,
                        evals=[(matrix(parts["valid"]), "valid")],
                        early_stopping_rounds=t.booster.early_stopping_rounds, verbose_eval=False)
    pred = booster.predict(matrix(parts["test"]), iteration_range=(0, booster.best_iteration + 1))
    test = float(np.sqrt(np.mean((pred - parts["test"]["label"].to_numpy()) ** 2)))
    return {"valid_rmsle": float(booster.best_score), "test_rmsle": test, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    cfg = load_config("local", args.overrides)
    spark = get_spark(cfg, app_name="bench-encodings")
    ts = delta_io.read(spark, table(cfg, catalog.TRAINING_SET))
    split = time_split(ts, cfg)
    ids = {name: set(part.select("listing_id").toPandas()["listing_id"])
           for name, part in (("train", split.train), ("valid", split.valid), ("test", split.test))}
    base = [f for f in features_of(cfg) if f not in BRAND_FEATURES]
    df = ts.select("listing_id", "as_of", "sold_at", "sold_price", "text_tokens",
                   *{c for cols in (*KEYS.values(), ["seller_id"]) for c in cols}, *base, *BRAND_FEATURES).toPandas()
    spark.stop()
    k, window = cfg.features.shrinkage_k, cfg.features.brand_window_days
    df["_ratio"] = np.log1p(df["sold_price"]) - np.log1p(df["mkt_cc_p50_90d"].astype(float))
    df.loc[df["sold_price"].isna() | ~(df["mkt_cc_p50_90d"] > 0), "_ratio"] = np.nan
    prem = {}
    for name, keys in KEYS.items():
        df[f"premium {name}"], df[f"n {name}"] = premium(df.fillna({c: "(none)" for c in keys}), keys, k, window)
        prem[name] = [f"premium {name}", f"n {name}"]
    gap = float(np.max(np.abs(df["premium brand"] - df["mkt_brand_premium"])))
    same_n = bool((df["n brand"] == df["mkt_brand_sales"]).all())
    assert gap < 1e-9 and same_n, f"the pandas brand premium differs from the stored column (max gap {gap}, counts {same_n})"
    txt = text_premiums(df, k, window)
    df = df.join(txt)
    for c in ("comparable_product", "comparable_near"):
        kind = c.split("_")[1]
        n = df[f"cmp_{kind}_sold"].astype(float).fillna(0)
        df[f"{c}_log_ratio"] = np.log1p(df[f"cmp_{kind}_median_price"].astype(float)) \
            - np.log1p(df["mkt_cc_p50_90d"].astype(float)) - df["mkt_brand_premium"]
        df[f"{c}_n"] = n
    train_ids = ids["train"]
    for name, cols in NATIVE.items():  # levels of the training window only; later ones are missing
        v = df[cols].fillna("(none)").astype(str).agg("|".join, axis=1)
        df[f"native {name}"] = pd.Categorical(v, categories=sorted(v[df["listing_id"].isin(train_ids)].unique()))

    def eb(kk: float) -> list[str]:
        for c in ("comparable_product", "comparable_near"):
            n = df[f"{c}_n"]
            df[f"eb {c} {kk:g}"] = np.where(n > 0, n / (n + kk) * df[f"{c}_log_ratio"].fillna(0.0), 0.0)
        return [f"eb comparable_product {kk:g}", f"eb comparable_near {kk:g}"]

    no_codes = [f for f in base if f not in CODES]
    all_prem = [c for cols in prem.values() for c in cols]
    variants: dict[str, list[str]] = {
        "nothing (the model without the brand premium)": base,
        "the brand premium (the training set's column)": base + list(BRAND_FEATURES),
        "the brand as a native categorical": base + ["native brand"],
        "brand and subcategory as native categoricals, instead of their codes":
            no_codes + ["native brand", "native subcategory"],
        "brand, subcategory and brand x subcategory as native categoricals, instead of the codes":
            no_codes + ["native brand", "native subcategory", "native brand x subcategory"],
        "the brand premium and brand and subcategory as native categoricals, instead of the codes":
            no_codes + list(BRAND_FEATURES) + ["native brand", "native subcategory"],
        **{f"the {name} premium alone": base + prem[name] for name in KEYS if name != "brand"},
        "all seven premiums": base + all_prem,
        "the text's word premiums (sum, mean, min, max)": base + list(txt.columns),
        "all seven premiums and the text's": base + all_prem + list(txt.columns),
        **{f"the brand premium and the comparables' empirical-Bayes premium, k = {kk:g}":
           base + list(BRAND_FEATURES) + eb(kk) for kk in (1.0, 3.0, 10.0)},
    }
    lab = df[df["sold_price"].notna()].assign(label=lambda d: np.log1p(d["sold_price"]))
    parts = {name: lab[lab["listing_id"].isin(s)] for name, s in ids.items()}
    results = {}
    for name, cols in variants.items():
        results[name] = fit(cfg, parts, cols)
        r = results[name]
        print(f"{name:95s} valid {r['valid_rmsle']:.4f}  test {r['test_rmsle']:.4f}", flush=True)
    rows = {name: len(p) for name, p in parts.items()}
    out = Path(__file__).parent / "results" / f"{date.today()}-encodings-{len(df)}"
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "results": results,
                                                   "brand_premium_check_max_gap": gap}, indent=2))
    lines = [f"# Encodings side by side ({len(df):,} listings; rows {rows})", "",
             "Native `xgboost.train` median boosters, the train job's parameters and split; choose on validation.",
             f"The pandas brand premium equals the training set's column (max gap {gap:.1e}).", "",
             "| inputs: the model's features without the brand premium, plus | validation RMSLE | test RMSLE |",
             "|---|---|---|",
             *[f"| {name} | {r['valid_rmsle']:.4f} | {r['test_rmsle']:.4f} |" for name, r in results.items()]]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(out.with_suffix(".md"))


if __name__ == "__main__":
    main()
