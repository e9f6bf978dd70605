"""Price optimisation: revenue-optimal recommendations within guardrails, and policies judged against the
simulator's true demand (evaluation only)."""
