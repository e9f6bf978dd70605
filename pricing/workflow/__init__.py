"""The workflow around the jobs: the `pricing` CLI, the runner (the only importer of ``jobs/``), the local runner
of the bundle's task graph, offline bundle checks and task values."""
