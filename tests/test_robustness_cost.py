"""The cheaper robustness stages (issue 14's cost target): the sync lag search, the sub-frame errors, the
warm-started camera refinement and its motion check give what the direct computations give, and
``mocap bench robustness`` reports the cost and the accuracy."""

import json

import numpy as np
import pytest
from pipeline_synth import synthetic_session
from test_rig_refine import perturbed
from test_sync_significance import take

from mocap.bench.robustness import RobustnessBenchConfig, rig_errors
from mocap.geometry.epipolar import epipolar_px, essential, normalised
from mocap.session import Session
from mocap.stages import rig_refine, sync
from mocap.stages.sync_search import EpipolarPair, LagSearch, epipolar_lines, shift_tracks
from mocap.types import Keypoints2D


def exhaustive_lag(lines, nc, max_lag, use):
    """The median epipolar error over every reference frame of ``use`` at every lag: the best lag."""
    F = len(lines)
    best, best_e = 0, np.inf
    for d in range(-max_lag, max_lag + 1):
        t = np.flatnonzero(use)
        t = t[(t + d >= 0) & (t + d < F)]
        e = np.abs(np.sum(lines[t] * nc[t + d], axis=-1))
        e = e[np.isfinite(e)]
        if e.size >= 20 and np.median(e) < best_e:
            best, best_e = d, float(np.median(e))
    return best


@pytest.mark.parametrize("shift", [0.0, 3.0, -7.0])
def test_the_lag_search_finds_the_lag_of_the_exhaustive_search(shift):
    rig, kp = take({1: shift}, frames=360)
    xy = np.where(kp.score[..., None] >= 0.2, kp.xy, np.nan)[:, :, 0]
    n0, n1 = normalised(rig, 0, xy[:, 0]), normalised(rig, 1, xy[:, 1])
    lines = epipolar_lines(essential(rig, 0, 1), n0, rig[1].K[0, 0])
    search = LagSearch(lines, n1, 40)
    half = np.arange(360) < 180
    for use in (np.ones(360, bool), half, ~half):
        lag, error = search.best(use)
        assert lag == exhaustive_lag(lines, n1, 40, use) == round(shift), (lag, shift)
        assert 0 < error < 5


def test_sub_frame_errors_are_those_of_the_shifted_track():
    rig, kp = take({2: 0.4}, frames=200)
    xy = np.where(kp.score[..., None] >= 0.2, kp.xy, np.nan)[:, :, 0]
    sm = sync.smooth_tracks(xy)
    pair = EpipolarPair(rig, sm, 2)
    for d in (0.0, 0.4, -1.25, 2.0, 3.7):
        direct = epipolar_px(pair.E, pair.n_ref, shift_tracks(pair.n_c, d), pair.focal)
        assert np.allclose(pair.errors(d), direct, rtol=1e-9, atol=1e-9, equal_nan=True)
        assert np.array_equal(np.isnan(pair.errors(d)), np.isnan(direct))


def test_the_warm_start_lands_where_the_whole_adjustment_does(tmp_path):
    s = Session(synthetic_session(tmp_path / "take", frames=240))
    truth, kp = s.rig(), s.keypoints2d()
    bad = perturbed(truth)
    whole, r0 = rig_refine.run(bad, kp, rig_refine.Config(warm_points=0))
    warm, r1 = rig_refine.run(bad, kp, rig_refine.Config(warm_points=400))
    assert r0["applied"] and r1["applied"], (r0["reason"], r1["reason"])
    assert min(r0["points"], r1["points"]) > 2 * 400  # (a point that fails to triangulate is left out)
    for refined in (whole, warm):
        centres, rotations = rig_errors(refined, truth)
        assert centres.max() < 30 and rotations.max() < 0.3, (centres, rotations)
    centres, rotations = rig_errors(warm, whole)
    assert centres.max() < 2.0 and rotations.max() < 0.02, (centres, rotations)
    assert abs(r1["error_px"]["heldout_refined"] - r0["error_px"]["heldout_refined"]) < 0.02


def test_a_static_take_is_refused_for_too_little_motion(tmp_path):
    s = Session(synthetic_session(tmp_path / "take", frames=240))
    kp = s.keypoints2d()
    data = np.repeat(kp.data[:1], len(kp.data), axis=0)
    data[..., :2] += np.random.default_rng(0).normal(0, 0.5, data[..., :2].shape)
    refined, report = rig_refine.run(s.rig(), Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps))
    assert refined is None and report["refused"] and not report["applied"]
    assert "too little motion" in report["reason"] and "rig_refine.min_motion_m = 50 mm" in report["reason"]


