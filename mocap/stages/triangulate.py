"""Stage: 2D keypoints + rig → 3D points (robust, confidence-weighted DLT)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap.geometry.triangulation import triangulate
from mocap.io.hdf5 import write_points3d
from mocap.io.trc import write_trc
from mocap.keypoint_sets import body_keypoint_set, get_keypoint_set, hand_joints
from mocap.session import Session
from mocap.stages import Flag
from mocap.types import Keypoints2D, Points3D, Rig

log = logging.getLogger(__name__)
NAME = "triangulate"
HELP = "2D keypoints + rig → 3D points (robust DLT)"
STAGE = "triangulated"  # the output's name: points3d/triangulated.h5


@dataclass(frozen=True)
class Config:
    min_views: int = 2  # fewer views → NaN
    min_score: float = 0.2  # detections below this confidence are ignored
    max_reproj_px: float | None = 15.0  # views beyond this reprojection error are dropped; 0: plain DLT
    single_performer: bool = True  # several people per view: keep the one consistent across views and time
    repair_swaps: bool = True  # exchange back the left/right body sides a view got wrong (checked on the others)

    def __post_init__(self) -> None:
        if self.min_views < 2:
            raise ValueError(f"triangulate: min_views must be ≥ 2, got {self.min_views}")
        if self.max_reproj_px is not None and not self.max_reproj_px >= 0:
            raise ValueError(f"triangulate: max_reproj_px must be positive (0: plain DLT), got {self.max_reproj_px}")


FLAGS = (Flag("--max-reproj-px", "max_reproj_px", "drop views beyond this error (0: plain DLT)", float),)


def inputs(session: Session, settings) -> list[Path]:
    return session.keypoint_inputs()


def outputs(session: Session, settings) -> list[Path]:
    return [session.points3d(STAGE)]


def observation_weights(kp: Keypoints2D, min_score: float) -> np.ndarray:
    """(F, C, P, J) weights: the score where a detection is usable, else 0."""
    s = kp.score
    ok = np.isfinite(s) & (s >= min_score) & np.all(np.isfinite(kp.xy), axis=-1)
    return np.where(ok, np.maximum(s, 1e-6), 0.0)


def run(rig: Rig, kp: Keypoints2D, cfg: Config = Config()) -> Points3D:
    if tuple(kp.camera_names) != rig.names:
        raise ValueError(f"triangulate: keypoint cameras {list(kp.camera_names)} differ from rig {list(rig.names)}")
    F, C, P, J = kp.shape
    uv = np.moveaxis(kp.xy, 1, 3).reshape(-1, C, 2)  # (F·P·J, C, 2)
    w = np.moveaxis(observation_weights(kp, cfg.min_score), 1, 3).reshape(-1, C)
    t0 = time.perf_counter()
    X, err, views = triangulate(rig, uv, w, min_views=cfg.min_views, max_reproj_px=cfg.max_reproj_px or None)
    log.info("triangulated %d points in %.2fs (%.1f%% reconstructed)", X.shape[0], time.perf_counter() - t0,
             100 * np.mean(np.isfinite(X[:, 0])))
    points = Points3D(X.reshape(F, P, J, 3), err.reshape(F, P, J), views.reshape(F, P, J, C), rig.names,
                      kp.keypoint_set, kp.fps, {"stage": STAGE, "config": asdict(cfg)})
    check_hands(kp, points, cfg.min_score)
    return points


def check_hands(kp: Keypoints2D, points: Points3D, min_score: float) -> dict | None:
    """For a keypoint set with hands: each camera's share of frames with a usable hand keypoint, and the
    share of frames with a triangulated hand (``info["hands"]``); one warning when no view saw a hand in
    the whole take (the body is unaffected; fingers are then left to the fit's rest pose)."""
    hands = hand_joints(get_keypoint_set(kp.keypoint_set))
    if not hands.any():
        return None
    seen = observation_weights(kp, min_score)[..., hands] > 0  # (F, C, P, H)
    per_camera = {c: float(seen[:, i].any(axis=(1, 2)).mean()) for i, c in enumerate(kp.camera_names)}
    triangulated = float(np.isfinite(points.xyz[:, :, hands, 0]).any(axis=(1, 2)).mean())
    points.info["hands"] = {"frames_with_hands": per_camera, "triangulated": triangulated}
    if not seen.any():
        log.warning("hands: no hand keypoint in any view for the whole take (cameras %s); the hand points are "
                    "left empty, the body is unaffected", list(kp.camera_names))
    return points.info["hands"]


def write_outputs(points: Points3D, path: Path) -> Path:
    """HDF5 plus one TRC per person beside it."""
    write_points3d(points, path)
    names = get_keypoint_set(points.keypoint_set).joints
    P = points.xyz.shape[1]
    for p in range(P):
        suffix = "" if P == 1 else f"_person{p}"
        write_trc(path.with_name(f"{path.stem}{suffix}.trc"), points.xyz[:, p], names, points.fps)
    return path


def session_keypoints(session: Session, rig: Rig, single_performer: bool = True,
                      repair_swaps: bool | None = None) -> Keypoints2D:
    """The session's 2D keypoints, aligned in time by ``sync.json`` when present; with several people
    per view, only the performer when asked; left/right swaps repaired (``repair_swaps``; None: as the
    triangulate stage did, see :func:`read_session_keypoints`)."""
    return read_session_keypoints(session, rig, single_performer, repair_swaps)[0]


def read_session_keypoints(session: Session, rig: Rig, single_performer: bool = True,
                           repair_swaps: bool | None = None, cfg: Config | None = None) -> tuple[Keypoints2D, dict]:
    """:func:`session_keypoints` and what the swap repair did: {"swaps_repaired": {camera: views},
    "swap_repairs": the repairs themselves (reused by later readers of the same keypoints)}.

    ``cfg``: the triangulate settings; None: those ``points3d/triangulated.h5`` was made with, so refine
    and the report read the keypoints the points came from (its stored repairs are applied as they are
    while the keypoints are unchanged)."""
    from mocap.stages.sync import apply_offsets, read_offsets

    kp = session.keypoints2d(rig)
    offsets = read_offsets(session)
    if any(abs(v) > 1e-9 for v in offsets.values()):
        log.info("applying camera time offsets %s (frames)", {k: round(v, 2) for k, v in offsets.items()})
        kp = apply_offsets(kp, offsets)
    if single_performer and kp.shape[2] > 1:
        from mocap.detect.select import select_performer

        kp = select_performer(rig, kp)
    stored = None
    if cfg is None:
        cfg, stored = _recorded(session)
    if not (cfg.repair_swaps if repair_swaps is None else repair_swaps):
        return kp, {}
    from mocap.geometry.swaps import SwapConfig, repair_keypoints

    ks = get_keypoint_set(kp.keypoint_set)
    swap_cfg = SwapConfig(max_reproj_px=cfg.max_reproj_px or 15.0)
    if body_keypoint_set(ks.name) is not None and hand_joints(ks).any():
        return _repair_with_hands(rig, kp, ks, cfg.min_score, swap_cfg, stored)
    return repair_keypoints(rig, kp, ks, cfg.min_score, swap_cfg, stored)


def _repair_with_hands(rig: Rig, kp: Keypoints2D, ks, min_score: float, swap_cfg, stored) -> tuple[Keypoints2D, dict]:
    """Swap repair of a body + hands set: decided on the body's keypoints alone (exactly as for the body-only
    set), and a view's hands are exchanged with its arms (each hand was given the side of the nearest body
    wrist, so it swaps with them)."""
    from mocap.geometry.swaps import repair_keypoints

    body_ks = get_keypoint_set(body_keypoint_set(ks.name))
    n = len(body_ks.joints)
    body = Keypoints2D(kp.data[..., :n, :], kp.camera_names, body_ks.name, kp.fps)
    repaired, info = repair_keypoints(rig, body, body_ks, min_score, swap_cfg, stored)
    data = np.concatenate([repaired.data, kp.data[..., n:, :]], axis=3)
    record = info["swap_repairs"]
    if "arms" in record["groups"]:
        arms = record["groups"].index("arms")
        flip = np.asarray(ks.flip_permutation)
        hands = np.flatnonzero(hand_joints(ks))
        for f, c, p, bits in record["views"]:
            if (bits >> arms) & 1:
                data[f, c, p, hands] = kp.data[f, c, p, flip[hands]]
    return Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps), info


def _recorded(session: Session) -> tuple[Config, dict | None]:
    """The settings and stored swap repairs of the session's triangulated points (defaults when absent)."""
    from mocap.io.hdf5 import read_points3d

    path = session.points3d(STAGE)
    if not path.is_file():
        return Config(), None
    info = read_points3d(path).info
    known = {k: v for k, v in info.get("config", {}).items() if k in Config.__dataclass_fields__}
    try:
        cfg = Config(**known)
    except (TypeError, ValueError) as e:
        log.warning("%s: its triangulate settings are unreadable (%s); using the defaults", path, e)
        cfg = Config()
    return cfg, info.get("swap_repairs")


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    cfg = as_settings(settings).triangulate
    out = session.points3d(STAGE)
    if out.exists() and not overwrite:
        log.info("%s exists, skipping triangulation", out)
        return out
    rig = session.rig()
    kp, repairs = read_session_keypoints(session, rig, cfg.single_performer, cfg=cfg)
    points = run(rig, kp, cfg)
    points.info.update(repairs)
    return write_outputs(points, out)
