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


class MissingTableError(PricingError):
    """A table a job reads does not exist yet: an upstream job has not run."""


class ConcurrentWriteError(PricingError):
    """A Delta write kept losing commit races to concurrent writers; nothing of it was committed."""


class JobLockedError(PricingError):
    """Another run of the same job holds its lock under the storage root."""
