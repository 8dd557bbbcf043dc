"""More people requested than found is reported in metrics.json and report.html (it was only in the html's
table, and not at all when one person was found), and a one-person take without association is unchanged."""

import json

from pipeline_synth import synthetic_session
from test_view_synth import two_person_session

from mocap import report
from mocap.io.hdf5 import read_points3d, write_points3d
from mocap.session import Session
from mocap.stages import triangulate


def _with_association(session, requested, found):
    path = session.points3d("triangulated")
    pts = read_points3d(path)
    pts.info["association"] = {"persons_requested": requested, "persons_found": found, "tracks_dropped_short": 0,
                               "ms_per_frame": 4.370846099845949,
                               "persons_outside_volume": 0, "people": [{"frames_present": 30}] * found}
    write_points3d(pts, path)


def test_fewer_people_than_requested_reported(tmp_path):
    session, _ = two_person_session(tmp_path / "two", frames=30)
    _with_association(session, 3, 2)
    m = report.build(session, cfg=report.Config(overlay_videos=False, worst_frames=0))
    on_disk = json.loads((session.root / "report" / "metrics.json").read_text())
    assert on_disk["association"]["persons_requested"] == 3 and on_disk["association"]["persons_found"] == 2
    assert "people" not in m["association"]  # the plain values only
    html = (session.root / "report" / "report.html").read_text()
    assert "3 people requested (<code>detect.persons</code>), 2 found in the views: fewer tracks." in html
    assert "<td>ms_per_frame</td><td>4.37</td>" in html  # not 16 digits


def test_one_person_found_of_two_requested_and_one_person_takes_unchanged(tmp_path):
    s = Session(synthetic_session(tmp_path / "one", frames=30, fps=30.0))
    triangulate.main(s)
    m = report.build(s, cfg=report.Config(overlay_videos=False, worst_frames=0))
    assert "association" not in m and "Association of the people" not in (s.root / "report" / "report.html").read_text()
    _with_association(s, 2, 1)
    m = report.build(s, cfg=report.Config(overlay_videos=False, worst_frames=0))
    assert m["association"]["persons_found"] == 1 and "persons" not in m
    html = (s.root / "report" / "report.html").read_text()
    assert "2 people requested (<code>detect.persons</code>), 1 found" in html
