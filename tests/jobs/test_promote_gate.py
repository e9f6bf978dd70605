from __future__ import annotations

from jobs.promote import decide


def test_first_model_is_promoted() -> None:
    assert decide(0.5, None, 0.01)[0] is True


def test_worse_model_is_never_promoted() -> None:
    promote, reason = decide(0.52, 0.50, 0.0)
    assert promote is False and "does not beat" in reason


def test_better_model_needs_the_margin() -> None:
    assert decide(0.499, 0.50, 0.01)[0] is False
    assert decide(0.49, 0.50, 0.01)[0] is True
