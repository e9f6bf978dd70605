"""Adapters that turn public marketplace data sets into landing events (the shape ingest reads)."""
