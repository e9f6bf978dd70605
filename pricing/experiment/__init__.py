"""Experiments on pricing policies.

* ``simulate``: a seller-randomised A/B test on listings whose demand is known, with the true effect;
* ``analysis``: SRM, balance, cluster-robust / delta-method effects, CUPED, lifts, the multiple-metric guard;
* ``design``: power and sample size from the sellers' historical variance;
* ``report``: the markdown / HTML read-out and its plots;
* ``frames``: the Spark side (windows, per-seller totals, table schemas).

All but ``frames`` are pure numpy / pandas; ``jobs/experiment.py`` does the I/O.
"""
