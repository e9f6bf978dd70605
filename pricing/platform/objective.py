"""What a recommendation maximises: a seller's objective, named, parsed and checked in one place (the config names it, the demand model values it, the evaluation judges it).

* ``revenue``: expected revenue from sales within the horizon ``H``.  An item still unsold at ``H`` counts for
  nothing, so this objective rewards cutting prices to sell sooner.
* ``continuation`` (the default): expected revenue within ``H`` plus ``discount`` times the expected revenue of
  sales after ``H``, under the marketplace's usual dynamics (the price drops, the relisting, the end of sales)
  as the demand model learned them from sale times.  An unsold item keeps its later value, discounted for the
  wait; ``discount`` 0 is ``revenue``, 1 counts every sale alike.
* ``sell_through``: the highest sale probability within ``H`` among prices keeping at least
  ``min_revenue_share`` of the best ``revenue``.

Names read ``<kind>_<H>d`` (``continuation_60d``); ``H`` None stands for the demand model's own horizon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

KINDS = ("revenue", "continuation", "sell_through")
VALUED = ("revenue", "continuation")
"""Kinds that are an expected value (and so can be judged against an oracle that maximises the same value)."""
_NAME = re.compile(r"^(revenue|continuation|sell_through)(?:_(\d+)d)?$")


@dataclass(frozen=True)
class Objective:
    kind: str = "continuation"
    horizon_days: int | None = None
    """Days after listing that count in full; None: the demand model's horizon."""
    discount: float = 0.0
    """continuation: what a sale after the horizon is worth, as a share of one within it."""
    min_revenue_share: float = 0.9
    """sell_through: the share of the best revenue a price must keep."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown objective {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.horizon_days is not None and self.horizon_days < 1:
            raise ValueError(f"an objective's horizon must be at least 1 day, got {self.horizon_days}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"the continuation discount must lie in [0, 1], got {self.discount}")

    @classmethod
    def parse(cls, name: str, discount: float = 0.0, min_revenue_share: float = 0.9) -> Objective:
        """``revenue``, ``continuation_60d``, ...: the kind, and the horizon when the name has one."""
        m = _NAME.match(name.strip())
        if m is None:
            raise ValueError(f"objective {name!r} should read <kind> or <kind>_<days>d with kind one of "
                             f"{', '.join(KINDS)} (e.g. continuation_60d)")
        days = int(m.group(2)) if m.group(2) else None
        return cls(m.group(1), days, discount if m.group(1) == "continuation" else 0.0, min_revenue_share)

    def at(self, model_horizon: int) -> Objective:
        """This objective with its horizon filled in (the demand model's when None)."""
        return self if self.horizon_days is not None else replace(self, horizon_days=model_horizon)

    @property
    def name(self) -> str:
        return self.kind if self.horizon_days is None else f"{self.kind}_{self.horizon_days}d"

    @property
    def after_horizon(self) -> float:
        """Weight of a sale after the horizon: ``discount`` for continuation, 0 otherwise."""
        return self.discount if self.kind == "continuation" else 0.0
