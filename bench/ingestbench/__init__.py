"""Helpers for ``bench/bench_ingest.py``: data sets, timed steps, machine facts and the report."""
