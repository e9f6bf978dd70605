"""The feature job's aggregations in DuckDB, on Parquet copies of the same silver tables: what a user would
write instead of Spark on one machine.  Used by ``bench/run.py``; run alone with

    .venv/bin/python bench/duck_features.py PARQUET_DIR

It computes what ``features/`` computes, point-in-time correct the same way:
* listing_features: the listed row and one row per reprice while on sale; seller listings and sales strictly
  before each row; text tokens, a hashed term frequency, phrase flags and lengths;
* market_stats: per segment (global, category, brand x category, category x condition) and stamp day D, the
  sold-price p25/p50/p75, sales, listings and sell-through over [D - w, D) for w in 7, 30, 90 (exact quantiles),
  shrunk toward the parent segment;
* training_set: every listing with its listed features and its two segments' stats as of its listing time
  (ASOF JOIN), plus labels.
Output tables are written to Parquet, as the Spark job writes Delta.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from features.listing_features import STOPWORDS, TEXT_FLAGS, TEXT_HASH_DIM
from features.market_stats import NO_BRAND, QUANTILES, WINDOWS

K = 20.0


def _flags() -> str:
    return ",\n".join(f"CASE WHEN regexp_matches(t.txt, '{p}') THEN 1 ELSE 0 END AS {name}"
                       for name, p in TEXT_FLAGS.items())


def sql_listing_features() -> str:
    stop = ", ".join(f"'{w}'" for w in STOPWORDS)
    return f"""
CREATE OR REPLACE TABLE listing_features AS
WITH life AS (SELECT listing_id, created_at, sold_at, removed_at FROM listings),
changes AS (
  SELECT p.listing_id, p.event_time AS as_of, p.new_price AS asking_price,
         row_number() OVER (PARTITION BY p.listing_id ORDER BY p.event_time, p.event_id) AS n_price_changes,
         row_number() OVER (PARTITION BY p.listing_id, p.event_time ORDER BY p.event_id DESC) AS last_at_instant
  FROM price_changes p JOIN life l USING (listing_id)
  WHERE p.event_time > l.created_at AND (l.sold_at IS NULL OR p.event_time < l.sold_at)
    AND (l.removed_at IS NULL OR p.event_time < l.removed_at)),
snaps AS (
  SELECT listing_id, created_at AS as_of, 'listed' AS snapshot, list_price AS asking_price, 0 AS n_price_changes
  FROM listings
  UNION ALL
  SELECT listing_id, as_of, 'repriced', asking_price, n_price_changes FROM changes WHERE last_at_instant = 1),
events AS (
  SELECT seller_id, NULL::BIGINT AS listing_id, created_at AS ts, 1 AS is_listing, 0 AS is_sale, false AS is_query
  FROM listings WHERE seller_id >= 0
  UNION ALL
  SELECT l.seller_id, NULL, s.sold_at, 0, 1, false FROM sales s JOIN listings l USING (listing_id) WHERE l.seller_id >= 0
  UNION ALL
  SELECT l.seller_id, s.listing_id, s.as_of, 0, 0, true FROM snaps s JOIN listings l USING (listing_id)
  WHERE l.seller_id >= 0),
