"""C3D's header counts frames in 16 bits: a longer take is refused with its length, not cut by readers."""

import numpy as np
import pytest

from mocap.io.c3d import MAX_FRAMES, read_c3d, write_c3d


def test_a_take_longer_than_c3d_holds_is_refused_and_one_that_fits_round_trips(tmp_path):
    pytest.importorskip("ezc3d")
    with pytest.raises(ValueError, match=r"65536 frames, more than C3D's 65535 \(18\.2 min at 60 fps\)"):
        write_c3d(tmp_path / "long.c3d", ["a"], np.zeros((MAX_FRAMES + 1, 1, 3)), 60.0)
    assert not (tmp_path / "long.c3d").exists()
    xyz = np.random.default_rng(0).uniform(-1, 1, (MAX_FRAMES, 1, 3))
    labels, back, fps = read_c3d(write_c3d(tmp_path / "fits.c3d", ["a"], xyz, 60.0))
    assert labels == ["a"] and back.shape == xyz.shape and np.allclose(back, xyz, atol=1e-4) and fps == 60.0
