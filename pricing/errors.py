"""Errors a user can act on.  The CLI prints them as one readable message, never a stack trace."""

from __future__ import annotations


class PricingError(Exception):
    """Base class: the message says what went wrong and what to do."""


class ConfigError(PricingError):
    """The configuration is invalid; raised before any table is written."""


class SetupError(PricingError):
    """The local environment is incomplete (Java, Delta jars, ...)."""


class DataQualityError(PricingError):
    """A blocking data check failed; the workflow must stop here."""


class ModelGateError(PricingError):
    """A model failed its sanity checks or the champion/challenger gate."""
