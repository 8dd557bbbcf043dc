"""Stage: 3D keypoints → subject skeleton and joint rotations (``motion/<skeleton>.npz``), and the frames
where each joint was unseen and bridged (``motion/<skeleton>.gaps.json``, for the report).

The motion is fitted in the rig's world, Z up as the retarget and the exports take it; a rig whose world is
not Z up by both its cameras and its performer (a calibration made elsewhere: an Anipose / OpenCV camera frame,
a Y-up tool) is turned Z up for the motion, floor at 0 (``fit.world_up``: :func:`upright`).

With several people in the points (P > 1) every person is fitted on their own: ``motion/<skeleton>_person2.npz``
and ``.gaps.json`` (see :mod:`mocap.persons`), and ``motion/<skeleton>.persons.json`` records who was fitted
and who was skipped (a person seen in fewer than :data:`MIN_PERSON_FRAMES` frames): :func:`person_files`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mocap.config import inline
from mocap.fit import FitConfig, FitSummary, fit_motion
from mocap.fit.gaps import unseen_keypoints
from mocap.geometry.align import with_similarity
from mocap.geometry.upright import floor_height, world_turn
from mocap.io.atomic import atomic_write_text
from mocap.io.capture import write_capture
from mocap.io.hdf5 import read_points3d
from mocap.keypoint_sets import get_keypoint_set
from mocap.persons import speaking_of
from mocap.session import Person, Session, safe_name
from mocap.stages import Flag
from mocap.types import Motion, Points3D, Rig

log = logging.getLogger(__name__)
NAME = "fit"
HELP = "3D points → subject skeleton + joint rotations (motion/<skeleton>.npz, gaps in <skeleton>.gaps.json)"


SOURCES = ("refined", "triangulated")  # the 3D points fit may read (points3d/<source>.h5)
NOT_IN_KEY = ("workers",)  # the first solve's threads: the same motion bit for bit (mocap.pipeline_state._key)


@dataclass(frozen=True)
class Config:
    solver: FitConfig = inline(FitConfig)  # its keys are fit's: fit.skeleton, fit.accel_sigma, ...
    source: str = "refined"  # the 3D points fitted: points3d/<source>.h5 (refined | triangulated)
    person: int = 0  # the person fitted in a one-person take's points; with several people, all are fitted
    world_up: str = "auto"  # auto: a rig whose world is not Z up (an Anipose / OpenCV camera frame, a Y-up tool),
    # as its cameras and its performer both say, is turned Z up for the motion, its floor at 0 | z: kept as given

    def __post_init__(self) -> None:
        from mocap.config_files import preset_names

        if self.source not in SOURCES:  # refused before any stage runs (a typo ran detect to refine, then failed)
            raise ValueError(f"fit.source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.world_up not in ("auto", "z"):
            raise ValueError(f"fit.world_up must be auto or z, got {self.world_up!r}")
        if self.solver.workers < 0:  # refused before any stage runs (else every person's fit failed on it)
            raise ValueError(f"fit.workers must be 0 (one thread per core) or more, got {self.solver.workers}")
        sk = self.solver.skeleton
        if not sk.endswith(".toml") and sk not in preset_names("skeletons"):
            raise ValueError(f"fit.skeleton: unknown skeleton {sk!r}: expected one of {preset_names('skeletons')} "
                             "or a .toml file")


FLAGS = (Flag("--skeleton", "skeleton", "skeleton preset or TOML file (default body22)", str),
         Flag("--source", "source", "3D points to fit", str, choices=SOURCES),
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


def gaps_path(session: Session, settings, person: Person | None = None) -> Path:
    """``motion/<skeleton>.gaps.json``: per joint, the frame ranges where it was unseen and bridged
    (``motion/<skeleton>_person2.gaps.json`` for a person of several)."""
    return session.motion_dir / f"{skeleton_name(settings)}{person.suffix if person else ''}.gaps.json"


def persons_path(session: Session, settings) -> Path:
    """``motion/<skeleton>.persons.json`` (several people only): who was fitted, who was skipped and why."""
    return session.motion_dir / f"{skeleton_name(settings)}.persons.json"


def outputs(session: Session, settings) -> list[Path]:
    plan = person_plan(session, settings)
    if len(plan) == 1:
        return [session.motion(skeleton_name(settings)), gaps_path(session, settings)]
    fitted = [p for p, why in plan if why is None]
    return ([session.person_motion(skeleton_name(settings), p) for p in fitted]
            + [gaps_path(session, settings, p) for p in fitted] + [persons_path(session, settings)])


# ----- several people ------------------------------------------------------------------------------

MIN_PERSON_FRAMES = 10  # a person of several with fewer frames (half the joints seen) is skipped, not fitted
_plans: dict[tuple, list] = {}


def skip_reason(xyz: np.ndarray) -> str | None:
    """Why one person's points (F, J, 3) are too few to fit (None: enough): fewer than
    :data:`MIN_PERSON_FRAMES` frames with at least half the joints."""
    seen = np.isfinite(xyz).all(axis=-1)
    frames = int(np.sum(seen.sum(axis=1) * 2 >= xyz.shape[1]))
    if frames < MIN_PERSON_FRAMES:
        return (f"seen in {frames} frame{'s' if frames != 1 else ''} with at least half the joints, fewer than "
                f"{MIN_PERSON_FRAMES}: too few to fit a skeleton")
    return None


def source_persons(session: Session, settings) -> int:
    """P of the fitted points (``points3d/<fit.source>.h5``); before they exist, the people detected
    (``detect.persons`` when a number), else 1."""
    P = session.person_count(settings.fit.source)
    if P is not None:
        return P
    asked = getattr(getattr(settings, "detect", None), "persons", 1)
    return asked if isinstance(asked, int) and not isinstance(asked, bool) and asked > 1 else 1


def person_plan(session: Session, settings, recorded: bool = True) -> list[tuple[Person, str | None]]:
    """Each person of the fitted points with the reason they are not fitted (None: fitted). One person:
    today's take, always fitted (its names carry no suffix). ``recorded``: also a person whose fit failed
    in the last fit of these points (``motion/<skeleton>.persons.json``), so retarget and export follow
    the people that were written and the stage's outputs are files that exist."""
    P = source_persons(session, settings)
    if P == 1:
        return [(Person.of(0, 1), None)]
    path = session.points3d(settings.fit.source)
    if not path.is_file():
        return [(Person.of(p, P), None) for p in range(P)]
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _plans:
        xyz = read_points3d(path).xyz
        _plans.clear()
        _plans[key] = [(Person.of(p, P), skip_reason(xyz[:, p])) for p in range(P)]
    plan = list(_plans[key])
    record = persons_path(session, settings)
    if recorded and record.is_file() and record.stat().st_mtime_ns >= st.st_mtime_ns:
        try:
            failed = {e["name"]: e["reason"] for e in json.loads(record.read_text())["persons"]
                      if not e.get("fitted") and e.get("reason")}
        except (OSError, ValueError, KeyError, TypeError):
            failed = {}
        plan = [(p, why or failed.get(p.name)) for p, why in plan]
    return plan


