"""A camera whose footage is far darker than the others' (lens cap, exposure, lights): a camera that saw no one, or
is flagged, is told so before its other hints (the real demo with cam02's pixels × 0.1: "saw no one … unplugged,
the wrong video, pointed elsewhere?")."""

import cv2
import numpy as np

from mocap.report.cameras import UNSEEN_HINT
from mocap.report.dark import brightness, dark_cameras


def _video(path, level: float, frames: int = 12) -> None:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        out.write(np.clip(rng.normal(level, 10, (48, 64, 3)), 0, 255).astype(np.uint8))
    out.release()


def _tables():
    row = {"unseen": True, "flagged": False, "hint": UNSEEN_HINT}
    return [{"cam01": {"flagged": False}, "cam02": dict(row), "cam03": {"flagged": False},
             "cam04": {"flagged": True, "hint": "calibration? its error is high in 90% of frames"}}]


def test_a_dark_camera_that_saw_no_one_is_told_its_footage_is_dark(tmp_path):
    levels = {"cam01": 110, "cam02": 8, "cam03": 120, "cam04": 100}
    videos = {}
    for name, level in levels.items():
        _video(videos.setdefault(name, tmp_path / f"{name}.mp4"), level)
    assert abs(brightness(videos["cam02"], 12) - 8) < 3 and abs(brightness(videos["cam01"], 12) - 110) < 3
    tables = _tables()
    dark = dark_cameras(tables, videos, {n: 12 for n in levels})
    assert set(dark) == {"cam02"} and dark["cam02"]["others"] > 100, dark
    hint = tables[0]["cam02"]["hint"]
    b, others = dark["cam02"]["brightness"], dark["cam02"]["others"]
    assert hint.startswith(f"footage dark? its images' mean brightness is {b:.0f} of 255 against {others:.0f} in the "
                           "other cameras (lens cap, exposure or iris, lights on its side?)"), hint
    assert hint.endswith("; else: " + UNSEEN_HINT) and tables[0]["cam02"]["dark"] == dark["cam02"]
    assert tables[0]["cam04"]["hint"].startswith("calibration?")  # flagged, not dark: as it was


def test_cameras_equally_dim_or_bright_are_not_called_dark(tmp_path):
    videos = {}
    for name in ("cam01", "cam02", "cam03", "cam04"):  # a dim studio: every camera at 25
        _video(videos.setdefault(name, tmp_path / f"{name}.mp4"), 25)
    tables = _tables()
    assert dark_cameras(tables, videos, None) == {} and tables[0]["cam02"]["hint"] == UNSEEN_HINT
    assert dark_cameras([{"cam01": {"flagged": False}}], videos, None) == {}  # nobody unseen nor flagged: not read
