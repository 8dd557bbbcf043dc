"""The view names a person the report judged likely no one (metrics.json persons' not_a_person) so, in its label and
legend; with no report, or one older than the 3D points, the names are as they are."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
from test_view_synth import two_person_session

from mocap.view import load_scene
from mocap.view.render import FONT, draw_hud, hud_origin, palette
from mocap.view.scene import LEFT


def test_a_person_the_report_doubts_is_named_so_in_the_view(tmp_path):
    session, _ = two_person_session(tmp_path / "take")
    assert [f.name for f in load_scene(session.root).figures] == ["person1", "person2"]
    metrics = session.root / "report" / "metrics.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps({"persons": [{"name": "person1"}, {"name": "person2", "not_a_person": {
        "missed": ["cam02", "cam03"], "seeing": ["cam01", "cam04"]}}]}))
    names = [f.name for f in load_scene(session.root).figures]
    assert names == ["person1", "person2 (not a person?)"]
    img = np.zeros((720, 1280, 3), np.uint8)
    draw_hud(img, 0, 45, 30.0, "take", load_scene(session.root).figures)
    colour = np.array(palette(1)[LEFT], np.uint8)  # the second person's left swatch, drawn after its name
    cols = np.flatnonzero(np.all(img == colour, axis=-1).any(axis=0))
    width = cv2.getTextSize(names[1], FONT, 0.55, 1)[0][0]
    assert cols.size and cols.min() > hud_origin(720, 1280)[0][0] + width, (cols.min(), width)
    points = session.points3d("triangulated")
    old = points.stat().st_mtime - 60
    os.utime(metrics, (old, old))  # a report older than the points: not theirs
    assert [f.name for f in load_scene(session.root).figures] == ["person1", "person2"]