def fitted_persons(session: Session, settings) -> list[Person]:
    """The people whose motion the fit writes (retarget and export follow them)."""
    return [p for p, why in person_plan(session, settings) if why is None]


def person_files(session: Session, settings) -> list[dict]:
    """For the report and the view: per person ``{"index", "name", "fitted", "reason", "motion", "gaps"}``
    (paths of the fitted skeleton's files; ``fitted`` False with the ``reason`` for a skipped person)."""
    sk = skeleton_name(settings)
    return [{"index": p.index, "name": p.name, "fitted": why is None, "reason": why,
             "motion": session.person_motion(sk, p), "gaps": gaps_path(session, settings, p)}
            for p, why in person_plan(session, settings)]


def remove_stale(folder: Path, stem: str, suffixes: tuple[str, ...], keep: list[Path]) -> None:
    """Move ``<stem><suffix>`` and ``<stem>_person<k><suffix>`` files in ``folder`` that are not in ``keep`` to
    ``previous/`` beside them, said once: a take's people changed (P, or who could be fitted) and the old files
    would pass for current (they were deleted: a run with another ``persons`` lost the earlier people's work)."""
    import re

    from mocap.stages.aside import set_aside

    pattern = re.compile(re.escape(stem) + r"(_person[0-9]+)?(" + "|".join(re.escape(x) for x in suffixes) + ")")
    kept = {Path(k).name for k in keep}
    stale = [f for f in (sorted(folder.glob(f"{stem}*")) if folder.is_dir() else [])
             if f.is_file() and pattern.fullmatch(f.name) and f.name not in kept]
    set_aside(stale, "of people not in this take's fit any more (its people changed)", log)


