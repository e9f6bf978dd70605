"""Exclusive job locks under the storage root.

Some jobs must never overlap: two ``ingest`` runs would drive the same Structured Streaming checkpoints (one
writer each, by design) and race on the same bronze tables.  :func:`job_lock` takes the lock ``storage.lock``
names on ``<storage.root>/locks/<name>``; a second run waits for the first (bounded), then fails with a clear
message before touching anything.

* ``flock`` (local runs), :func:`exclusive`: an OS file lock.  The kernel releases it when its process ends,
  however it ends (a SIGKILLed job leaves no stale lock), but only processes on the same machine see it.
* ``filesystem`` (Databricks), :func:`lease`: drivers on different clusters share no kernel, so the lock is a
  lease file created through the session's Hadoop FileSystem only if absent (``create(path, overwrite=false)``)
  on the Volume every cluster sees.  The holder renews it every third of ``storage.lock_ttl_s``; a holder whose
  driver died stops renewing, and once the lease is ``lock_ttl_s`` old the next run takes it over, so a killed
  run blocks the next for at most that long (a task's retry waits longer than the default two minutes).
  Conditional create is atomic on ADLS, GCS and HDFS; where a store's is not, the winner is checked by reading
  the lease back after a short settle time.  Two runs breaking the same expired lease at the same instant can
  still both proceed: the jobs' ``max_concurrent_runs: 1`` and the insert-only MERGEs on event_id remain the
  guard behind it.
* ``none``: no lock, for stores without a usable conditional create: ``max_concurrent_runs: 1`` and Delta's
  optimistic concurrency (insert-only MERGEs) are then the only guard.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from pricing.platform import fs
from pricing.platform.config import Config
from pricing.platform.errors import JobLockedError

POLL_S = 0.5
SETTLE_S = 1.0
"""Lease lock: how long after creating the lease file it is read back to confirm this run won it."""


def job_lock(spark: SparkSession, cfg: Config, name: str, what: str, timeout_s: float) -> AbstractContextManager[Any]:
    """The lock ``cfg.storage.lock`` chooses on ``<storage.root>/locks/<name>`` (see the module docstring)."""
    path = cfg.state_path(f"locks/{name}")
    if cfg.storage.lock == "filesystem":
        return lease(spark, path, what, timeout_s, cfg.storage.lock_ttl_s)
    if cfg.storage.lock == "none":
        return contextlib.nullcontext(path)
    return exclusive(path, what, timeout_s)


@contextlib.contextmanager
def exclusive(path: Path, what: str, timeout_s: float) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the ``with`` block, waiting at most ``timeout_s`` for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = path.read_text(errors="replace").strip() or "unknown holder"
                    raise JobLockedError(
                        f"another {what} is running ({holder}; lock {path}); waited {timeout_s:g} s for it. Nothing "
                        "was read or written. Let it finish and re-run (a killed run releases the lock by itself)."
                    ) from None
                if not waited:
                    print(f"{what}: waiting for the run holding {path} to finish", flush=True)
                    waited = True
                time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
                 .encode())
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _read_lease(spark: SparkSession, path: str) -> dict[str, Any] | None:
    """The lease as written, or None when there is none (or it is being rewritten this instant)."""
    try:
        text = fs.read_text(spark, path)
        doc = json.loads(text) if text else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("expires_at"), int | float) else None


def _lease_text(token: str, holder: str, ttl_s: float) -> str:
    return json.dumps({"token": token, "holder": holder, "expires_at": time.time() + ttl_s})


@contextlib.contextmanager
def lease(spark: SparkSession, path: Path | str, what: str, timeout_s: float, ttl_s: float,
          settle_s: float = SETTLE_S) -> Iterator[str]:
    """Hold the lease file ``path`` (through the session's Hadoop FileSystem) for the ``with`` block, waiting at
    most ``timeout_s`` for it; renewed every ``ttl_s / 3`` while held, deleted on the way out."""
    target = str(path)
    token, holder = uuid.uuid4().hex, _holder()
    deadline = time.monotonic() + timeout_s
    waited = False
    while True:
        if fs.write_text(spark, target, _lease_text(token, holder, ttl_s), overwrite=False):
            if settle_s:
                time.sleep(settle_s)
            mine = _read_lease(spark, target)
            if mine is not None and mine.get("token") == token:
                break
        current = _read_lease(spark, target)
        if current is not None and current["expires_at"] < time.time():
            # Its holder stopped renewing (its driver died): take it over, unless it changed meanwhile.
            if _read_lease(spark, target) == current:
                fs.delete(spark, target)
            continue
        if time.monotonic() >= deadline:
            who = (current or {}).get("holder") or "unknown holder"
            raise JobLockedError(
                f"another {what} is running ({who}; lock {target}); waited {timeout_s:g} s for it. Nothing was "
                f"read or written. Let it finish and re-run (a run that died releases the lock {ttl_s:g} s after "
                "its last renewal).")
        if not waited:
            print(f"{what}: waiting for the run holding {target} to finish", flush=True)
            waited = True
        time.sleep(POLL_S)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / 3):
            current = _read_lease(spark, target)
            if current is not None and current.get("token") != token:
                print(f"{what}: lost the lease {target} to {current.get('holder')} (not renewed in time)", flush=True)
                return
            fs.write_text(spark, target, _lease_text(token, holder, ttl_s), overwrite=True)

    renewer = threading.Thread(target=renew, name=f"lease-{Path(target).name}", daemon=True)
    renewer.start()
    try:
        yield target
    finally:
        stop.set()
        renewer.join(timeout=30)
        current = _read_lease(spark, target)
        if current is not None and current.get("token") == token:
            fs.delete(spark, target)
