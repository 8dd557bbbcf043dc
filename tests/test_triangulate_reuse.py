"""Triangulate reusing the swap repair's work (issue 14's cost target): the undistorted detections and the point
of all views of every (frame, joint) the repair did not change are not computed again. The same points, views
and errors as without it; the rows a repair changed are computed again; work that does not fit is not used."""

import numpy as np
import pytest
from test_hands_triangulate import corrupted_hands_take
from test_swaps import swapped_take

from mocap.geometry import triangulation
from mocap.geometry.swaps import SwapConfig
from mocap.geometry.swaps_repair import repair_keypoints
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages import triangulate
from mocap.synth import CorruptionSpec, corrupt
from mocap.types import Keypoints2D


def repaired(rig, kp, cfg=None):
    cfg = cfg or triangulate.Config()
    work: dict = {}
    ks = get_keypoint_set(kp.keypoint_set)
    if kp.keypoint_set.endswith("_hands"):
        fixed, _ = triangulate._repair_with_hands(rig, kp, ks, cfg.min_score, SwapConfig(), None, work)
    else:
        fixed, _ = repair_keypoints(rig, kp, ks, cfg.min_score, SwapConfig(), work=work)
    return fixed, work


def assert_same(a, b):
    np.testing.assert_allclose(a.xyz, b.xyz, rtol=0, atol=1e-9)  # NaN where NaN
    assert np.array_equal(a.views, b.views)
    np.testing.assert_allclose(a.reproj_err, b.reproj_err, rtol=0, atol=1e-6)


def test_same_points_and_the_changed_rows_computed_again(monkeypatch):
    rig, kp, _, masks = swapped_take(300, swaps=0.05)
    fixed, work = repaired(rig, kp)
    plain = triangulate.run(rig, fixed)
    known = triangulate.reused_work(work, fixed, triangulate.Config().min_score)
    rows = known["rows"].reshape(fixed.shape[0], fixed.shape[3])
    swapped_frames = masks["swapped"].any(axis=1)
    assert swapped_frames.sum() > 20
    assert rows[~swapped_frames].all() and not rows[swapped_frames].all()  # only frames with an exchange lose rows

    def no_undistortion(*args, **kwargs):
        raise AssertionError("the swap repair's undistorted detections were not reused")

    monkeypatch.setattr(triangulation, "normalise_observations", no_undistortion)
    assert_same(plain, triangulate.run(rig, fixed, swap_work=work))


def test_points_under_min_views_are_empty_as_without_it():
    rig, kp, _, _ = swapped_take(200, swaps=0.03, seed=1)
    data = kp.data.copy()
    data[::3, 1:3, :, :5] = np.nan  # many joints left with two views or fewer
    kp = Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)
    cfg = triangulate.Config(min_views=3)
    fixed, work = repaired(rig, kp, cfg)
    plain = triangulate.run(rig, fixed, cfg)
    assert np.isnan(plain.xyz[::3, 0, :5]).all() and np.isfinite(plain.xyz[1::3, 0, :5]).mean() > 0.7
    assert_same(plain, triangulate.run(rig, fixed, cfg, swap_work=work))


def test_two_people_and_work_of_other_weights():
    rig, kp, _, _ = swapped_take(200, swaps=0.05)
    uv = np.moveaxis(rig.project(swapped_take(200)[2]), 0, 1)
    other, _ = corrupt(uv, rig, "coco17", CorruptionSpec(2.0, 0.05, 0.1, swaps=0.05, seed=7))
    kp = Keypoints2D(np.concatenate([kp.data, other], axis=2), kp.camera_names, kp.keypoint_set, kp.fps)
    fixed, work = repaired(rig, kp)
    assert len(work["persons"]) == 2
    plain = triangulate.run(rig, fixed)
    assert_same(plain, triangulate.run(rig, fixed, swap_work=work))
    cfg = triangulate.Config(min_score=0.5)  # other weights: the work does not fit and is not used
    assert triangulate.reused_work(work, fixed, cfg.min_score) is None
    assert_same(triangulate.run(rig, fixed, cfg), triangulate.run(rig, fixed, cfg, swap_work=work))


