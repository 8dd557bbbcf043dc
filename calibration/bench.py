"""``mocap bench calibration``: rig accuracy on a synthetic ring against the truth and aniposelib.

Both calibrations get the identical detections (rendered board images run through our detector,
or projected corners with noise); errors are measured after the rigid alignment that fits each
rig to the truth best.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from dataclasses import asdict, dataclass

import numpy as np

from calibration.boards import Board, load_board
from calibration.calibrate import CalibrateConfig, calibrate
from calibration.compare import rig_errors
from calibration.detect import Detections
from calibration.synthetic import BoardTakeSpec, board_trajectory, make_rig, project_take, render_take
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.types import Camera, Rig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibBenchConfig:
    board: str = "charuco_a1"
    cameras: int = 6
    frames: int = 300
    render: bool = True  # False: projected corners with noise_px of noise
    noise_px: float = 0.3
    size: tuple[int, int] = (1920, 1080)
    seed: int = 0
    peers: bool = True


def _anipose_board(board: Board):
    from aniposelib.boards import CharucoBoard, Checkerboard

    if board.type == "checkerboard":
        return Checkerboard(board.corners_x, board.corners_y, board.square_size)
    bits, size = board.dictionary.removeprefix("DICT_").split("_")
    return CharucoBoard(board.squares_x, board.squares_y, board.square_size, board.marker_size,
                        marker_bits=int(bits.split("X")[0]), dict_size=int(size))


def anipose_calibrate(board: Board, dets: dict[str, Detections]) -> Rig:
    """aniposelib's CameraGroup.calibrate_rows on our detections."""
    from aniposelib.cameras import CameraGroup

    names = list(dets)
    group = CameraGroup.from_names(names)
    rows_all = []
    for cam, name in zip(group.cameras, names, strict=True):
        d = dets[name]
        cam.set_size(d.image_size)
        rows = []
        for f, pts in zip(d.frames, d.corners, strict=True):
            ok = np.flatnonzero(np.isfinite(pts[:, 0]))
            rows.append({"framenum": int(f), "corners": pts[ok].astype(np.float32)[:, None],
                         "ids": ok.astype(np.int32)[:, None]})
        rows_all.append(rows)
    with contextlib.redirect_stdout(io.StringIO()):
        group.calibrate_rows(rows_all, _anipose_board(board), verbose=False)
    cams = []
    for cam in group.cameras:
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = axis_angle_to_matrix(np.asarray(cam.get_rotation(), float)), cam.get_translation()
        cams.append(Camera(cam.get_name(), cam.get_camera_matrix(), np.asarray(cam.get_distortions()).ravel()[:5],
                           T, tuple(cam.get_size())))
    return Rig(tuple(cams))


def _summary(name: str, errors: dict, seconds: float) -> dict:
    out = {"method": name}
    for key in ("centre_mm", "rotation_deg", "focal_pct"):
        out[f"{key}_mean"], out[f"{key}_max"] = float(errors[key].mean()), float(errors[key].max())
    return {**out, "seconds": seconds}


def run(cfg: CalibBenchConfig, progress=None) -> dict:
    step = progress or (lambda name: None)
    board = load_board(cfg.board)
    spec = BoardTakeSpec(n_cameras=cfg.cameras, frames=cfg.frames, size=cfg.size, noise_px=cfg.noise_px, seed=cfg.seed)
    truth = make_rig(spec)
    poses = board_trajectory(board, spec)
    step("rendering and detecting" if cfg.render else "projecting corners")
    t0 = time.perf_counter()
    dets = render_take(board, truth, poses, spec) if cfg.render else project_take(board, truth, poses, spec)
    detect_s = time.perf_counter() - t0
    rows = []
    step("mocap calibrate")
    t0 = time.perf_counter()
    try:
        ours = calibrate(board, dets, CalibrateConfig())
    except ValueError as e:  # the synthetic board's path did not link every camera: more frames, not a re-shoot
        if "never share a board view" not in str(e) and "board views with" not in str(e):
            raise
        raise ValueError(f"bench calibration: {e} — in this synthetic take: {cfg.frames} frames are too few for "
                         f"{cfg.cameras} cameras, try --frames {max(100, 2 * cfg.frames)}") from None
    rows.append(_summary("mocap (intrinsics + full bundle adjustment)", rig_errors(ours.rig, truth),
                         time.perf_counter() - t0))
    result = {"config": asdict(cfg), "detect_seconds": detect_s,
              "views": {k: int(len(v.frames)) for k, v in dets.items()},
              "rms_px": ours.summary.final_rms_px, "usable": ours.summary.usable}
    if cfg.peers:
        try:
            step("aniposelib calibrate_rows")
            t0 = time.perf_counter()
            rig = anipose_calibrate(board, dets)
            rows.append(_summary("aniposelib calibrate_rows", rig_errors(rig, truth), time.perf_counter() - t0))
        except ImportError:
            log.warning("aniposelib is not installed (pip install -e '.[bench]'): peer row skipped")
    if len(rows) == 2:
        result["ratios"] = {k: rows[0][k] / rows[1][k] for k in ("centre_mm_mean", "rotation_deg_mean",
                                                                  "focal_pct_mean") if rows[1][k] > 0}
    result["rows"] = rows
    return result