def upright(points: Points3D, rig: Rig | None, world_up: str
            ) -> tuple[Points3D, Rig | None, dict | None, np.ndarray | None]:
    """The points and the rig the motion is fitted in and carries: as given, or, with ``world_up = auto`` and a
    world whose up is not Z by both its cameras and its performer (:func:`mocap.geometry.upright.world_turn`),
    turned so that up is Z and shifted so that the floor (the 2nd percentile of each frame's lowest keypoint) is
    at 0 (the feet's lowest keypoints; the ankles' with a set that has no foot keypoints, such as COCO 17). Returns
    them, what was decided (None: not looked at) and the turn x ↦ Q x + t as a 4×4 (None: not turned), which the
    capture file keeps (``world_from_given``)."""
    if world_up != "auto" or rig is None:
        return points, rig, None, None
    Q, info = world_turn(rig, points.xyz, list(get_keypoint_set(points.keypoint_set).joints))
    if Q is None:
        return points, rig, info, None
    xyz = points.xyz @ Q.T
    t = np.array([0.0, 0.0, -floor_height(xyz)])
    info["floor_shift_m"] = round(float(t[2]), 4)
    log.warning("the rig's world is not Z up: its cameras and the performer both point up along %s; the motion "
                "(and the rig and points it carries) is turned %.1f° so that Z is up, the floor at 0 (the 3D points "
                "and the report stay in the given world; fit.world_up = z keeps it for the motion too)",
                np.round(info["performer_up"], 2).tolist(), info["turned_deg"])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = Q, t
    return replace(points, xyz=xyz + t), with_similarity(rig, np.zeros((0, 3)), 1.0, Q, t)[0], info, T


