"""Marketplace pricing: the library the jobs share (config, Spark, tables, Delta I/O, tracking, models)."""

from __future__ import annotations

__version__ = "0.1.0"