def test_body_and_hands_reuse_the_body_rows():
    frames = 120
    spec = CorruptionSpec(1.0, 0.02, 0.05, swaps=0.05, hand_noise_px=0.5)
    rig, kp, _, _ = corrupted_hands_take(frames, 4, spec)
    fixed, work = repaired(rig, kp)
    known = triangulate.reused_work(work, fixed, 0.2)
    rows = known["rows"].reshape(frames, -1)
    assert rows[:, :33].mean() > 0.5 and not rows[:, 33:].any()  # the hands are computed
    assert_same(triangulate.run(rig, fixed), triangulate.run(rig, fixed, swap_work=work))


@pytest.mark.parametrize("cameras", [2])
def test_no_work_below_three_cameras(cameras):
    rig, kp, _, _ = swapped_take(100, swaps=0.0, n_cameras=cameras)
    fixed, work = repaired(rig, kp)
    assert work == {} or triangulate.reused_work(work, fixed, 0.2) is None
    assert_same(triangulate.run(rig, fixed), triangulate.run(rig, fixed, swap_work=work))


def test_a_take_with_no_3d_point_is_an_error_naming_the_scores(tmp_path, capsys):
    """Every detection under triangulate.min_score (a detector scoring 0–0.15): triangulate wrote an empty take at
    INFO "0.0 % reconstructed", refine an empty one with no summary, and the fit said "nothing to fit"."""
    from pipeline_synth import synthetic_session

    from mocap.cli import main as cli
    from mocap.io.hdf5 import read_keypoints2d, write_keypoints2d
    from mocap.session import Session
    from mocap.stages import refine

    root = synthetic_session(tmp_path / "low", frames=40)
    path = Session(root).pose2d_h5
    kp = read_keypoints2d(path)
    data = kp.data.copy()
    data[..., 2] *= 0.15
    write_keypoints2d(Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps), path)
    assert cli(["triangulate", str(root)]) == 2
    err = capsys.readouterr().err
    assert "triangulate: no 3D point in 40 frames: keypoints at triangulate.min_score = 0.2 or more per camera " \
           "{'cam01': 0, 'cam02': 0, 'cam03': 0, 'cam04': 0} (highest score 0.15)" in err, err
    assert not Session(root).points3d("triangulated").exists()
    rig = Session(root).rig()
    empty = triangulate.run(rig, Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps))
    with pytest.raises(ValueError, match="refine: no triangulated point in the whole take"):
        refine.run(rig, kp, empty)


def test_blocks_of_points_give_the_points_of_one_block(monkeypatch):
    """Long takes are triangulated block by block (memory): with blocks of a few points, the same views and
    points (to rounding: another batch size, another order of sums) as in one block, with the swap repair's work
    and without it (outliers searched: the robust path)."""
    rig, kp, _, _ = swapped_take(120, swaps=0.05, n_cameras=6)  # 5 % outliers: every robust path taken
    fixed, work = repaired(rig, kp)
    whole = triangulate.run(rig, fixed), triangulate.run(rig, fixed, swap_work=work)
    assert np.isfinite(whole[0].xyz).mean() > 0.9
    monkeypatch.setattr(triangulation, "BLOCK", 97)  # not a divisor of the rows: a short last block
    blocked = triangulate.run(rig, fixed), triangulate.run(rig, fixed, swap_work=work)
    for a, b in zip(whole, blocked, strict=True):
        assert np.array_equal(a.views, b.views)
        np.testing.assert_allclose(a.xyz, b.xyz, rtol=0, atol=1e-12)  # NaN where NaN
        np.testing.assert_allclose(a.reproj_err, b.reproj_err, rtol=0, atol=1e-9)
