"""The demand model: P(sold within H days | features, price), with price response identified by the marketplace's
randomised price exploration."""
