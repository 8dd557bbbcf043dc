"""An identity the tracker followed whose views never met as one body in triangulation (no point at all) is not a
person: said, named in metrics.json (``never_met``), left out of the take's verdict (:mod:`mocap.report.people`)."""

from __future__ import annotations

import dataclasses

import numpy as np
from test_view_synth import two_person_session

from mocap import report
from mocap.stages import triangulate


def test_an_identity_whose_views_never_met_is_not_a_person_and_does_not_fail_the_take(tmp_path, caplog):
    """A 12-camera, 5-person take of 6,000 frames: the tracker followed a seventh identity made of detections that are
    not people, whose views never met as one body in triangulation (no point: its record's frames_present 0), and
    the take failed ("person7: no 3D point in any frame (its reconstruction failed)") while its five people were
    reconstructed in full. Such an identity is said, not a person?, and left out of the take's verdict; one whose
    triangulation made points (refine left it empty) still fails it (above)."""
    import logging

    from mocap.io.hdf5 import read_points3d

    session, _ = two_person_session(tmp_path / "g", frames=45)
    cfg = report.Config(overlay_videos=False, worst_frames=0, max_bone_length_cv=0.2)
    pts = read_points3d(session.points3d("triangulated"))
    xyz, views = pts.xyz.copy(), pts.views.copy()
    xyz[:, 1], views[:, 1] = np.nan, False
    info = dict(pts.info)
    info["persons"] = [{"name": "person1", "frames_present": 45, "usable": True},  # triangulate's records
                       {"name": "person2", "frames_present": 0, "first": None, "last": None, "usable": False}]
    triangulate.write_outputs(dataclasses.replace(pts, xyz=xyz, views=views, info=info),
                              session.points3d("triangulated"))
    with caplog.at_level(logging.WARNING, logger="mocap"):
        m = report.build(session, cfg=cfg)
    assert m["verdict"]["usable"] and m["never_met"] == ["person2"], m["verdict"]
    assert m["persons"][1]["verdict"]["failed"][0]["text"] == ("person2: no 3D point in any frame (its detections "
                                                               "never met as one body: not a person?)")
    assert any(r.getMessage().startswith("person2: no 3D point in any frame: the detections followed as this identity "
                                         "never met as one body") for r in caplog.records)
    from mocap.cli.stages import no_points_line

    who = "person2 (0 of 45 frames): "
    assert no_points_line(who, "person2", m) == ("quality: person2 (0 of 45 frames): no 3D point: its detections "
                                                 "never met as one body: not a person?")  # not a NaN line
    assert no_points_line(who, "person2", {}).endswith("no 3D point: its reconstruction failed (see the log)")
