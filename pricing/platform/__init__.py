"""What every job stands on: typed config, the Spark session, the table catalog and its resolution, Delta I/O,
MLflow tracking, locks, errors, job summaries and fault-injection points.  Imports nothing else of the project."""
