"""Helpers for bench_services.py."""
