"""Stage: 3D keypoints → subject skeleton and joint rotations (``motion/<skeleton>.npz``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mocap.fit import FitConfig, FitSummary, fit_motion
from mocap.io.capture import write_capture
from mocap.io.hdf5 import read_points3d
from mocap.keypoint_sets import get_keypoint_set
from mocap.session import Session
from mocap.types import Motion, Points3D

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    solver: FitConfig = field(default_factory=FitConfig)
    source: str = "refined"  # points3d stage to fit (refined: refine runs first when its output is missing)
    person: int = 0


def run(points: Points3D, cfg: Config = Config()) -> tuple[Motion, FitSummary]:
    F, P = points.xyz.shape[:2]
    if not 0 <= cfg.person < P:
        raise ValueError(f"fit: person {cfg.person} not in the points (persons: {P})")
    xyz = points.xyz[:, cfg.person]
    solver = cfg.solver
    if points.info.get("stage") == "refined" and solver.smooth:
        solver = replace(solver, smooth=False)  # refine already applied the same acceleration prior
        log.info("fitting refined points: the fit's own smoothing is skipped")
    return fit_motion(xyz, points.keypoint_set, points.fps, solver)


def main(session: Session | str | Path, cfg: Config = Config(), overwrite: bool = False) -> Path:
    session = session if isinstance(session, Session) else Session(Path(session))
    out = session.motion(Path(cfg.solver.skeleton).stem)
    if out.exists() and not overwrite:
        log.info("%s exists, skipping the fit", out)
        return out
    src = session.points3d(cfg.source)
    if not src.is_file():
        from mocap.stages import refine

        src = refine.main(session) if cfg.source == "refined" else src
    if not src.is_file():
        raise FileNotFoundError(f"session {session.root}: no 3D points {src} (run triangulate / refine first)")
    points = read_points3d(src)
    motion, summary = run(points, cfg)
    if not summary.usable:
        log.warning("fit looks unusable: %s", summary)
    try:
        rig = session.rig()
    except (FileNotFoundError, ValueError):
        rig = None
    names = get_keypoint_set(points.keypoint_set).joints
    videos = None
    if rig is not None:  # the cameras' videos, for the Blender add-on's camera backgrounds
        found = {p.stem: str(p.resolve()) for p in sorted((session.root / "videos").glob("*")) if p.is_file()}
        videos = [found.get(c, "") for c in rig.names]
    return write_capture(out, motion, rig, np.asarray(points.xyz[:, cfg.person]), names, videos)
