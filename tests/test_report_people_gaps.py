"""A take of several people: each person's fit gaps (``motion/<skeleton>_person<k>.gaps.json``) are in the
report (metrics.json's person, a "Gaps: person<k>" section), and a new fit of the people runs the report
again (it was skipped: its inputs named only the one-person ``<skeleton>.gaps.json``)."""

import json

import numpy as np
from test_multiperson_downstream import people, points, write_take

from mocap.keypoint_sets import get_keypoint_set
from mocap.pipeline import load_config, run_stages

STAGES = ["fit", "retarget", "export", "report"]


def test_each_persons_gaps_reported_and_a_new_fit_reruns_the_report(tmp_path):
    rig, kp, X = people(40, 2)
    X = X.copy()
    kps = get_keypoint_set("blazepose33")
    for j in ("left_hip", "right_hip"):  # person2's hips unseen in frames 10-24: the fit bridges them
        X[10:25, 1, kps.index(j)] = np.nan
    s = write_take(tmp_path / "take", rig, kp, points(X, rig.names))
    sets = ['export.formats=["bvh"]', "report.overlay_videos=false", "report.worst_frames=0"]
    r = run_stages(s, load_config(s, sets=sets)[0], only=STAGES, progress=False)
    assert r.ran == STAGES
    m = json.loads((s.root / "report" / "metrics.json").read_text())
    second = m["persons"][1]
    assert second["name"] == "person2" and "Hips" in second["gaps"]["joints"]
    a, b = second["gaps"]["joints"]["Hips"]["ranges"][0]
    assert a <= 10 and b >= 25
    assert "Hips" not in m["persons"][0].get("gaps", {}).get("joints", {})
    html = (s.root / "report" / "report.html").read_text()
    assert "<h2>Gaps: person2</h2>" in html and "<h2>Gaps: person1</h2>" in html
    # another skeleton fitted to the same points (its own gaps files): the report follows
    r = run_stages(s, load_config(s, sets=[*sets, "fit.skeleton=body52"])[0], only=STAGES, progress=False)
    assert r.status["fit"] == "ran" and r.status["report"] == "ran", r.status
    m = json.loads((s.root / "report" / "metrics.json").read_text())
    for p in (1, 2):
        assert m["persons"][p - 1]["gaps"] == json.loads((s.motion_dir / f"body52_person{p}.gaps.json").read_text())


def test_turns_the_continuity_pass_left_are_said_and_shown():
    """A thigh turning 88° in one frame and back 82° six frames later (a twist over a straight knee on the real
    Pose2Sim demo) reached the exports without a word: the fit now lists such turns (frame, degrees) in its log,
    its gaps file and the report."""
    from mocap.fit.continuity import left_turns
    from mocap.geometry.rotations import axis_angle_to_matrix
    from mocap.report import _gaps_html

    F = 12
    angle = np.zeros((F, 2))
    angle[:, 0] = np.linspace(0, 0.3, F)  # a slow turn: not listed
    angle[5:9, 1] = np.radians(88)  # in at frame 5, back at frame 9
    local = axis_angle_to_matrix(np.stack([np.zeros((F, 2)), np.zeros((F, 2)), angle], axis=-1))
    has = np.ones(F, bool)
    has[2] = False  # a frame without a fit: no step across it
    turns = left_turns(["Spine", "RightUpLeg"], local, has)
    assert turns == {"RightUpLeg": [[5, 88.0], [9, 88.0]]}, turns
    html = _gaps_html({"joints": {}, "turns": turns})
    assert "Joints turning over 45° from one frame to the next" in html and "5: 88°, 9: 88°" in html
    assert "Every joint was seen in every fitted frame" in html
    assert "turning" not in _gaps_html({"joints": {}, "turns": {}})


def test_keypoints_no_camera_saw_are_listed():
    """A right ear unseen for 14 frames: refine placed it (it drifted 229 mm), the fit followed it and turned the
    head 100°, and neither the gaps file nor the report said a word (the head joint counted as seen)."""
    from mocap.fit.gaps import unseen_keypoints
    from mocap.report import _gaps_html

    F, fps = 60, 60.0
    xyz = np.zeros((F, 3, 3))
    views = np.ones((F, 3, 4), bool)
    views[10:24, 2] = False  # unseen 14 frames: listed
    views[40:43, 1] = False  # 3 frames (under 0.1 s): not
    xyz[50:, 0] = np.nan  # missing in the points: not placed
    views[50:, 0] = False
    got = unseen_keypoints(["nose", "left_ear", "right_ear"], xyz, views, fps)
    assert got == {"right_ear": [(10, 24)]}, got
    html = _gaps_html({"joints": {}, "unseen_keypoints": {"right_ear": [[10, 24]]}})
    assert "Keypoints no camera saw for 0.1 s or longer" in html and "right_ear</td><td>10–23" in html
