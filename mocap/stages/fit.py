"""Stage: 3D keypoints → subject skeleton and joint rotations (``motion/<skeleton>.npz``), and the frames
where each joint was unseen and bridged (``motion/<skeleton>.gaps.json``, for the report)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mocap.config import inline
from mocap.fit import FitConfig, FitSummary, fit_motion
from mocap.io.atomic import atomic_write_text
from mocap.io.capture import write_capture
from mocap.io.hdf5 import read_points3d
from mocap.keypoint_sets import get_keypoint_set
from mocap.session import Session, safe_name
from mocap.stages import Flag
from mocap.types import Motion, Points3D

log = logging.getLogger(__name__)
NAME = "fit"
HELP = "3D points → subject skeleton + joint rotations (motion/<skeleton>.npz, gaps in <skeleton>.gaps.json)"


@dataclass(frozen=True)
class Config:
    solver: FitConfig = inline(FitConfig)  # its keys are fit's: fit.skeleton, fit.accel_sigma, ...
    source: str = "refined"  # the 3D points fitted: points3d/<source>.h5 (refined | triangulated)
    person: int = 0

    def __post_init__(self) -> None:
        from mocap.config_files import preset_names

        safe_name(self.source, "fit.source")
        sk = self.solver.skeleton
        if not sk.endswith(".toml") and sk not in preset_names("skeletons"):
            raise ValueError(f"fit.skeleton: unknown skeleton {sk!r}: expected one of {preset_names('skeletons')} "
                             "or a .toml file")


FLAGS = (Flag("--skeleton", "skeleton", "skeleton preset or TOML file (default body22)", str),
         Flag("--source", "source", "3D points to fit", str, choices=("refined", "triangulated")),
         Flag("--symmetric", "symmetric", "left and right bones share their lengths"),
         Flag("--person", "person", "person index", int))


def skeleton_name(settings) -> str:
    """The fitted motion's name (``body22``): the stem of ``fit.skeleton``, which retarget, export, the
    report and the view follow."""
    return safe_name(Path(settings.fit.solver.skeleton).stem, "skeleton name", settings.fit.solver.skeleton)


def inputs(session: Session, settings) -> list[Path]:
    skeleton = Path(settings.fit.solver.skeleton)
    rig = [p for p in [session.rig_input()] if p.is_file()]  # the capture file carries the cameras
    return [session.points3d(settings.fit.source)] + ([skeleton] if skeleton.suffix == ".toml" else []) + rig


def gaps_path(session: Session, settings) -> Path:
    """``motion/<skeleton>.gaps.json``: per joint, the frame ranges where it was unseen and bridged."""
    return session.motion_dir / f"{skeleton_name(settings)}.gaps.json"


def outputs(session: Session, settings) -> list[Path]:
    return [session.motion(skeleton_name(settings)), gaps_path(session, settings)]


def gaps_json(summary: FitSummary, fps: float) -> str:
    """The fit's gap record: joint → half-open frame ranges [start, stop) and frame counts; with fingers,
    the frames each hand's fingers were held at rest."""
    joints = {n: {"ranges": [[a, b] for a, b in r], "frames": int(sum(b - a for a, b in r))}
              for n, r in summary.gap_frames.items()}
    return json.dumps({"frames": summary.frames, "fps": float(fps), "ranges": "half-open [start, stop) frame indices",
                       "bridged_frames": summary.bridged_frames, "empty_frames": summary.empty_frames,
                       "unseen_joints": summary.unseen_joints, "joints": joints,
                       # skeletons with fingers: per hand, the frames its fingers were eased to rest (unseen)
                       "fingers_at_rest": {h: [[a, b] for a, b in r] for h, r in summary.rest_frames.items()}},
                      indent=1) + "\n"


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


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    settings = as_settings(settings)
    cfg = settings.fit
    out = session.motion(skeleton_name(settings))
    if out.exists() and gaps_path(session, settings).exists() and not overwrite:
        log.info("%s exists, skipping the fit", out)
        return out
    src = session.points3d(cfg.source)
    if not src.is_file():
        maker = {"refined": "refine", "triangulated": "triangulate"}.get(cfg.source)
        raise FileNotFoundError(f"fit: {src} is missing" + (f"; the {maker} stage makes it (mocap {maker} "
                                                             f"{session.root})" if maker else ""))
    points = read_points3d(src)
    if not 0 <= cfg.person < points.xyz.shape[1] or not np.isfinite(points.xyz[:, cfg.person]).any():
        raise ValueError(f"{src}: no 3D point of person {cfg.person} in any frame; nothing to fit")
    motion, summary = run(points, cfg)
    if not summary.usable:
        log.warning("fit looks unusable: %s", summary)
    try:
        rig = session.rig()
    except (FileNotFoundError, ValueError):
        rig = None
    atomic_write_text(gaps_path(session, settings), gaps_json(summary, points.fps))
    names = get_keypoint_set(points.keypoint_set).joints
    videos = None
    if rig is not None:  # the cameras' videos, for the Blender add-on's camera backgrounds
        found = {p.stem: str(p.resolve()) for p in sorted((session.root / "videos").glob("*")) if p.is_file()}
        videos = [found.get(c, "") for c in rig.names]
    return write_capture(out, motion, rig, np.asarray(points.xyz[:, cfg.person]), names, videos)
