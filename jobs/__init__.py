"""One thin module per workflow task: ``run(spark, cfg) -> JobSummary`` reads its inputs, calls the library, writes,
logs and returns its summary.  Only ``pricing.workflow`` imports these modules; no job imports another."""
