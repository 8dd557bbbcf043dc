"""Stage ``calibrate`` (a plugin of the mocap pipeline through the ``mocap.stages`` entry point): find
the board take, detect, calibrate, write ``calibration/rig.toml`` + ``calibration.toml`` + ``report/``.

It runs only when the session has a board take and no rig file, or a rig this stage wrote (redone when
the take or the settings change); a rig the user brought is never overwritten.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mocap.io.rig_files import read_rig, write_anipose_toml, write_rig
from mocap.session import Session
from mocap.stages import Flag
from mocap.types import Camera, Rig

if TYPE_CHECKING:
    from calibration.calibrate import CalibrateConfig

# the boards, the corner search and the solvers (OpenCV, 0.2 s) are imported where a calibration runs: every
# command imports this module (the pipeline's first stage) to build its parser

log = logging.getLogger(__name__)
NAME = "calibrate"
HELP = "board videos → calibrated rig (intrinsics, extrinsics, bundle adjustment)"


@dataclass(frozen=True)
class Config:
    board: str = ""  # board preset (configs/boards) or TOML; "": SESSION/calibration/board.toml
    stride: int = 1  # search every N-th frame
    model: str = "pinhole"  # pinhole | fisheye
    world: str = "camera"  # camera (first camera, Z up), camera:NAME, or board:FRAME (board on the floor)
    free: tuple[str, ...] = ()  # intrinsics refined in the bundle adjustment; (): fx,fy,cx,cy,k1,k2,p1,p2,k3
    intrinsics_only: bool = False  # only intrinsics, one camera at a time (writes calibration/intrinsics.toml)
    intrinsics: str = ""  # a rig file whose intrinsics are kept: solve the extrinsics only

    def __post_init__(self) -> None:
        if self.model not in ("pinhole", "fisheye"):
            raise ValueError(f"calibrate: model must be pinhole or fisheye, got {self.model!r}")
        if self.stride < 1:
            raise ValueError(f"calibrate: stride must be ≥ 1, got {self.stride}")
        from calibration.bundle import DIST_NAMES
        from calibration.calibrate import CalibrateConfig

        CalibrateConfig(world=self.world)  # its form checked when the settings are read, also where a rig is given

        known = ("fx", "fy", "cx", "cy", *DIST_NAMES[self.model])  # checked now, not after the board's detection
        unknown = [f for f in self.free if f not in known]
        if unknown:
            raise ValueError(f"calibrate: free has {', '.join(map(repr, unknown))}, not an intrinsic of the "
                             f"{self.model} model; choose among {','.join(known)}")


FLAGS = (Flag("--board", "board", "board preset or TOML (default: SESSION/calibration/board.toml)", str),
         Flag("--model", "model", "camera model", str, choices=("pinhole", "fisheye")),
         Flag("--stride", "stride", "search every N-th frame", int),
         Flag("--world", "world", "world frame: camera, camera:NAME, or board:FRAME (board on the floor)", str),
         Flag("--intrinsics-only", "intrinsics_only", "only intrinsics, one camera at a time"),
         Flag("--intrinsics", "intrinsics", "rig file whose intrinsics are kept; solve extrinsics only", str),
         Flag("--free", "free", "comma-separated intrinsics refined in the bundle adjustment",
              lambda text: [f.strip() for f in text.split(",") if f.strip()]))


def _rig_file(s: Session) -> Path | None:
    try:
        return s.rig_path()
    except FileNotFoundError:
        return None


def needed(s: Session, settings) -> str | None:
    from mocap.pipeline_state import load_state

    cfg = settings.calibrate
    rig = _rig_file(s)
    board = (s.calibration_dir / "board").exists()
    if cfg.intrinsics_only:  # the photos in calibration/intrinsics/<camera>/ are enough (board/ was asked for)
        if not board and not (s.calibration_dir / "intrinsics").is_dir():
            raise FileNotFoundError(f"session {s.root}: --intrinsics-only needs each camera's board images in "
                                    f"{s.calibration_dir / 'intrinsics'}/<camera>/ (or videos in "
                                    f"{s.calibration_dir / 'board'}/<camera>.mp4)")
        return None
    if rig is None and not board:
        raise FileNotFoundError(f"session {s.root}: missing calibration: put a rig file in {s.calibration_dir} "
                                f"(rig.toml, calibration.toml, Calib*.toml, *.qca.txt, intri.yml) or the board "
                                f"take in {s.calibration_dir / 'board'}/<camera>.mp4 to calibrate")
    if rig is None:
        return None
    ours = load_state(s).get(NAME, {}).get("status") in ("done", "started")
    if board and rig.name == "rig.toml" and ours:
        return None  # a rig this pipeline calibrated: redone when the board take or the settings change
    return f"rig given ({rig.name})"  # never overwrite a rig the user brought


def inputs(s: Session, settings) -> list[Path]:
    cfg = settings.calibrate
    extra = [Path(p) for p in (cfg.board, cfg.intrinsics) if p.endswith((".toml", ".yml", ".txt"))]
    board_file = [p for p in [s.calibration_dir / "board.toml"] if p.exists()]
    intr = [p for p in [s.calibration_dir / "intrinsics"] if p.is_dir()]
    take = [] if cfg.intrinsics_only and intr else [s.calibration_dir / "board"]  # intrinsics only: its photos
    return take + intr + board_file + extra


def outputs(s: Session, settings) -> list[Path]:
    return [s.calibration_dir / ("intrinsics.toml" if settings.calibrate.intrinsics_only else "rig.toml")]


def run(board, detections: dict, cfg: CalibrateConfig, given: dict | None = None):
    """The pure computation: see :func:`calibration.calibrate.calibrate`."""
    from calibration.calibrate import calibrate

    return calibrate(board, detections, cfg, given)


def summary(s: Session, settings) -> list[str]:
    """Lines for the terminal after ``mocap calibrate``: per-camera RMS and the verdict."""
    import json

    if settings.calibrate.intrinsics_only:  # not the last full calibration's report.json
        report = s.calibration_dir / "report" / "intrinsics.json"
        if not report.is_file():
            return []
        return [f"  {name}: RMS {cam['rms_px']:.3f} px, {cam['views_used']} views, f = {cam['fx']:.1f} px"
                for name, cam in json.loads(report.read_text())["cameras"].items()] + [
                f"intrinsics only (no camera poses) — report: {report}"]
    report = s.calibration_dir / "report" / "report.json"
    if not report.is_file():
        return []
    data = json.loads(report.read_text())
    lines = []
    for name, cam in data["cameras"].items():
        rms = cam["rms_px"] if cam["rms_px"] is not None else cam["intrinsics_rms_px"]
        lines.append(f"  {name}: RMS {rms:.3f} px, {cam['views_used']} views, f = {cam['fx']:.1f} px")
    lines.append(f"{'usable' if data['usable'] else 'NOT usable'}: {data['message']} — report: {report.parent}")
    return lines


def main(session: str | Path | Session, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config."""
    from calibration.bundle import BundleConfig
    from calibration.calibrate import CalibrateConfig
    from mocap.settings import as_settings

    c = as_settings(settings).calibrate
    bundle = BundleConfig(free_intrinsics=tuple(c.free)) if c.free else BundleConfig()
    cfg = CalibrateConfig(model=c.model, world=c.world, bundle=bundle)
    root = session.root if isinstance(session, Session) else Path(session)
    return calibrate_session(root, cfg, c.board or None, c.stride, c.intrinsics_only, c.intrinsics or None,
                             overwrite)


