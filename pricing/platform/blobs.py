"""A model's parts as named byte blobs on disk: one ``<name>.json`` file each, the form MLflow ``artifacts`` take."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_blobs(blobs: Mapping[str, bytes], folder: Path) -> dict[str, str]:
    """Write one file per part; returns MLflow ``artifacts`` (name -> path)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, blob in blobs.items():
        p = folder / f"{name}.json"
        p.write_bytes(blob)
        paths[name] = str(p)
    return paths


def read_blobs(artifacts: Mapping[str, str]) -> dict[str, bytes]:
    """The parts :func:`write_blobs` wrote, by name."""
    return {k: Path(v).read_bytes() for k, v in artifacts.items()}
