"""The marketplace's price-exploration experiment: which listings' asking prices it randomised, and by how much.

The marketplace runs this experiment, so it knows the assignment: a deterministic hash of (seed, listing id), the
same on every run and cluster.  The simulator applies it when it generates prices; the demand model recomputes it
from the export's settings (the landing manifest), never from the simulator's truth.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from pricing.platform import columns

_MASK53 = (1 << 53) - 1

SUGGESTION_LOG = "_experiment/suggestions"
"""Under the landing folder: the encouragement experiment's log, one row per listing shown a suggested price
(``listing_id``, ``adopted``: whether the seller listed at it), as the marketplace's experiment platform
records it.  Parquet, rewritten whole by each export (``pricing.world.generate.export_suggestion_log``)."""


def uniform(seed: int, salt: str, *cols: Column | str) -> Column:
    """Deterministic U(0,1) from a hash of the seed, a purpose string and the row's ids."""
    if all(isinstance(c, str) for c in cols):
        # The same expression as below, written as one SQL string: one driver-to-JVM call instead of about ten
        # (a world is built from hundreds of these).  Literals typed as F.lit types them: an int seed as INT
        # (BIGINT beyond 32 bits), doubles with the D suffix.
        ids = ", ".join(columns.quote(str(c)) for c in cols)
        return F.expr(f"(CAST(xxhash64({int(seed)}, {columns.sql_string(salt)}, {ids}) & {_MASK53} AS DOUBLE) + 0.5D) "
                      f"/ {float(1 << 53)!r}D")
    h = F.xxhash64(F.lit(seed), F.lit(salt), *cols)
    return (h.bitwiseAND(F.lit(_MASK53)).cast("double") + 0.5) / float(1 << 53)


def price_nudge(seed: int, share: float, max_log: float, listing_id: Column | str = "listing_id") -> Column:
    """The price-exploration experiment's log multiplier on a listing's asking price: ``U(-max_log, max_log)``
    for a hashed ``share`` of listings, exactly 0 for the rest (so ``share = 0`` leaves every price as it was).

    The demand model reads the assignment from here with the export's settings (``_simulator.json``), never
    from ``truth.listings``."""
    size = (2.0 * uniform(seed, "price_nudge_size", listing_id) - 1.0) * max_log
    return F.when(uniform(seed, "price_nudge_arm", listing_id) < share, size).otherwise(F.lit(0.0))
