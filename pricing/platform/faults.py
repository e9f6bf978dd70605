"""Test-only fault injection: pause a job at a named point so that a test can kill it there.

With ``PRICING_FAULT_AT=<point>`` in the environment, :func:`point` pauses the process that reaches ``<point>``
(for ``PRICING_FAULT_SLEEP_S`` seconds, 600 by default) after announcing it on stderr; with
``PRICING_FAULT_SIGNAL=<file>`` also set, the first process to arrive creates that file (holding its pid) and
only it pauses, so a task retried elsewhere runs through.  Unset (always, outside the reliability tests), a
point is one dictionary lookup and does nothing.  The points (``tests/reliability/`` kills jobs at each):

* ``ingest.after_bronze_merge``: a micro-batch's bronze MERGE has committed; its quarantine MERGE and the
  stream's checkpoint commit have not.
* ``ingest.before_silver``: every bronze table is written; silver is not rebuilt yet.
* ``features.after_first_table``: ``features.listing_features`` is written; the other feature tables are not.
* ``train.after_register``: the model version is registered; its tags and the ``challenger`` alias are not set.
* ``score.predict``: inside the Arrow scoring UDF, i.e. while the Delta write of ``ml.price_suggestions`` runs
  (on an executor: pass the variables with ``spark.executorEnv.*`` on a cluster).
"""

from __future__ import annotations

import os
import sys
import time

ENV = "PRICING_FAULT_AT"
SIGNAL_ENV = "PRICING_FAULT_SIGNAL"
SLEEP_ENV = "PRICING_FAULT_SLEEP_S"


def point(name: str) -> None:
    """Pause here when ``PRICING_FAULT_AT`` names this point (see the module docstring); else nothing."""
    if os.environ.get(ENV) != name:
        return
    signal = os.environ.get(SIGNAL_ENV)
    if signal:
        try:
            fd = os.open(signal, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return  # another process (or an earlier attempt of this task) paused here already
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
    print(f"pricing fault point {name!r} reached in pid {os.getpid()}: pausing", file=sys.stderr, flush=True)
    time.sleep(float(os.environ.get(SLEEP_ENV, "600")))
