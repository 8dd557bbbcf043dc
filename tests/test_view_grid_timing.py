"""``mocap view``: the grid shows each camera's video frame at its part's sync offset and draws through the pose a
camera had when it moved mid-take; the follow camera stays smooth when nobody is seen for a while."""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
from pipeline_synth import synthetic_session
from test_view_synth import write_videos

import mocap.view as view_mod
from mocap.geometry.camera_moves import CameraMove, project_moved
from mocap.io.camera_moves import moves_json
from mocap.session import Session
from mocap.stages import triangulate
from mocap.view import grid as grid_mod
from mocap.view.render import frame_views
from mocap.view.scene import CENTRE, Figure


def _take(root, frames: int = 30) -> Session:
    synthetic_session(root, frames=frames)
    s = Session(root)
    rig = s.rig()
    triangulate.write_outputs(triangulate.run(rig, s.keypoints2d(rig)), s.points3d("triangulated"))
    write_videos(s, frames + 10)
    return s


def test_the_grid_reads_each_part_of_a_camera_at_its_own_offset(tmp_path, monkeypatch):
    """sync.json's ``steps`` (frames lost mid-take: triangulate reads each part at its offset): the grid showed
    the first part's frame for the whole take (3D frame 20: video frame 20 instead of 23)."""
    s = _take(tmp_path / "steps")
    names = list(s.rig().names)
    (s.root / "sync.json").write_text(json.dumps({"reference": names[0], "offsets_frames": {n: 0.0 for n in names},
                                                  "steps": {names[1]: [[0, 0.0], [15, 3.0]]}}))
    shown = {}
    draw = grid_mod.draw_tile
    monkeypatch.setattr(grid_mod, "draw_tile", lambda canvas, box, img, cam, uv, figures, t, i:
                        shown.__setitem__((cam.name, t), i) or draw(canvas, box, img, cam, uv, figures, t, i))
    grid = view_mod.GridComposer(view_mod.load_scene(s.root), (960, 540))
    try:
        for t in (10, 20):
            grid.frame(t)
    finally:
        grid.close()
    assert [shown[(names[1], t)] for t in (10, 20)] == [10, 23]
    assert [shown[(names[0], t)] for t in (10, 20)] == [10, 20]
    assert grid_mod.offset_at(3, [[5, 1.0], [9, 2.0]], 0.0) == 1.0 and grid_mod.offset_at(7, None, -2.5) == -2.5


def test_the_grid_draws_a_camera_moved_mid_take_through_the_pose_it_had(tmp_path):
    """A camera panned 4° from frame 15 (the camera refinement's moves.json): the grid drew through the rig's pose
    (26.6 px off there), the report's overlay through the move's."""
    s = _take(tmp_path / "moved")
    rig = s.rig()
    given, ref = s.rig_path(), s.refined_rig_dir
    ref.mkdir(parents=True, exist_ok=True)
    (ref / "rig.toml").write_bytes(given.read_bytes())
    (ref / "report.json").write_text(json.dumps({"applied": True,
                                                 "given_rig_sha256": hashlib.sha256(given.read_bytes()).hexdigest()}))
    cam, a = rig[0], np.radians(4.0)
    T = cam.cam_from_world.copy()
    T[:3, :3] = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ T[:3, :3]
    (ref / "moves.json").write_text(moves_json([CameraMove(cam.name, 15, T, 4.0)]))
    assert s.camera_moves()
    scene = view_mod.load_scene(s.root)
    grid = view_mod.GridComposer(scene, (960, 540))
    grid.close()
    X = scene.figures[0].X
    d = np.linalg.norm(grid.uv[0][0] - project_moved(cam, s.camera_moves(), X, 0, 0.0), axis=-1)
    assert np.nanmax(d) < 1e-6
    assert np.nanmedian(np.linalg.norm(grid.uv[0][0][15:] - cam.project(X[15:]), axis=-1)) > 5  # it did move


def test_the_follow_camera_stays_smooth_when_the_performer_enters_late():
    """Nobody seen for over 6σ frames (a performer entering after 2 s) made the smoothing return its input for the
    whole take: the look-at point shook with the points' noise (0.06 → 50 mm/frame²); and frames with nobody
    printed numpy's inf − inf warning."""
    rng = np.random.default_rng(0)
    F, fps = 300, 30.0
    base = np.array([[0, 0, 0.0], [0, 0, 1.7], [0.3, 0, 1.0], [-0.3, 0, 1.0]])
    X = base[None] + np.c_[0.5 * np.arange(F) / fps, np.zeros((F, 2))][:, None] + rng.normal(0, 0.02, (F, 4, 3))

    def jerk(X: np.ndarray) -> float:
        fig = Figure("person1", X, ((0, 1), (1, 2), (1, 3)), np.full(3, CENTRE), ("a", "b", "c", "d"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            views = frame_views([fig], (1280, 720), 0.5, 0.26, fps)
        target = np.array([v.target for v in views])
        assert np.isfinite(target).all()
        return float(np.median(np.linalg.norm(np.diff(target[100:], 2, axis=0), axis=1)))

    late = X.copy()
    late[:60] = np.nan
    assert jerk(late) < 1.5 * jerk(X) + 1e-5 and jerk(late) < 1e-3
