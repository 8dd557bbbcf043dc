"""Sparse least-squares solvers: what is free, how to solve, and a summary of the result.

* :mod:`.lm`: the one Levenberg-Marquardt driver and its robust → reject → least-squares schedule,
  used by :mod:`.refine` and by calibration's bundle adjustment;
* :mod:`.banded`: banded symmetric matrices, preconditioned conjugate gradient, the acceleration prior;
* :mod:`.refine`: bundle-adjusted smoothing of 3D joint trajectories.
"""
