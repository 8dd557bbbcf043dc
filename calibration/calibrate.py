"""Rig calibration from board detections: intrinsics → PnP → pose graph → bundle adjustment →
world frame. Pure: takes detections, returns the rig and everything the report needs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from calibration.boards import Board
from calibration.bundle import BundleConfig, BundleSummary, Observations, bundle_adjust, squared_errors
from calibration.detect import Detections
from calibration.extrinsics import board_poses, initial_board_poses, initial_rig, inverse
from calibration.intrinsics import Intrinsics, calibrate_intrinsics
from mocap.io.video import SIZE_TOLERANCE
from mocap.types import Camera, Rig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrateConfig:
    model: str = "pinhole"  # pinhole | fisheye
    max_intrinsic_views: int = 40
    min_intrinsic_views: int = 5
    min_corners: int = 6
    min_shared_views: int = 3
    world: str = "camera"  # "camera" (first camera, Z up along its image up), "camera:NAME", "board:FRAME"
    bundle: BundleConfig = field(default_factory=BundleConfig)

    def __post_init__(self) -> None:  # the world's form checked now, not after detection and bundle adjustment
        kind, _, arg = str(self.world).partition(":")
        if kind not in ("camera", "board") or (kind == "board" and arg and not arg.isdigit()):
            raise ValueError(f"calibrate: world must be 'camera', 'camera:NAME' or 'board:FRAME' (a frame number), "
                             f"got {self.world!r}")


@dataclass(frozen=True)
class Calibration:
    rig: Rig
    intrinsics: dict[str, Intrinsics]
    summary: BundleSummary
    view_rms: dict[str, dict[int, float]]  # camera → frame → RMS reprojection error (px)
    views_used: dict[str, int]
    board_poses: dict[int, np.ndarray]  # frame → world_from_board


def check_detections(dets: dict[str, Detections], board: Board) -> None:
    """Clear errors for boards never found or ids that do not belong to the board."""
    for cam, d in dets.items():
        if d.foreign_ids and (len(d.frames) == 0 or d.foreign_frames > 0.2 * max(len(d.frames), 1)):
            raise ValueError(f"camera {cam!r}: markers {list(d.foreign_ids)[:10]} were seen but board "
                             f"{board.name!r} has no such ids: the board definition does not match the printed "
                             "board (dictionary, squares, legacy pattern?)")
        if len(d.frames) == 0:
            raise ValueError(f"camera {cam!r}: board {board.name!r} never detected in {d.searched} frames searched; "
                             "check the board definition (type, corners, dictionary) and the lighting/focus")


def sized_intrinsics(name: str, cam: Camera, size: tuple[int, int]) -> np.ndarray:
    """K (3, 3) of intrinsics calibrated on ``cam.size`` images, for the board take's images of ``size``: the same
    within 10 % each way (codec padding: 1080 against 1088 rows), scaled when the take is the same shape at
    another resolution, else a clear error (the take another camera's, or turned; its focal and principal point
    were used unchecked: a principal point off the image)."""
    (w0, h0), (w, h) = cam.size, size
    if abs(w / w0 - 1) <= SIZE_TOLERANCE and abs(h / h0 - 1) <= SIZE_TOLERANCE:
        return cam.K
    s = w / w0
    if abs(h / h0 / s - 1) > 0.01:
        raise ValueError(f"calibrate: camera {name!r}: its intrinsics are for {w0}×{h0} images, its board take is "
                         f"{w}×{h}: another camera's intrinsics, or the take turned?")
    K = np.array(cam.K, float)
    K[:2, :2] *= s
    K[:2, 2] = (K[:2, 2] + 0.5) * s - 0.5  # pixel centres at integer coordinates in both
    return K


def calibrate(board: Board, dets: dict[str, Detections], cfg: CalibrateConfig = CalibrateConfig(),
              intrinsics: dict[str, Camera] | None = None) -> Calibration:
    """Calibrate the rig. ``intrinsics`` (camera name → Camera) skips the intrinsic step and keeps
    them fixed in the bundle adjustment."""
    check_detections(dets, board)
    names = list(dets)
    intr: dict[str, Intrinsics] = {}
    cams0: dict[str, Camera] = {}
    for name in names:
        d = dets[name]
        if intrinsics and name in intrinsics:
            c = intrinsics[name]
            cams0[name] = Camera(name, sized_intrinsics(name, c, d.image_size), c.dist, np.eye(4), d.image_size,
                                 c.model)
        else:
            intr[name] = calibrate_intrinsics(board, d, cfg.model, cfg.max_intrinsic_views, cfg.min_intrinsic_views)
            i = intr[name]
            cams0[name] = Camera(name, i.K, i.dist, np.eye(4), i.size, i.model)
    poses = {n: board_poses(board, dets[n], cams0[n], cfg.min_corners) for n in names}
    rig0, root = initial_rig(poses, cfg.min_shared_views)
    boards0 = initial_board_poses(poses, rig0)
    frames = np.array(sorted(boards0))
    frame_index = {f: i for i, f in enumerate(frames)}
    cam_idx, view_idx, corner_idx, uv = [], [], [], []
    for c, n in enumerate(names):
        d = dets[n]
        for f, pts in zip(d.frames, d.corners, strict=True):
            if int(f) not in poses[n]:
                continue
            ok = np.flatnonzero(np.isfinite(pts[:, 0]))
            cam_idx.append(np.full(ok.size, c))
            view_idx.append(np.full(ok.size, frame_index[int(f)]))
            corner_idx.append(ok)
            uv.append(pts[ok])
    obs = Observations(np.concatenate(cam_idx), np.concatenate(view_idx), np.concatenate(corner_idx),
                       np.concatenate(uv))
    cams = [cams0[n].with_pose(rig0[n]) for n in names]
    bcfg = cfg.bundle
    if intrinsics:
        fixed = [n for n in names if n in intrinsics]
        if len(fixed) == len(names):
            bcfg = replace(bcfg, free_intrinsics=())
        elif fixed:
            log.warning("intrinsics given for %s only; all intrinsics are refined", fixed)
    reference = names.index(root)
    cams, bposes, keep, summary = bundle_adjust(cams, np.stack([boards0[f] for f in frames]),
                                                board.object_points, obs, reference, bcfg)
    world_from_ref = _world_frame(cfg.world, cams, names, bposes, frames)
    ref_from_world = inverse(world_from_ref)
    rig = Rig(tuple(c.with_pose(c.cam_from_world @ ref_from_world) for c in cams))
    view_rms: dict[str, dict[int, float]] = {n: {} for n in names}
    err = squared_errors(cams, bposes, board.object_points, obs)
    for c, n in enumerate(names):
        for v in np.unique(obs.view[obs.cam == c]):
            m = (obs.cam == c) & (obs.view == v) & keep
            if m.any():
                view_rms[n][int(frames[v])] = float(np.sqrt(np.mean(err[m])))
    used = {n: len(view_rms[n]) for n in names}
    return Calibration(rig, intr, summary, view_rms, used,
                       {int(f): world_from_ref @ bposes[i] for i, f in enumerate(frames)})


def _world_frame(spec: str, cams: list[Camera], names: list[str], bposes: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """world ← reference transform. Z is up in every choice."""
    kind, _, arg = spec.partition(":")
    if kind == "board":
        f = int(arg) if arg else int(frames[0])
        if f not in set(frames.tolist()):
            raise ValueError(f"world frame: board view {f} was not seen by any calibrated camera")
        ref_from_board = bposes[int(np.flatnonzero(frames == f)[0])]
        # board lying face up: its z points into the floor → world axes x, −y, −z of the board
        flip = np.diag([1.0, -1.0, -1.0, 1.0])
        return flip @ inverse(ref_from_board)
    if kind == "camera":
        name = arg or names[0]
        if name not in names:
            raise ValueError(f"world frame: unknown camera {name!r}; cameras are {names}")
        cam_from_ref = cams[names.index(name)].cam_from_world
        # world at the camera centre, X = camera x, Z = −camera y (image up), Y = Z × X
        axes = np.eye(4)
        axes[:3, :3] = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # world_from_cam rotation rows
        return axes @ cam_from_ref
    raise ValueError(f"world frame must be 'camera', 'camera:NAME' or 'board:FRAME', got {spec!r}")
