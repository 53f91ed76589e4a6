"""Benchmarks: each `*_bench.py` module prints figures against a baseline measured in the same run."""
