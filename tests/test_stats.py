"""mocap.stats.signed_rank_greater against scipy.stats.wilcoxon(alternative="greater", zero_method="wilcox"), and
t_greater / t_sf against scipy.stats.ttest_1samp(alternative="greater") / scipy.stats.t.sf."""

import warnings

import numpy as np
import pytest
from scipy.stats import t, ttest_1samp, wilcoxon

from mocap.stats import signed_rank_greater, t_greater, t_sf


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


def test_t_tail_and_test_match_scipy():
    for dof in range(1, 41):
        for value in (-6.0, -1.0, -0.2, 0.0, 0.4, 1.5, 3.0, 12.0, 80.0):
            assert t_sf(value, dof) == pytest.approx(float(t.sf(value, dof)), abs=1e-12), (value, dof)
    rng = np.random.default_rng(4)
    for n in range(2, 30):
        d = rng.normal(0.5, 1.0, n)
        assert t_greater(d) == pytest.approx(float(ttest_1samp(d, 0.0, alternative="greater").pvalue), abs=1e-12)
    assert t_greater(np.array([2.0, 2.0, 2.0])) == 0.0 and t_greater(np.array([-1.0, -1.0])) == 1.0


def test_t_test_refuses_too_few_or_non_finite_differences():
    with pytest.raises(ValueError, match="at least 2 finite differences, got 1 values"):
        t_greater(np.array([1.0]))
    with pytest.raises(ValueError, match="got 3 values with 1 not finite"):
        t_greater(np.array([1.0, np.inf, 2.0]))
    with pytest.raises(ValueError, match="degrees of freedom must be ≥ 1, got 0"):
        t_sf(1.0, 0)
