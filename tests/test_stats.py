"""mocap.stats.signed_rank_greater against scipy.stats.wilcoxon(alternative="greater", zero_method="wilcox")."""

import warnings

import numpy as np
import pytest
from scipy.stats import wilcoxon

from mocap.stats import signed_rank_greater


@pytest.mark.parametrize("kind", ["plain", "ties", "zeros", "halves"])
def test_signed_rank_matches_scipy(kind):
    rng = np.random.default_rng({"plain": 0, "ties": 1, "zeros": 2, "halves": 3}[kind])
    for n in list(range(1, 20)) + [25, 40, 50, 51, 64, 90]:
        for _ in range(6):
            d = rng.normal(0.4 * rng.normal(), 1.0, n)
            if kind == "ties":
                d = np.round(d, 1)
            elif kind == "zeros":
                d[rng.random(n) < 0.25] = 0.0
            elif kind == "halves":
                d = np.round(d * 2) / 2
            if not np.any(d):
                assert np.isnan(signed_rank_greater(d))
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = float(wilcoxon(d, alternative="greater", zero_method="wilcox").pvalue)
            assert signed_rank_greater(d) == pytest.approx(expected, abs=1e-12), (kind, n, d)


def test_signed_rank_refuses_non_finite_differences():
    with pytest.raises(ValueError, match="expected finite differences, got 3 values with 1 not finite"):
        signed_rank_greater(np.array([1.0, np.nan, 2.0]))
