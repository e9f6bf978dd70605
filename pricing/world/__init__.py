"""The simulated marketplace with a known ground truth: simulator, reference catalogue, landing export with
injected faults, and its true demand.  Read only by the generate job and by evaluation code, never by models."""