history AS (
  SELECT listing_id, ts AS as_of,
         coalesce(sum(is_listing) OVER w, 0) AS seller_prior_listings,
         coalesce(sum(is_sale) OVER w, 0) AS seller_prior_sales, is_query
  FROM events
  WINDOW w AS (PARTITION BY seller_id ORDER BY epoch_us(ts) RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
text AS (
  SELECT listing_id, title, description,
         lower(concat_ws(' ', title, description)) AS txt FROM listings),
tokens AS (
  SELECT listing_id, txt,
         list_filter(string_split(trim(regexp_replace(txt, '[^[:alnum:]]+', ' ', 'g')), ' '),
                     lambda t: length(t) >= 2 AND NOT list_contains([{stop}], t)) AS text_tokens
  FROM text),
tf AS (
  SELECT listing_id, list(struct_pack(i := i, n := n) ORDER BY i) AS tf FROM (
    SELECT listing_id, (hash(tok) % {TEXT_HASH_DIM})::INT AS i, count(*)::DOUBLE AS n
    FROM (SELECT listing_id, unnest(text_tokens) AS tok FROM tokens) GROUP BY ALL) GROUP BY listing_id)
SELECT s.listing_id, s.as_of, s.snapshot, l.created_at, l.seller_id, l.brand, l.department, l.category,
       l.subcategory, l.condition, l.size, l.colour, l.material, l.shipping_paid_by, l.style_tags[1] AS style,
       hash(lower(trim(l.brand))) % 1048576 AS brand_code, hash(lower(trim(l.category))) % 1048576 AS category_code,
       hash(lower(trim(l.condition))) % 1048576 AS condition_code,
       s.asking_price, s.n_price_changes,
       (epoch_us(s.as_of) - epoch_us(l.created_at)) / 86400e6 AS days_since_listing,
       month(s.as_of) AS month, (month(s.as_of) % 12) // 3 + 1 AS season, dayofweek(s.as_of) + 1 AS weekday,
       l.seller_rating, l.seller_experience_years, l.seller_is_shop::INT AS seller_is_shop,
       h.seller_prior_listings, h.seller_prior_sales,
       CASE WHEN h.seller_prior_listings > 0 THEN h.seller_prior_sales / h.seller_prior_listings END
         AS seller_sell_through,
       length(l.title) AS title_length, length(l.description) AS description_length,
       t.text_tokens, coalesce(list_transform(tf.tf, lambda e: e.i), []) AS text_hash_indices,
       coalesce(list_transform(tf.tf, lambda e: e.n), []) AS text_hash_values,
       {_flags()}
FROM snaps s JOIN listings l USING (listing_id)
LEFT JOIN (SELECT * FROM history WHERE is_query) h ON h.listing_id = s.listing_id AND h.as_of = s.as_of
JOIN tokens t ON t.listing_id = s.listing_id
LEFT JOIN tf ON tf.listing_id = s.listing_id
"""


LEVELS = {"global": [], "category": ["category"], "brand_category": ["brand", "category"],
          "category_condition": ["category", "condition"]}


def _seg_cols(keys: list[str]) -> str:
    return ", ".join(f"{c} AS {c}" if c in keys else f"NULL::VARCHAR AS {c}" for c in ("brand", "category", "condition"))


def sql_market_stats() -> str:
    """Each segment's sales and listing creations, interleaved with its stamps (the days its listings were
    created), in one time-ordered stream; window aggregates over RANGE frames [D - w, D) give every stat."""
    parts = []
    for level, keys in LEVELS.items():
        parts.append(f"""
  SELECT '{level}' AS level, {_seg_cols(keys)}, epoch_us(s.sold_at) AS t, s.sold_price AS price, 1 AS is_sale,
         0 AS is_listing, false AS is_stamp
  FROM sales s JOIN seg l USING (listing_id)
  UNION ALL
  SELECT '{level}', {_seg_cols(keys)}, epoch_us(created_at), NULL, 0, 1, false FROM seg
  UNION ALL
  SELECT DISTINCT '{level}', {_seg_cols(keys)}, epoch_us(created_at::DATE::TIMESTAMP), NULL, 0, 0, true FROM seg""")
    day = 86_400_000_000
    stats = []
    for w in WINDOWS:
        frame = f"(PARTITION BY level, brand, category, condition ORDER BY t RANGE BETWEEN {w * day} PRECEDING AND 1 PRECEDING)"
        stats.append(f"coalesce(sum(is_sale) OVER {frame}, 0) AS n_sales_{w}d")
        stats.append(f"coalesce(sum(is_listing) OVER {frame}, 0) AS n_listed_{w}d")
        for q, v in QUANTILES.items():
            stats.append(f"quantile_cont(price, {v}) OVER {frame} AS {q}_{w}d")
    return f"""
CREATE OR REPLACE TABLE market_raw AS
WITH seg AS (SELECT listing_id, coalesce(brand, '{NO_BRAND}') AS brand, category, condition, created_at FROM listings),
stream AS ({" UNION ALL ".join(parts)})
SELECT * EXCLUDE (t, price, is_sale, is_listing, is_stamp), make_timestamp(t)::DATE AS stat_date FROM (
  SELECT *, {", ".join(stats)} FROM stream) WHERE is_stamp
"""


def sql_shrink() -> list[str]:
    """Shrink each segment toward its parent on the same day, as ``features.market_stats.shrink``: category
    toward global, then brand x category and category x condition toward the *shrunk* category."""
    def mix(child: str, parent_table: str, on: str) -> str:
        cols = []
        for w in WINDOWS:
            n, m = f"c.n_sales_{w}d", f"c.n_listed_{w}d"
            for q in QUANTILES:
                c, p = f"c.{q}_{w}d", f"p.{q}_{w}d"
                cols.append(f"CASE WHEN {c} IS NULL THEN {p} WHEN {p} IS NULL THEN {c} ELSE "
                            f"exp(({n} * ln(1 + {c}) + {K} * ln(1 + {p})) / ({n} + {K})) - 1 END AS {q}_{w}d")
            st = f"c.sell_through_{w}d"
            pst = f"p.sell_through_{w}d"
            cols.append(f"CASE WHEN {st} IS NULL THEN {pst} WHEN {pst} IS NULL THEN {st} ELSE "
                        f"({m} * {st} + {K} * {pst}) / ({m} + {K}) END AS sell_through_{w}d")
            cols += [f"{n} AS n_sales_{w}d", f"{m} AS n_listed_{w}d"]
        return (f"SELECT c.level, c.brand, c.category, c.condition, c.stat_date, {', '.join(cols)} "
                f"FROM (SELECT * FROM market_unshrunk WHERE level = '{child}') c LEFT JOIN {parent_table} p ON {on}")

    unshrunk = ", ".join(["*"] + [f"least(n_sales_{w}d / nullif(n_listed_{w}d, 0), 1.0) AS sell_through_{w}d"
                                  for w in WINDOWS])
    sub_on = "p.category = c.category AND p.stat_date = c.stat_date"
    return [
        f"CREATE OR REPLACE TABLE market_unshrunk AS SELECT {unshrunk} FROM market_raw",
        "CREATE OR REPLACE TABLE market_global AS SELECT * FROM market_unshrunk WHERE level = 'global'",
        f"CREATE OR REPLACE TABLE market_category AS {mix('category', 'market_global', 'p.stat_date = c.stat_date')}",
        f"""CREATE OR REPLACE TABLE market_stats AS
SELECT * FROM market_global
UNION ALL BY NAME SELECT * FROM market_category
UNION ALL BY NAME {mix('brand_category', 'market_category', sub_on)}
UNION ALL BY NAME {mix('category_condition', 'market_category', sub_on)}""",
    ]


def sql_training_set() -> str:
    return """
CREATE OR REPLACE TABLE training_set AS
WITH base AS (SELECT listing_id, created_at AS as_of, coalesce(brand, '(none)') AS _brand, category, condition,
                     sold_price, sold_at, status FROM listings),
f AS (SELECT * FROM base b ASOF JOIN (SELECT * EXCLUDE (brand, category, condition, created_at) FROM listing_features)
      lf ON lf.listing_id = b.listing_id AND lf.as_of <= b.as_of),
bc AS (SELECT f.*, m.p50_30d AS mkt_bc_p50_30d, m.n_sales_90d AS mkt_bc_n_sales_90d FROM f ASOF LEFT JOIN
       (SELECT brand, category, stat_date::TIMESTAMP AS stat_as_of, p50_30d, n_sales_90d FROM market_stats
        WHERE level = 'brand_category') m
       ON m.brand = f._brand AND m.category = f.category AND m.stat_as_of <= f.as_of)
SELECT bc.*, m.p50_30d AS mkt_cc_p50_30d, m.n_sales_90d AS mkt_cc_n_sales_90d FROM bc ASOF LEFT JOIN
  (SELECT category, condition, stat_date::TIMESTAMP AS stat_as_of, p50_30d, n_sales_90d FROM market_stats
   WHERE level = 'category_condition') m
  ON m.category = bc.category AND m.condition = bc.condition AND m.stat_as_of <= bc.as_of
WHERE bc.sold_at IS NULL OR bc.sold_at > bc.as_of
"""


def run(parquet_dir: Path, out_dir: Path, threads: int = 2) -> dict[str, float]:
    """Load the Parquet copies, build the three tables, write them to Parquet; seconds per step."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    out_dir.mkdir(parents=True, exist_ok=True)
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    for name in ("listings", "sales", "price_changes"):
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet('{parquet_dir / name}/*.parquet')")
    secs["load"] = time.perf_counter() - t0
    for name, sqls in (("listing_features", [sql_listing_features()]), ("market_stats", [sql_market_stats()]),
                       ("market_shrink", sql_shrink()), ("training_set", [sql_training_set()])):
        t = time.perf_counter()
        for sql in sqls:
            con.execute(sql)
        secs[name] = time.perf_counter() - t
        print(json.dumps({"step": name, "seconds": secs[name]}), flush=True)
    t = time.perf_counter()
    for name in ("listing_features", "market_stats", "training_set"):
        con.execute(f"COPY {name} TO '{out_dir / name}.parquet' (FORMAT parquet)")
    secs["write"] = time.perf_counter() - t
    secs["rows_training_set"] = float(con.execute("SELECT count(*) FROM training_set").fetchone()[0])
    secs["total"] = sum(v for k, v in secs.items() if not k.startswith("rows"))
    return secs


if __name__ == "__main__":
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(json.dumps(run(Path(sys.argv[1]), Path(sys.argv[1]) / "duck_out", threads=threads)), flush=True)
