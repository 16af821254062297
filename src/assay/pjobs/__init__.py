"""Managed pipeline jobs (SD2E-shaped): jobs that run outside Assay and report to it.

Assay gives such a job a deterministic identity and place to write (``identity``,
``archive``), tracks its curation life cycle on the job layer (``machine``, ``service``),
verifies the webhooks it reports through (``tokens``, ``webhooks``) and indexes what it wrote
into bundles (``requests``, ``indexer``). Pipelines are registered in the catalog
(``pipelines``). The seed-shaped face is ``assay.pipelinejobs``.
"""