def gaps_json(summary: FitSummary, fps: float, world: dict | None = None) -> str:
    """The fit's gap record: joint → half-open frame ranges [start, stop) and frame counts; with fingers,
    the frames each hand's fingers were held at rest; ``world``: how the world's up was judged
    (:func:`upright`)."""
    joints = {n: {"ranges": [[a, b] for a, b in r], "frames": int(sum(b - a for a, b in r))}
              for n, r in summary.gap_frames.items()}
    return json.dumps({"frames": summary.frames, "fps": float(fps), "ranges": "half-open [start, stop) frame indices",
                       "bridged_frames": summary.bridged_frames, "empty_frames": summary.empty_frames,
                       "unseen_joints": summary.unseen_joints, "joints": joints,
                       # skeletons with fingers: per hand, the frames its fingers were eased to rest (unseen)
                       "fingers_at_rest": {h: [[a, b] for a, b in r] for h, r in summary.rest_frames.items()},
                       "turns": summary.turns, "world_up": world,  # turns, unseen_keypoints: see FitSummary
                       "head_placed": summary.head_placed,  # and where: keypoint → ranges
                       "head_placed_keypoints": {k: [[a, b] for a, b in r]
                                                 for k, r in summary.head_placed_ranges.items()},
                       "unseen_keypoints": {k: [[a, b] for a, b in r] for k, r in summary.unseen_keypoints.items()}},
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
    motion, summary = fit_motion(xyz, points.keypoint_set, points.fps, solver,
                                 certainty=view_certainty(points.views[:, cfg.person]))
    names = get_keypoint_set(points.keypoint_set).joints
    unseen = unseen_keypoints(names, xyz, points.views[:, cfg.person], points.fps,
                              elsewhere=summary.head_placed_ranges)
    if unseen:
        log.warning("keypoints no camera saw for 0.1 s or longer, placed by refine and fitted as if measured (frames): "
                    "%s; check them", "; ".join(f"{k} " + ", ".join(f"{a}-{b - 1}" for a, b in r)
                                               for k, r in list(unseen.items())[:8])
                    + (f" and {len(unseen) - 8} more (gaps.json)" if len(unseen) > 8 else ""))
    return motion, replace(summary, points_noise_mm=points_noise_mm(points.info, cfg.person, P),
                           unseen_keypoints=unseen)


# how much a point seen by one camera, or by none (placed by refine's motion prior alone), counts against one seen by
# two or more when the fit judges which of two rotation branches fits the points better (``fit_motion``'s
# ``certainty``): a 10 mm miss there counts as a 1 mm (one view) or 0.3 mm (none) miss of a triangulated point
ONE_VIEW_CERTAINTY = 0.01
NO_VIEW_CERTAINTY = 0.001


def view_certainty(views: np.ndarray) -> np.ndarray:
    """(F, K) in [0, 1] from one person's views (F, K, C) bool: 1 where two cameras or more support the point,
    :data:`ONE_VIEW_CERTAINTY` where one does, :data:`NO_VIEW_CERTAINTY` where none does."""
    n = np.asarray(views).sum(axis=-1)
    return np.where(n >= 2, 1.0, np.where(n == 1, ONE_VIEW_CERTAINTY, NO_VIEW_CERTAINTY))


def points_noise_mm(info: dict, person: int, persons: int) -> float | None:
    """The 3D noise σ (mm) refine estimated for a person (its summary's ``noise_mm_3d``), or None."""
    from mocap.persons import person_name

    for s in info.get("summaries", []):
        if isinstance(s, dict) and (persons == 1 or s.get("name") == person_name(person)):
            n = s.get("noise_mm_3d")
            return float(n) if isinstance(n, (int, float)) and np.isfinite(n) and n > 0 else None
    return None


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config. Returns the motion file (several
    people: the first fitted person's, or the persons record when nobody could be fitted)."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    settings = as_settings(settings)
    cfg = settings.fit
    src = session.points3d(cfg.source)
    if not src.is_file():
        maker = {"refined": "refine", "triangulated": "triangulate"}.get(cfg.source)
        raise FileNotFoundError(f"fit: {src} is missing" + (f"; the {maker} stage makes it (mocap {maker} "
                                                             f"{session.root})" if maker else ""))
    if session.person_count(cfg.source) > 1:
        return _main_persons(session, settings, src, overwrite)
    out = session.motion(skeleton_name(settings))
    if out.exists() and gaps_path(session, settings).exists() and not overwrite:
        log.info("%s exists, skipping the fit", out)
        return out
    points = read_points3d(src)
    if not 0 <= cfg.person < points.xyz.shape[1] or not np.isfinite(points.xyz[:, cfg.person]).any():
        raise ValueError(f"{src}: no 3D point of person {cfg.person} in any frame; nothing to fit")
    rig, videos = _cameras(session)
    points, rig, world, turn = upright(points, rig, cfg.world_up)
    motion, summary = run(points, cfg)
    if not summary.usable:
        log.warning("fit looks unusable: %s", summary.why_unusable())
    atomic_write_text(gaps_path(session, settings), gaps_json(summary, points.fps, world))
    names = get_keypoint_set(points.keypoint_set).joints
    out = write_capture(out, motion, rig, np.asarray(points.xyz[:, cfg.person]), names, videos,
                        world_from_given=turn)
    remove_stale(session.motion_dir, skeleton_name(settings), (".npz", ".gaps.json"),
                 [out, gaps_path(session, settings)])
    persons_path(session, settings).unlink(missing_ok=True)
    return out


def _cameras(session: Session):
    """(rig or None, the cameras' videos for the Blender add-on's camera backgrounds, or None)."""
    try:
        rig = session.rig()
    except (FileNotFoundError, ValueError):
        return None, None
    found = {p.stem: str(p.resolve()) for p in sorted((session.root / "videos").glob("*")) if p.is_file()}
    return rig, [found.get(c, "") for c in rig.names]


def _quality(info: dict) -> dict[str, dict]:
    """Per person name, what the points' stages said of them: ``points_usable`` / ``points_message`` (refine's
    summary, or the association's record of the triangulated points)."""
    out: dict[str, dict] = {}
    for rec in info.get("persons", []):
        if isinstance(rec, dict) and "name" in rec and "usable" in rec:
            out[rec["name"]] = {"points_usable": bool(rec["usable"]),
                                "points_message": "association: " + ("usable" if rec["usable"] else
                                                                     "identities may be mixed")}
    for s in info.get("summaries", []):
        if isinstance(s, dict) and "name" in s and "usable" in s:
            old = out.get(s["name"], {"points_usable": True})
            out[s["name"]] = {"points_usable": bool(s["usable"]) and old["points_usable"],
                              "points_message": f"refine: {s.get('message', '')}"
                              + (f"; {old['points_message']}" if not old["points_usable"] else "")}
    return out


def _main_persons(session: Session, settings, src: Path, overwrite: bool) -> Path:
    """Several people: each person fitted on their own, the skipped ones recorded."""
    cfg, sk = settings.fit, skeleton_name(settings)
    if cfg.person != 0:
        log.warning("fit.person = %d is for one-person takes: all %d people of %s are fitted", cfg.person,
                    session.person_count(cfg.source), src)
    record = persons_path(session, settings)
    todo = person_plan(session, settings, recorded=False)  # a person whose last fit failed is tried again
    if record.exists() and not overwrite and all(
            session.person_motion(sk, p).exists() for p, why in todo if why is None):
        log.info("%s exists, skipping the fit", record)
        return record
    points = read_points3d(src)
    rig, videos = _cameras(session)
    points, rig, world, turn = upright(points, rig, cfg.world_up)
    names = get_keypoint_set(points.keypoint_set).joints
    people, written = [], []
    quality = _quality(points.info)
    for p, why in todo:
        entry = {"index": p.index, "name": p.name, "frames_present": int(np.isfinite(points.xyz[:, p.index]).all(
            axis=-1).any(axis=-1).sum()), "fitted": False, "reason": why} | quality.get(p.name, {})
        if why is None and quality.get(p.name, {}).get("points_usable") is False:
            log.warning("%s: fitted, but its 3D points are not usable (%s)", p.name,
                        quality[p.name]["points_message"])
        if why is None:
            try:
                with speaking_of(p.name):  # the fit's own lines (gaps, unseen joints, ...) name the person
                    motion, summary = run(points, replace(cfg, person=p.index))
            except ValueError as e:  # one person's failure does not lose the others' fits
                why = entry["reason"] = f"the fit failed: {e}"
        if why is not None:
            log.warning("%s of %s is not fitted: %s", p.name, src, why)
            people.append(entry)
            continue
        if not summary.usable:
            log.warning("%s: fit looks unusable: %s", p.name, summary.why_unusable())
        gaps = gaps_path(session, settings, p)
        atomic_write_text(gaps, gaps_json(summary, points.fps, world))
        out = write_capture(session.person_motion(sk, p), motion, rig, np.asarray(points.xyz[:, p.index]), names,
                            videos, person=p.name, world_from_given=turn)
        written += [out, gaps]
        entry |= {"fitted": True, "motion": out.name, "gaps": gaps.name, "fit_usable": summary.usable,
                  "rms_mm_median": summary.rms_mm_median if np.isfinite(summary.rms_mm_median) else None,
                  "fitted_frames": summary.fitted_frames}
        people.append(entry)
    remove_stale(session.motion_dir, sk, (".npz", ".gaps.json"), written)
    atomic_write_text(record, json.dumps({"skeleton": sk, "source": src.name, "persons": people}, indent=1) + "\n")
    log.info("fitted %d of %d people", sum(e["fitted"] for e in people), len(people))
    return next((w for w in written if w.suffix == ".npz"), record)
