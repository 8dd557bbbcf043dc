"""One detection per view, but two cameras' detectors on a bystander (a mannequin) in the same frames: the views
split two against two, no majority. The split is found from the views' whole bodies (mocap.geometry.view_split)
and the performer is followed in 3D (mocap.detect.select.performer), the other body's views left out."""

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.detect.select import SPLIT_FRAMES, performer, two_bodies
from mocap.geometry.triangulation import triangulate
from mocap.geometry.view_split import split_frames
from mocap.io.hdf5 import write_keypoints2d
from mocap.io.rig_files import write_rig
from mocap.session import Session
from mocap.stages.triangulate import session_keypoints
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D

FRAMES, FPS = 600, 60.0


def _take(cameras=(1, 2), share: float = 0.25, n_cameras: int = 4, seed: int = 0):
    """(rig, keypoints, truth (F, J, 3), the frames the figure replaces the performer in ``cameras``): a static
    figure (the performer's first pose, 1.8 m away) detected by ``cameras`` in bursts of 30–90 frames."""
    X = blazepose_keypoints(body_motion(FRAMES, FPS, seed=seed))
    rig = ring_rig(RigSpec(n_cameras=n_cameras), X.reshape(-1, 3))
    data, _ = corrupt(np.moveaxis(rig.project(X), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.02, 0.05, seed=1))
    rng = np.random.default_rng(seed)
    burst = np.zeros(FRAMES, bool)
    while burst.mean() < share:
        s = rng.integers(0, FRAMES - 90)
        burst[s:s + rng.integers(30, 90)] = True
    figure = X[0] + np.array([1.6, 0.8, 0.0])
    for c in cameras:
        uv = rig.cameras[c].project(figure)
        data[burst, c, 0, :, :2] = uv + rng.normal(0, 1.0, (burst.sum(),) + uv.shape)
        data[burst, c, 0, :, 2] = 0.9
    return rig, Keypoints2D(data, rig.names, "blazepose33", FPS), X, burst


def _xy(kp):
    return np.where((kp.data[:, :, 0, :, 2] >= 0.2)[..., None], kp.data[:, :, 0, :, :2], np.nan)


@pytest.mark.parametrize("share", [0.25, 0.8])
def test_the_frames_split_two_against_two_are_found_and_no_others(share):
    rig, kp, _, burst = _take(share=share)  # 0.8: the bystander in most frames (the median pair then disagrees)
    found = split_frames(rig, _xy(kp))
    assert found[burst].mean() > 0.9 and not found[~burst].any(), (found[burst].mean(), found[~burst].sum())
    rig, kp, _, _ = _take(share=0)
    assert not split_frames(rig, _xy(kp)).any()
    rig, kp, _, burst = _take(cameras=(1,))  # one camera on the figure: three agree, nothing split
    assert not split_frames(rig, _xy(kp)).any()
    rig, kp, _, _ = _take(cameras=(1, 2), n_cameras=3)  # three cameras: two against one is never two groups
    assert not split_frames(rig, _xy(kp)).any()


def test_the_performer_is_followed_and_the_other_body_left_out():
    rig, kp, X, burst = _take()
    assert two_bodies(rig, kp) >= SPLIT_FRAMES
    kept = performer(rig, kp)
    figure_views = np.isfinite(kept.data[burst][:, [1, 2], 0, :, 0]).any(-1).mean()
    assert figure_views < 0.05, figure_views
    own = np.isfinite(kept.data[~burst, :, 0, :, 0]).any(-1).mean() / np.isfinite(kp.data[~burst, :, 0, :, 0]).any(
        -1).mean()
    assert own > 0.99, own  # the performer's own views all kept

    def error(k):
        uv = k.data[burst, :, 0, :, :2].transpose(0, 2, 1, 3).reshape(-1, 4, 2)
        P = triangulate(rig, uv, np.isfinite(uv[..., 0]).astype(float), max_reproj_px=15.0)[0]
        return np.nanmedian(np.linalg.norm(P - X[burst].reshape(-1, 3), axis=-1))

    before, after = error(kp), error(kept)
    assert after < 0.01 and before > 5 * after, (before, after)


@pytest.mark.parametrize("seed", [0, 1])
def test_triangulate_reads_the_performer_only_when_the_views_split(tmp_path, seed):
    for share, root in ((0.25, tmp_path / "split"), (0.0, tmp_path / "clean")):
        rig, kp, X, burst = _take(share=share, seed=seed)
        root.mkdir()
        write_rig(rig, root / "rig.toml")
        write_keypoints2d(kp, root / "pose2d.h5")
        (root / "calibration").mkdir()
        (root / "rig.toml").rename(root / "calibration" / "rig.toml")
        read = session_keypoints(Session(root), rig)
        if share:
            assert np.isfinite(read.data[burst][:, [1, 2], 0, :, 0]).any(-1).mean() < 0.05
        else:  # nothing split: read as stored (no association)
            assert np.allclose(read.data, kp.data, atol=1e-3, equal_nan=True)
