"""Stage: the quality report (``report/metrics.json``, ``report/report.html``, reprojected videos).

The computation and the page live in :mod:`mocap.report`; this module is its stage contract. Each
stage's time is the one recorded by its last complete run (``.mocap/state.json``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mocap import report
from mocap.session import Session
from mocap.stages import Flag
from mocap.stages.fit import gaps_path

log = logging.getLogger(__name__)
NAME = "report"
HELP = "quality report: metrics.json, report.html, reprojected videos"
NAMED_BY_SESSION = True  # the page's title is the session folder's name: a copied or renamed session makes it again
Config = report.Config
FLAGS = (Flag("--no-videos", "overlay_videos", "skip review/<camera>_reprojected.mp4", value=False),
         Flag("--overlay-height", "overlay_height", "height of those videos in px (default 540; 0: the camera's); "
              "detection writes the camera videos at this height for them to be drawn on", int))


def inputs(session: Session, settings) -> list[Path]:
    points = [session.points3d(n) for n in ("refined", "triangulated") if session.points3d(n).is_file()]
    truth = [p for p in [session.groundtruth_dir] if p.exists()]
    gaps = [p for p in [gaps_path(session, settings), _calibration_report(session),
                        *_person_gaps(session, settings).values()] if p.is_file()]
    videos = session.videos() if settings.report.overlay_videos else []
    return session.keypoint_inputs() + (points or [session.points3d("triangulated")]) + truth + gaps + videos


def _person_gaps(session: Session, settings) -> dict[str, Path]:
    """Each fitted person's ``motion/<skeleton>_person<k>.gaps.json`` by name (a take of several people;
    none for one)."""
    from mocap.stages.fit import person_files

    if session.points3d(settings.fit.source).is_file() and (session.person_count() or 1) > 1:
        return {f["name"]: f["gaps"] for f in person_files(session, settings) if f["fitted"]}
    return {}


def _calibration_report(session: Session) -> Path:
    return session.refined_rig_dir / "report.json"


def outputs(session: Session, settings) -> list[Path]:
    return report.outputs(session, settings.report)


def run(session: Session, timings: dict[str, float], cfg: Config | None = None, gaps: dict | None = None,
        calibration: dict | None = None, person_gaps: dict[str, dict] | None = None,
        detect_persons: int | str | None = None) -> dict:
    """``person_gaps``: a take of several people, each person's gap frames by name; ``detect_persons``: the
    detect stage's ``persons`` (a flagged camera's hint: another person followed is a cause with 1 only)."""
    extra = {k: v for k, v in (("gaps", gaps), ("calibration_refinement", calibration),
                               ("person_gaps", person_gaps)) if v}
    return report.build(session, timings, extra or None, cfg=cfg or Config(), detect_persons=detect_persons)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        log.warning("%s is unreadable; the report leaves it out", path)
        return None


def stage_seconds(session: Session) -> dict[str, float]:
    """Each stage's time from its last complete run (the runner's state)."""
    from mocap.pipeline import load_state

    return {k: float(v.get("seconds", 0.0)) for k, v in load_state(session).items()
            if isinstance(v, dict) and k != NAME}


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> dict:
    """``settings``: the pipeline's Settings, or this stage's Config. Returns the metrics."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    settings = as_settings(settings)
    person_gaps = {name: _read_json(p) for name, p in _person_gaps(session, settings).items()}
    return run(session, stage_seconds(session), settings.report, _read_json(gaps_path(session, settings)),
               _read_json(_calibration_report(session)), {k: v for k, v in person_gaps.items() if v},
               settings.detect.persons)
