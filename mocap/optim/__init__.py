"""Sparse least-squares solvers: what is free, how to solve, and a summary of the result."""