def test_bad_settings_say_what_was_expected():
    with pytest.raises(ValueError, match="cameras must be ≥ 3.*got 2"):
        RobustnessBenchConfig(cameras=2)
    with pytest.raises(ValueError, match="repeats must be ≥ 1, got 0"):
        RobustnessBenchConfig(repeats=0)
    with pytest.raises(ValueError, match="blas_threads must be a whole number ≥ 0.*got -1"):
        RobustnessBenchConfig(blas_threads=-1)
    with pytest.raises(ValueError, match="warm_points ≥ 0; got .* -1"):
        rig_refine.Config(warm_points=-1)
    with pytest.raises(ValueError, match="polish_tolerance must be positive.*got 0.001, -1"):
        rig_refine.Config(polish_tolerance=-1)
    with pytest.raises(ValueError, match="warm_robust_iterations ≥ 0; got .*, -2"):
        rig_refine.Config(warm_robust_iterations=-2)
    with pytest.raises(ValueError, match="check_frames must be ≥ 1, got 0"):
        sync.Config(check_frames=0)


def test_the_last_sync_check_on_a_subsample_keeps_a_real_offset():
    rig, kp = take({1: 3.0}, frames=360)
    r = sync.run(rig, kp, sync.Config(check_frames=40))
    assert r["applied"] and abs(r["offsets_frames"]["cam02"] - 3.0) < 0.1
    px = r["triangulation_px"]
    assert px["with"] < px["without"], px


@pytest.mark.slow
@pytest.mark.shared_data
def test_bench_robustness_reports_cost_and_accuracy(shared_data, tmp_path, capsys):
    from mocap.cli import main

    out = tmp_path / "robustness.json"
    assert main(["bench", "robustness", "--frames", "400", "--swaps", "0.02", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rig_refine (added)" in printed and "chain off: triangulate alone + refine" in printed
    assert "cost end to end" in printed and "MPJPE" in printed
    r = json.loads(out.read_text())
    assert set(r["stages"]) == {"rig_refine", "sync", "swap_repair", "triangulate", "refine", "triangulate alone"}
    assert all(v["wall_s"] > 0 and v["cpu_s"] >= 0 for v in r["stages"].values())
    st = r["stages"]
    extra = sum(st[n]["cpu_s"] for n in ("rig_refine", "sync", "swap_repair"))
    base = st["triangulate alone"]["cpu_s"] + st["refine"]["cpu_s"]
    assert r["ratio_cpu"] == pytest.approx(extra / base)
    on = extra + st["triangulate"]["cpu_s"] + st["refine"]["cpu_s"]
    assert r["end_to_end_cpu"] == pytest.approx((on - base) / base)
    assert r["accuracy"]["triangulate_reuse_same_points"]
    a = r["accuracy"]
    assert a["rig_refine_applied"] and a["camera_centre_mm_max"] < 15 and a["camera_rotation_deg_max"] < 0.2
    assert a["given_rotation_deg_max"] > 1.0  # the rig it was given was moved
    assert a["mpjpe_ratio"] < 1.2 and a["swaps"]["swapped_views"] > 0 and a["swaps"]["repaired"] > 0.8
    assert a["sync_error_frames_max"] <= 0.25
    assert {"load_avg_1_5_15", "cpu_s", "machine"} <= set(r)
    assert r["config"]["blas_threads"] == 1 and "blas_threads_outside" in r and "OpenBLAS at 1 thread" in printed


def test_two_people_standing_still_apart_are_refused_for_too_little_motion(tmp_path):
    """all_people stacks every person along the frame axis: two still people a metre apart spread each joint
    by that metre, yet neither moves; the motion is each person's own."""
    from mocap.stages import triangulate

    s = Session(synthetic_session(tmp_path / "take", frames=240))
    rig, kp = s.rig(), s.keypoints2d()
    X = triangulate.run(rig, Keypoints2D(kp.data[:1], kp.camera_names, kp.keypoint_set, kp.fps)).xyz[0, 0]
    rng = np.random.default_rng(0)
    people = []
    for shift in ([0.0, 0.0, 0.0], [1.0, 0.0, 0.0]):
        uv = rig.project(X + shift)[None, :, None]  # (1, C, 1, J, 2)
        one = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], axis=-1)
        data = np.repeat(one, len(kp.data), axis=0)
        data[..., :2] += rng.normal(0, 0.5, data[..., :2].shape)
        people.append(data)
    both = Keypoints2D(np.concatenate(people, axis=0), kp.camera_names, kp.keypoint_set, kp.fps)
    refined, report = rig_refine.run(rig, both, persons=2)
    assert refined is None and report["refused"] and "too little motion" in report["reason"], report["reason"]
    assert report["frames"] == 2 * len(kp.data) and report["persons"] == 2  # frames: of every person
    moving = Keypoints2D(np.concatenate([people[0], kp.data[:, :, :1]], axis=0), kp.camera_names, kp.keypoint_set,
                         kp.fps)
    assert "too little motion" not in rig_refine.run(rig, moving, persons=2)[1]["reason"]  # one of them moves
