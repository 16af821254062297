"""Compute-to-data jobs (domain layer): algorithms, trust, staging, publishing, lifecycle.

Sits above ``assay.jobs`` (it runs on the job layer's executor and checks its access policies)
and beside ``assay.services``, which it may import (a registered service can be a job's
algorithm); ``services`` never imports it. The seed-shaped face is ``assay.compute``.
"""
