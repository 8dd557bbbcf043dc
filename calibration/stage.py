"""File-level calibration of a session: find footage, detect, calibrate, write rig + report."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from calibration.boards import load_board
from calibration.calibrate import CalibrateConfig, calibrate, check_detections
from calibration.detect import detect_all
from calibration.intrinsics import calibrate_intrinsics
from calibration.sources import check_same_length, find_sources
from mocap.io.rig_files import read_rig, write_anipose_toml, write_rig
from mocap.types import Camera, Rig

log = logging.getLogger(__name__)


def main(session: str | Path, cfg: CalibrateConfig | None = None, board: str | None = None, stride: int = 1,
         intrinsics_only: bool = False, intrinsics_rig: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write ``calibration/rig.toml`` (+ ``calibration.toml`` for Anipose/Pose2Sim and ``report/``).

    Everything is computed before anything is written, so a failure leaves no half-written rig."""
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
        cams = []
        for name, d in dets.items():
            i = calibrate_intrinsics(b, d, cfg.model, cfg.max_intrinsic_views, cfg.min_intrinsic_views)
            cams.append(Camera(name, i.K, i.dist, np.eye(4), i.size, i.model))
        return write_rig(Rig(tuple(cams)), out)
    sources = find_sources(take)
    check_same_length(sources)
    dets = detect_all(b, sources, stride, cfg.min_corners)
    given = None
    if intrinsics_rig is not None:
        rig = read_rig(intrinsics_rig)
        missing = [n for n in sources if n not in rig.names]
        if missing:
            raise ValueError(f"{intrinsics_rig}: no intrinsics for cameras {missing}")
        given = {n: rig[n] for n in sources}
    elif intr_dir != take:
        idets = detect_all(b, find_sources(intr_dir), stride, cfg.min_corners)
        check_detections(idets, b)
        given = {}
        for name, d in idets.items():
            i = calibrate_intrinsics(b, d, cfg.model, cfg.max_intrinsic_views, cfg.min_intrinsic_views)
            given[name] = Camera(name, i.K, i.dist, np.eye(4), i.size, i.model)
    cal = calibrate(b, dets, cfg, given)
    from calibration.report import write_report

    write_report(cal, root / "report")
    write_anipose_toml(cal.rig, root / "calibration.toml")
    if not cal.summary.usable:
        log.warning("calibration is NOT usable: %s", cal.summary.message)
    return write_rig(cal.rig, out)


def pipeline_stage(session: str | Path, table: dict, overwrite: bool = False) -> Path:
    """The ``calibrate`` stage of ``mocap run`` (registered through the ``mocap.stages`` entry point).
    ``[calibrate]`` keys: board, stride, model, world, free (list of intrinsics refined)."""
    from calibration.bundle import BundleConfig
    from mocap.config_files import check_keys

    check_keys(table, {"board", "stride", "model", "world", "free"}, "[calibrate]")
    bundle = BundleConfig(free_intrinsics=tuple(table["free"])) if "free" in table else BundleConfig()
    cfg = CalibrateConfig(model=table.get("model", "pinhole"), world=table.get("world", "camera"), bundle=bundle)
    return main(session, cfg, board=table.get("board"), stride=int(table.get("stride", 1)), overwrite=overwrite)