def calibrate_session(session: str | Path, cfg: CalibrateConfig | None = None, board: str | None = None,
                      stride: int = 1, intrinsics_only: bool = False, intrinsics_rig: str | Path | None = None,
                      overwrite: bool = False) -> Path:
    """Write ``calibration/rig.toml`` (+ ``calibration.toml`` for Anipose/Pose2Sim and ``report/``).

    Everything is computed before anything is written, so a failure leaves no half-written rig."""
    from calibration.boards import load_board
    from calibration.calibrate import CalibrateConfig, check_detections
    from calibration.detect import detect_all
    from calibration.intrinsics import calibrate_intrinsics
    from calibration.sources import check_same_length, find_sources

    cfg = cfg or CalibrateConfig()
    root = Path(session) / "calibration"
    out = root / ("intrinsics.toml" if intrinsics_only else "rig.toml")
    if out.exists() and not overwrite:
        log.info("%s exists, skipping calibration", out)
        return out
    if board is None:
        if not (root / "board.toml").is_file():
            raise FileNotFoundError(f"no board given: pass --board NAME or write {root / 'board.toml'}")
        board = str(root / "board.toml")
    b = load_board(board)
    take = root / "board"
    intr_dir = root / "intrinsics" if (root / "intrinsics").is_dir() else take
    if intrinsics_only:
        sources = find_sources(intr_dir)
        dets = detect_all(b, sources, stride, cfg.min_corners)
        check_detections(dets, b)
        from calibration.report import write_intrinsics_report

        found = {name: calibrate_intrinsics(b, d, cfg.model, cfg.max_intrinsic_views, cfg.min_intrinsic_views)
                 for name, d in dets.items()}
        write_intrinsics_report(found, root / "report")
        return write_rig(Rig(tuple(Camera(n, i.K, i.dist, np.eye(4), i.size, i.model) for n, i in found.items())),
                         out)
    sources = find_sources(take)
    check_same_length(sources)
    _check_names(cfg.world, sources, take)  # before the board's detection, which takes minutes
    given = None
    if intrinsics_rig is not None:
        rig = read_rig(intrinsics_rig)
        missing = [n for n in sources if n not in rig.names]
        if missing:
            raise ValueError(f"{intrinsics_rig}: no intrinsics for cameras {missing}")
        given = {n: rig[n] for n in sources}
    dets = detect_all(b, sources, stride, cfg.min_corners)
    if given is None and intr_dir != take:
        idets = detect_all(b, find_sources(intr_dir), stride, cfg.min_corners)
        check_detections(idets, b)
        given = {}
        for name, d in idets.items():
            i = calibrate_intrinsics(b, d, cfg.model, cfg.max_intrinsic_views, cfg.min_intrinsic_views)
            given[name] = Camera(name, i.K, i.dist, np.eye(4), i.size, i.model)
    cal = run(b, dets, cfg, given)
    from calibration.report import write_report

    write_report(cal, root / "report")
    write_anipose_toml(cal.rig, root / "calibration.toml")
    if not cal.summary.usable:
        log.warning("calibration is NOT usable: %s", cal.summary.message)
    return write_rig(cal.rig, out)


def _check_names(world: str, sources: dict, take: Path) -> None:
    """``world = camera:NAME`` names a camera of the board take."""
    kind, _, name = str(world).partition(":")
    if kind == "camera" and name and name not in sources:
        raise ValueError(f"calibrate: world {world!r} names no camera of the board take {take} (cameras: "
                         f"{', '.join(sources)})")
