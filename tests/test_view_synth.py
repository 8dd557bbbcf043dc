"""Sessions for the view and report tests, built from synthetic motions: one person (every stage's
input), or two people (P = 2 on the persons axis of ``points3d``, per the multi-person contract: the
second enters late; each view's detections in a random order), with small synthetic videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from body_synth import blazepose_keypoints, body_motion

from mocap.io.capture import write_capture
from mocap.io.hdf5 import write_keypoints2d
from mocap.session import Session
from mocap.stages import triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.synth.groundtruth import SyntheticTake, write_session
from mocap.types import Keypoints2D, Points3D

FPS = 30.0
SECOND_ENTERS = 15  # person2 is absent in frames [0, SECOND_ENTERS)


def people_truth(frames: int) -> list[np.ndarray]:
    """Two performers' BlazePose keypoints (F, 33, 3), 1.6 m apart; the second NaN before it enters."""
    X1 = blazepose_keypoints(body_motion(frames, FPS, seed=0))
    X2 = blazepose_keypoints(body_motion(frames, FPS, seed=1, scale=0.95)) + np.array([1.6, 0.5, 0.0])
    X2[:SECOND_ENTERS] = np.nan
    return [X1, X2]


def two_person_session(root: Path, frames: int = 45, seed: int = 0) -> tuple[Session, list[np.ndarray]]:
    """Detections of both people in every view (order shuffled per view), the 3D points of each
    triangulated from its own detections and stored on the persons axis (F, 2, J, 3)."""
    truth = people_truth(frames)
    both = np.concatenate([X[np.isfinite(X).all(axis=(1, 2))] for X in truth])
    rig = ring_rig(RigSpec(n_cameras=4, size=(640, 360)), both.reshape(-1, 3))
    per = []
    for p, X in enumerate(truth):
        uv = np.moveaxis(rig.project(X), 0, 1)
        data, _ = corrupt(uv, rig, "blazepose33", CorruptionSpec(1.0, 0.0, 0.0, seed=seed + p))
        per.append(data)  # (F, C, 1, J, 3)
    data = np.concatenate(per, axis=2)
    rng = np.random.default_rng(seed)
    flip = rng.random(data.shape[:2]) < 0.5  # detection order of each view is arbitrary
    data[flip] = data[flip][:, ::-1]
    kp = Keypoints2D(data, rig.names, "blazepose33", FPS)
    root = write_session(SyntheticTake(rig, Keypoints2D(per[0], rig.names, "blazepose33", FPS), truth[0]), root,
                         json_2d=False)
    write_keypoints2d(kp, Path(root) / "pose2d.h5")
    session = Session(Path(root))
    pts = [triangulate.run(rig, Keypoints2D(d, rig.names, "blazepose33", FPS)) for d in per]
    xyz = np.stack([p.xyz[:, 0] for p in pts], axis=1)
    points = Points3D(xyz, np.stack([p.reproj_err[:, 0] for p in pts], 1), np.stack([p.views[:, 0] for p in pts], 1),
                      rig.names, "blazepose33", FPS,
                      {"stage": "triangulated", "config": {"repair_swaps": False}})
    triangulate.write_outputs(points, session.points3d("triangulated"))
    return session, truth


def fitted_people(session: Session, frames: int) -> None:
    """motion/body22_person{k}.npz for two people (the contract's per-person files)."""
    for k, (seed, shift) in enumerate(((0, (0.0, 0.0, 0.0)), (1, (1.6, 0.5, 0.0)))):
        m = body_motion(frames, FPS, seed=seed)
        m = type(m)(m.skeleton, m.rotations, m.root_positions + np.array(shift), m.fps)
        write_capture(session.motion(f"body22_person{k + 1}"), m)


def write_videos(session: Session, frames: int) -> None:
    """A small grey video per camera (the rig's image size), the frame number written on it."""
    rig = session.rig()
    (session.root / "videos").mkdir(exist_ok=True)
    for cam in rig:
        w, h = cam.size
        out = cv2.VideoWriter(str(session.root / "videos" / f"{cam.name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                              FPS, (w, h))
        for i in range(frames):
            img = np.full((h, w, 3), 90, np.uint8)
            cv2.putText(img, str(i), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
            out.write(img)
        out.release()


def test_two_person_session_has_both_people_on_the_persons_axis(tmp_path):
    from mocap.io.hdf5 import read_points3d

    session, truth = two_person_session(tmp_path / "two", frames=30)
    pts = read_points3d(session.points3d("triangulated"))
    assert pts.xyz.shape[:2] == (30, 2)
    assert not np.isfinite(pts.xyz[:SECOND_ENTERS, 1]).any() and np.isfinite(pts.xyz[SECOND_ENTERS:, 1]).all()
    for p in range(2):
        e = np.linalg.norm(pts.xyz[:, p] - truth[p], axis=-1)
        assert np.nanmedian(e) < 0.02  # each person triangulated from its own detections
