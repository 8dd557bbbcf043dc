"""A "person" only two cameras detect while the others, with it in view, detect everyone else: likely no one
(mocap.report.people.not_a_person)."""

from __future__ import annotations

import numpy as np


def test_a_person_only_two_cameras_see_while_the_others_see_everyone_else_is_said_to_be_no_one():
    """Three "people" in 6 cameras, the third detected by cam01 and cam04 only (two cameras' clutter meeting in 3D)
    while the other 4 have it in view and detect the two others: their rows say "not a person?" and name the two
    cameras; the person is marked ``not_a_person``. Where those cameras miss another person too (their videos,
    their names), the rows keep the camera hint."""
    from body_synth import blazepose_keypoints, body_motion

    from mocap.report.cameras import camera_table
    from mocap.report.people import no_one_hint, not_a_person
    from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
    from mocap.types import Keypoints2D, Points3D

    F, fps, C = 120, 60.0, 6
    X = np.stack([blazepose_keypoints(body_motion(F, fps, seed=s)) + [0.9 * s - 0.9, 0.6 * (s == 2), 0]
                  for s in (0, 1, 2)], 1)
    rig = ring_rig(RigSpec(n_cameras=C), X.reshape(-1, 3))
    uv = np.moveaxis(rig.project(X.reshape(F, -1, 3)), 0, 1).reshape(F, C, 3, -1, 2)
    data = np.stack([corrupt(uv[:, :, p], rig, "blazepose33", CorruptionSpec(1.0, 0.0, 0.0, seed=p))[0][:, :, 0]
                     for p in (0, 1, 2)], axis=2)  # (F, C, 3, J, 3)
    data[:, [1, 2, 4, 5], 2] = np.nan  # the third only in cam01 and cam04
    pts = Points3D(X, np.zeros(X.shape[:3]), np.ones(X.shape[:3] + (C,), bool), rig.names, "blazepose33", fps, {})
    kp = Keypoints2D(data, rig.names, "blazepose33", fps)
    per = [{"cameras": camera_table(rig, kp, pts, p)} for p in range(3)]
    assert all(per[2]["cameras"][n]["missed"] for n in ("cam02", "cam03", "cam05", "cam06"))
    not_a_person(per)
    assert per[2].get("not_a_person") and not per[0].get("not_a_person") and not per[1].get("not_a_person")
    hint = per[2]["cameras"]["cam03"]["hint"]
    assert "not a person?" in hint and "Only cam01 and cam04 saw it" in hint and "its view (cam03 100%" in hint, hint
    assert per[2]["not_a_person"] == {"missed": ["cam02", "cam03", "cam05", "cam06"], "seeing": ["cam01", "cam04"]}
    line = no_one_hint(per[2]["cameras"], per[2]["not_a_person"]["missed"], ["cam01", "cam04"])  # mocap run's line
    assert "their view (cam02 100%, cam03 100%, cam05 100%, cam06 100% of the frames), while they detect" in line
    data[:, [1, 2], 0] = np.nan  # cam02 and cam03 never see the first person either: the cameras, not the "person"
    kp = Keypoints2D(data, rig.names, "blazepose33", fps)
    per = [{"cameras": camera_table(rig, kp, pts, p)} for p in range(3)]
    not_a_person(per)
    assert not per[2].get("not_a_person") and "not a person?" not in per[2]["cameras"]["cam03"]["hint"]
