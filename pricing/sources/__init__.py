"""How raw data enters: the landing record format and its checks, the Mercari adapter, bronze schemas, streaming
ingest with quarantine and reconciliation, silver, and the price-exploration assignment the marketplace ran."""
