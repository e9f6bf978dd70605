"""The champion/challenger gate as a pure decision on holdout results."""

from __future__ import annotations

from pricing.platform.config import PromoteConfig
from pricing.price_model.promotion import HoldoutResult, decide

GATE = PromoteConfig(min_improvement=0.01, max_segment_regression=0.02, min_segment_rows=100)


def result(rmsle: float, **segments: tuple[float, int]) -> HoldoutResult:
    return HoldoutResult(rmsle, 0.8, 1000, {("category", k): v for k, v in segments.items()})


def test_first_model_is_promoted() -> None:
    promote, reasons = decide(result(0.5), None, GATE)
    assert promote is True and "no champion yet" in reasons[0]


def test_worse_model_is_never_promoted() -> None:
    promote, reasons = decide(result(0.52, tops=(0.5, 500)), result(0.50, tops=(0.5, 500)), GATE)
    assert promote is False and "not better" in reasons[0]


def test_better_model_needs_the_margin() -> None:
    champion = result(0.50, tops=(0.5, 500))
    assert decide(result(0.499, tops=(0.49, 500)), champion, GATE)[0] is False
    assert decide(result(0.49, tops=(0.49, 500)), champion, GATE)[0] is True


def test_better_overall_but_worse_on_a_major_segment_is_rejected() -> None:
    champion = result(0.50, tops=(0.40, 500), shoes=(0.60, 500))
    challenger = result(0.45, tops=(0.30, 500), shoes=(0.62, 500))  # shoes +3.3% > 2% tolerance
    promote, reasons = decide(challenger, champion, GATE)
    assert promote is False
    assert "category=shoes" in reasons[1] and "+3.3%" in reasons[1]


def test_minor_segments_and_regressions_within_tolerance_do_not_block() -> None:
    champion = result(0.50, tops=(0.40, 500), shoes=(0.60, 500), hats=(0.30, 20))
    challenger = result(0.45, tops=(0.30, 500), shoes=(0.61, 500), hats=(0.90, 20))  # +1.7% and a 20-row segment
    promote, reasons = decide(challenger, champion, GATE)
    assert promote is True and "no major segment" in reasons[1]
