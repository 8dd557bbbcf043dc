"""``calibration/refined/moves.json``: the cameras the rig_refine stage found moved mid-take
(:mod:`mocap.stages.rig_moves`)::

    {"format": "mocap-camera-moves", "version": 1,
     "moves": [{"camera": "cam02", "from_frame": 1000, "to_frame": null, "depth_m": 4.1,
                "cam_from_world": [[r00, r01, r02, tx], ..., [0, 0, 0, 1]]}]}

``cam_from_world`` is the camera's pose in frames ``from_frame`` … ``to_frame`` − 1 (null: to the end; world →
camera, metres), in the world of
``calibration/refined/rig.toml`` beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

from mocap.geometry.camera_moves import CameraMove
from mocap.io.rig_files import check_camera_name, matrix

FORMAT = "mocap-camera-moves"


def moves_json(moves: list[CameraMove] | tuple[CameraMove, ...]) -> str:
    return json.dumps({"format": FORMAT, "version": 1, "moves": [
        {"camera": m.camera, "from_frame": m.from_frame, "to_frame": m.to_frame, "depth_m": m.depth_m,
         "cam_from_world": m.cam_from_world.tolist()} for m in moves]}, indent=1)


def read_moves(path: str | Path) -> list[CameraMove]:
    """The moves in ``path`` (checked: a clear error names the file and the entry)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the camera moves: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("moves"), list):
        raise ValueError(f"{path}: not a camera moves file (format = {FORMAT!r} with a list of moves)")
    out = []
    for i, m in enumerate(data["moves"]):
        where = f"moves[{i}]"
        if not isinstance(m, dict):
            raise ValueError(f"{path}: {where} must be a table")
        name = check_camera_name(path, m.get("camera"), where)
        pose = matrix(path, where, "cam_from_world", m.get("cam_from_world"), (4, 4))
        try:
            out.append(CameraMove(name, m.get("from_frame"), pose, float(m.get("depth_m", float("nan"))),
                                  m.get("to_frame")))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {where}: {e}") from None
    return out
