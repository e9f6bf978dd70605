"""Exclusive job locks under the storage root.

Some jobs must never overlap: two ``ingest`` runs would drive the same Structured Streaming checkpoints (one
writer each, by design) and race on the same bronze tables.  :func:`exclusive` takes an OS file lock
(``flock``) on ``<storage.root>/locks/<name>.lock``: a second run waits for the first (bounded), then fails with
a clear message before touching anything.  The kernel releases the lock when its process ends, however it ends
(a SIGKILLed job leaves no stale lock).  It protects runs on one machine (local, or one driver); on Databricks,
the jobs' ``max_concurrent_runs: 1`` keeps a job's runs apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pricing.platform.errors import JobLockedError

POLL_S = 0.5


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
