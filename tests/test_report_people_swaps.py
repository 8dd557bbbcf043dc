"""A take of several people: each person's camera table counts the left/right swaps repaired in that person's
views, not every person's of the camera (on the real two-person take, person1's table showed the 22 repairs
of person2's cam02 views as its own)."""

import json

from test_view_synth import two_person_session

from mocap import report
from mocap.io.hdf5 import read_points3d, write_points3d


def test_swaps_repaired_counted_per_person(tmp_path):
    session, _ = two_person_session(tmp_path / "two", frames=30)
    for name in ("triangulated", "refined"):
        path = session.points3d(name)
        if not path.is_file():
            continue
        pts = read_points3d(path)
        if name == "triangulated":  # the repair's record: rows [frame, view, person, groups]
            pts.info["swaps_repaired"] = {"cam01": 0, "cam02": 3, "cam03": 1, "cam04": 0}
            pts.info["swap_repairs"] = {"digest": "0", "groups": ["head", "arms", "legs"],
                                        "views": [[10, 1, 1, 7], [11, 1, 1, 7], [12, 1, 1, 7], [5, 2, 0, 2]]}
        else:  # refine's own finds, person2 in cam02
            pts.info["swaps"] = {"views": [[20, 1, 1, 6], [21, 1, 1, 6]],
                                 "per_camera": {"cam01": 0, "cam02": 2, "cam03": 0, "cam04": 0}}
        write_points3d(pts, path)
    m = report.build(session, cfg=report.Config(overlay_videos=False, worst_frames=0))
    counts = [{c: row["swaps_repaired"] for c, row in p["cameras"].items()} for p in m["persons"]]
    refined = session.points3d("refined").is_file()
    assert counts[0] == {"cam01": 0, "cam02": 0, "cam03": 1, "cam04": 0}
    assert counts[1] == {"cam01": 0, "cam02": 3 + 2 * refined, "cam03": 0, "cam04": 0}
    on_disk = json.loads((session.root / "report" / "metrics.json").read_text())
    assert on_disk["persons"][1]["cameras"]["cam02"]["swaps_repaired"] == counts[1]["cam02"]
    assert m["cameras"]["cam02"]["swaps_repaired"] == 0  # the top-level keys are the first person's
