"""Data validation: Great Expectations suites from ``conf/expectations``, Data Docs, and the blocking gate."""
