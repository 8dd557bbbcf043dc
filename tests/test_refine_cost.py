"""Cost of refine with hands (issue 16): the band's empty sub-diagonals skipped in the matrix-vector product
(the same product), and the bone lengths gathered by np.take (the same lengths)."""

import numpy as np

from mocap.geometry.camera import project
from mocap.optim.banded import band_matvec
from mocap.optim.refine import BAND_ROWS, RefineConfig, _Problem
from mocap.optim.refine_bones import segment_lengths
from mocap.synth import RigSpec
from mocap.synth.groundtruth import ring_rig


def test_band_matvec_with_its_rows_is_the_full_product():
    rng = np.random.default_rng(0)
    ab = rng.normal(size=(7, 60))
    ab[[4, 5]] = 0.0
    x = rng.normal(size=60)
    full = band_matvec(ab, x)
    assert np.array_equal(band_matvec(ab, x, BAND_ROWS), full)
    dense = np.diag(ab[0])
    for d in range(1, 7):
        dense += np.diag(ab[d, :60 - d], -d) + np.diag(ab[d, :60 - d], d)
    assert np.allclose(full, dense @ x)
    ab[4] = 1.0  # a row left out changes the product: the test can fail
    assert not np.allclose(band_matvec(ab, x, BAND_ROWS), band_matvec(ab, x))


def test_refine_band_holds_entries_only_in_band_rows():
    rng = np.random.default_rng(1)
    T, C, J = 30, 3, 4
    X = np.stack([np.array([0.1 * j, 0.05 * j, 1.0]) + 0.01 * rng.normal(size=(T, 3)) for j in range(J)], axis=1)
    rig = ring_rig(RigSpec(n_cameras=C), X.reshape(-1, 3))
    uv = np.stack([project(cam, X) for cam in rig.cameras], axis=1)  # (T, C, J, 2)
    uv += rng.normal(0, 1.0, uv.shape)
    prob = _Problem(rig, uv, np.ones((T, C, J)), [(0, 1), (1, 2), (2, 3)], 60.0, RefineConfig())
    prob.update(X)
    g, ab, couplings, diag = prob.linearize(X)
    assert np.array_equal(diag, ab[0])
    rows = {0, *BAND_ROWS}
    assert all(not ab[d].any() for d in range(7) if d not in rows)
    assert all(ab[d].any() for d in rows)
    lengths = segment_lengths(X, prob.ba, prob.bb)
    assert np.allclose(lengths, np.linalg.norm(X[:, [0, 1, 2]] - X[:, [1, 2, 3]], axis=2))

