"""Benchmarks (``mocap bench NAME``): print a table, write JSON. Not timed tests."""
