"""The verdict reads the take's worst frames, not only its medians: the refined body 0.5 m off in 15 of 600
frames (cameras agreeing: a glitch in the 3D, not one camera's) passed at a 4 mm median and a 9 mm P95."""

import dataclasses

import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.report.metrics import compute
from mocap.report.verdict import FRAMES_OFF_S, verdict
from mocap.stages import triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D

FRAMES, FPS = 600, 30.0


def _metrics(jump: slice | list | None):
    A = blazepose_keypoints(body_motion(FRAMES, FPS))
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), A.reshape(-1, 3))
    data, _ = corrupt(np.moveaxis(rig.project(A), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.0, 0.0, seed=0))
    kp = Keypoints2D(data, rig.names, "blazepose33", FPS)
    pts = triangulate.run(rig, kp)
    if jump is not None:
        xyz = np.array(pts.xyz)
        xyz[jump, 0] += [0.5, 0.0, 0.0]  # the whole body, its shape kept
        pts = dataclasses.replace(pts, xyz=xyz)
    return compute(rig, kp, pts)


def test_a_burst_of_frames_off_as_a_whole_fails_the_take_naming_them():
    m = _metrics(slice(400, 415))
    assert m["reprojection_mm"]["median"] < 10 and m["reprojection_mm"]["p95"] < 20  # the medians look healthy
    v = verdict(m, 30.0, 0.05, 0.9)
    assert not v["usable"], v["summary"]
    assert v["summary"].startswith("FAIL: 15 frames off as a whole, in runs of 3 or more (median reprojection at "
                                   "the person over 60 mm: frames 400–414; the worst"), v["summary"]
    off = next(f for f in v["failed"] if f["metric"] == "reprojection_mm.per_frame_median")
    assert off["frames"] == list(range(400, 415)) and off["value"] == 15 and off["threshold"] == 3
    assert off["limit_mm"] == 60


def test_fewer_frames_off_than_a_tenth_of_a_second_pass_and_a_clean_take_passes():
    assert int(np.ceil(FRAMES_OFF_S * FPS)) == 3
    assert verdict(_metrics(slice(400, 402)), 30.0, 0.05, 0.9)["usable"]  # 2 frames at 30 fps
    assert not verdict(_metrics(slice(400, 403)), 30.0, 0.05, 0.9)["usable"]
    assert verdict(_metrics([50, 51, 300, 550]), 30.0, 0.05, 0.9)["usable"]  # frames off here and there: no run
    clean = _metrics(None)
    assert verdict(clean, 30.0, 0.05, 0.9)["usable"]
    assert len(clean["reprojection_mm"]["per_frame_median"]) == FRAMES
