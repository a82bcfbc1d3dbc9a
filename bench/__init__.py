"""Benchmarks: they print numbers; they never assert on time."""
