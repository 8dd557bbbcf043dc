"""A camera whose error changes partway through a take and stays changed (frames dropped: its time offset
changes; or bumped) is flagged with what to check, although its whole-take median and P95 look fine
(mocap.report.steps)."""

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.report.cameras import camera_table, flag_text
from mocap.report.steps import step_change
from mocap.report.verdict import verdict
from mocap.stages import refine, triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D

FRAMES, FPS, SIZE = 720, 60.0, (1280, 720)


def _series(bad: slice, factor: float = 4.0, n: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    others = rng.uniform(1.5, 3.0, n)
    own = others * rng.uniform(0.7, 1.3, n)
    own[bad] *= factor
    return own, others


def test_a_step_up_is_found_where_it_starts():
    own, others = _series(slice(600, None))
    step = step_change(own, others, 2.5, FPS)
    assert step is not None and step["later"] and step["first"] == 600 and step["last"] == 999
    assert step["good_first"] == 0 and step["good_last"] == 599
    assert step["bad"] > 2.5 * step["reference"] and step["good"] < 3.0


def test_a_bad_start_is_found_too():
    own, others = _series(slice(0, 300))
    step = step_change(own, others, 2.5, FPS)
    assert step is not None and not step["later"] and step["last"] == 299


@pytest.mark.parametrize("bad", [slice(300, 700), slice(0, None), slice(500, 530), slice(0, 0)])
def test_a_burst_a_bad_take_or_a_clean_one_is_no_step(bad):
    """A burst in the middle (swaps, another person) is not bad throughout either side; a camera bad all take
    long is the median rule's; a short burst and a clean camera are nothing."""
    own, others = _series(bad)
    assert step_change(own, others, 2.5, FPS) is None


def test_too_short_a_take_has_no_step():
    own, others = _series(slice(60, None), n=150)  # 2.5 s at 60 fps: each side must be ≥ 2 s
    assert step_change(own, others, 2.5, FPS) is None


def _take(fault: str | None, cam: int = 1, at: int = 400, k: int = 8):
    """4 cameras, camera ``cam`` from frame ``at`` on: "drop" — ``k`` frames lost (it shows later times); "bump"
    — its image moved by ``k`` pixels (panned)."""
    A = blazepose_keypoints(body_motion(FRAMES, FPS))
    rig = ring_rig(RigSpec(n_cameras=4, size=SIZE), A.reshape(-1, 3))
    data, _ = corrupt(np.moveaxis(rig.project(A), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.02, 0.05, seed=0))
    if fault == "drop":
        data[at:-k, cam] = data[at + k:, cam].copy()
        data[-k:, cam] = np.nan
    elif fault == "bump":
        data[at:, cam, ..., 0] += k
    kp = Keypoints2D(data, rig.names, "blazepose33", FPS)
    tri = triangulate.run(rig, kp, triangulate.Config(repair_swaps=False))
    points, _ = refine.run(rig, kp, tri, refine.Config(swaps=False))
    return camera_table(rig, kp, points)


def test_dropped_frames_flag_the_camera_and_fail_the_verdict():
    rows = _take("drop")
    row = rows["cam02"]
    assert row["flagged"] and row["flag"]["stat"] == "part_median_px", {n: r["hint"] for n, r in rows.items()}
    assert abs(row["step"]["first"] - 400) <= 60 and row["step"]["later"]
    assert row["hint"].startswith("frames dropped? its error is"), row["hint"]
    assert "median in frames" in flag_text("cam02", row)
    assert not any(r["flagged"] for n, r in rows.items() if n != "cam02")
    m = {"reprojection_mm": {"median": 5.0}, "bone_length_cv": {"mean": 0.01}, "reconstructed": {"points": 1.0},
         "cameras": rows}
    v = verdict(m, 20.0, 0.05, 0.9)
    assert not v["usable"] and "camera cam02 median in frames" in v["summary"], v["summary"]


def test_a_camera_bumped_mid_take_is_told_apart_from_dropped_frames():
    rows = _take("bump", k=40)
    row = rows["cam02"]
    assert row["flagged"] and row["flag"]["stat"] == "part_median_px", {n: r["hint"] for n, r in rows.items()}
    assert row["hint"].startswith("camera moved mid-take?"), row["hint"]


def test_a_clean_take_flags_no_step():
    assert not any(r["flagged"] for r in _take(None).values())


def test_a_step_flag_states_the_figures_it_was_decided_on():
    """The step is decided on the median of per-frame ratios; the flag stated the camera's median against ratio ×
    the others' median over those frames, another statistic: "median in frames 600–1199 6.65 px > 21.6 px"."""
    rng = np.random.default_rng(0)
    F = 1200
    own, others = np.full(F, 1.0), np.full(F, 1.0)
    late = np.arange(600, F)
    bad = late[rng.random(len(late)) < 0.6]  # the camera 2.6 × the others, who err 1-10 px
    good = np.setdiff1d(late, bad)  # the others 10 px there, this camera 1 px
    x = rng.uniform(1, 10, len(bad))
    own[bad], others[bad] = 2.6 * x, x
    own[good], others[good] = 1.0, 10.0
    err = np.repeat(np.stack([own, others, others, others], axis=1)[:, :, None], 3, axis=2)  # (F, C, J): 3 joints
    rows = {f"cam0{i}": {"median_px": 1.0, "flagged": False} for i in range(1, 5)}
    from mocap.report.steps import flag_steps

    flag_steps(rows, err, np.ones_like(err), np.ones((F, 4)), 2.5, 30.0, 1.0, 0.5)
    flag, step = rows["cam01"]["flag"], rows["cam01"]["step"]
    assert step["ratio_median"] > 2.5 and flag["ratio_median"] == step["ratio_median"]
    assert flag["value"] > flag["threshold"]
    assert np.isclose(flag["threshold"], 2.5 * flag["value"] / step["ratio_median"])
    assert flag["reference"] == step["reference"]  # the others' median there, as the hint says
    assert f"{step['ratio_median']:.2f}× the other cameras frame by frame" in flag_text("cam01", rows["cam01"])
    m = {"reprojection_mm": {"median": 5.0}, "bone_length_cv": {"mean": 0.01}, "reconstructed": {"points": 1.0},
         "cameras": rows}
    said = verdict(m, 20.0, 0.05, 0.9)["summary"]
    assert f"> {flag['threshold']:.3g} px ({step['ratio_median']:.2f}× the other cameras frame by frame, over 2.5×" \
        in said, said
