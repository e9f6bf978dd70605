"""One thin module per workflow task.  Each exposes ``run(spark, cfg) -> JobSummary`` and ``main()``."""
