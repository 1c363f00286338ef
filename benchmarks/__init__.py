"""Benchmarks (run as scripts; see run_all.py)."""
