"""Product matching: MinHash LSH within brand x category blocks, a same-product decision and product clusters."""
