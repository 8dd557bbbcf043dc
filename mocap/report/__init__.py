"""Quality report of a session: ``report/metrics.json``, ``report/report.html`` (plots inline, no
network) and ``review/<camera>_reprojected.mp4`` (the 3D skeleton projected over each video)."""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap.io.atomic import atomic_write_text
from mocap.persons import person_name
from mocap.report.calibration_html import calibration_html, moved_too_far_hint
from mocap.report.cameras import flag_text  # noqa: F401 (mocap.report.flag_text, as before)
from mocap.report.gaps_html import gaps_html as _gaps_html
from mocap.report.metrics import compute, warn_one_view
from mocap.report.repeated import blank_record, pose2d_info, repeated_record
from mocap.report.said import log_cameras
from mocap.report.truth import groundtruth
from mocap.report.verdict import summarised, verdict
from mocap.session import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    overlay_videos: bool = True  # review/<camera>_reprojected.mp4
    # px of those videos when lower than the camera's (0: its size): a review video for the page; detection
    # writes small copies of the videos at this height as it decodes them, which the render then decodes
    overlay_height: int = 540
    snapshots: int = 4  # 3D skeleton views in the HTML
    person: int = 0
    # the verdict: median reprojection error over all detections at the person (pixels × depth ÷ focal
    # length: one threshold for any resolution and distance). A joint centre is ambiguous by about a joint's
    # radius, and markerless 2D detectors err by about that on real footage; beyond it is a fault
    # (calibration, identity, sync), not detector noise
    max_reprojection_mm: float = 30.0
    max_reprojection_px: float = 0.0  # a pixel threshold as well (0: none; pixels depend on resolution, distance)
    # a median under this many px is a keypoint detector's best: above max_reprojection_mm there, small people
    # (far cameras, low resolution) limit the accuracy, said in the verdict, not failed (0: the mm check alone)
    resolution_floor_px: float = 2.0
    max_bone_length_cv: float = 0.05  # mean coefficient of variation of the bone lengths
    min_points_reconstructed: float = 0.9  # share of (frame, keypoint) points in 3D
    # share of the points two cameras or more see (the others: one view, the bone lengths and the motion): under it
    # the take fails (0: no check, the default); under min_points_reconstructed a warning
    min_points_two_views: float = 0.0
    # share of the points without two views for 0.5 s or longer in a row (metrics.ONE_VIEW_RUN_S: refine's motion
    # no longer bridges them; 0.1-0.6 m off where a whole side is one view's, while their reprojection error stays
    # low): over it the take fails (1: no check); over metrics.ONE_VIEW_LIMITED (0.1) it is limited by occlusion
    max_points_one_view_long: float = 0.2
    camera_flag_ratio: float = 2.5  # a camera whose median (or P95) error is above this × the others' is flagged
    worst_frames: int = 3  # per camera, the frames of highest error shown as crops (0: none)

    def __post_init__(self) -> None:
        if not self.max_reprojection_mm > 0:
            raise ValueError(f"report: max_reprojection_mm must be above 0 mm, got {self.max_reprojection_mm}")
        if not self.max_reprojection_px >= 0:
            raise ValueError(f"report: max_reprojection_px must be ≥ 0 px (0: no pixel threshold), "
                             f"got {self.max_reprojection_px}")
        if not self.resolution_floor_px >= 0:
            raise ValueError(f"report: resolution_floor_px must be ≥ 0 px (0: the mm check alone), "
                             f"got {self.resolution_floor_px}")
        if not 0 <= self.max_points_one_view_long <= 1:
            raise ValueError(f"report: max_points_one_view_long must be a share between 0 and 1 (1: no check), "
                             f"got {self.max_points_one_view_long}")
        if not 0 <= self.min_points_two_views <= 1:
            raise ValueError(f"report: min_points_two_views must be a share between 0 and 1 (0: no check), "
                             f"got {self.min_points_two_views}")
        if not self.camera_flag_ratio > 1:
            raise ValueError(f"report: camera_flag_ratio must be above 1, got {self.camera_flag_ratio}")
        if not isinstance(self.worst_frames, int) or isinstance(self.worst_frames, bool) or self.worst_frames < 0:
            raise ValueError(f"report: worst_frames must be an integer ≥ 0, got {self.worst_frames!r}")
        h = self.overlay_height
        if not isinstance(h, int) or isinstance(h, bool) or not (h == 0 or h >= 64):
            raise ValueError(f"report: overlay_height must be 0 (the camera's size) or an integer ≥ 64 px, got {h!r}")


def outputs(session: Session, cfg: Config) -> list[Path]:
    return [session.root / "report" / "metrics.json", session.root / "report" / "report.html"]


def _swaps_repaired(session: Session, pts) -> dict | None:
    """{camera: left/right swaps repaired} from the points' info, or the triangulated points' (where the
    repair runs) when the refined ones do not carry it, plus those refine found; None when no repair ran."""
    from mocap.io.hdf5 import read_points3d_info

    found = pts.info.get("swaps_repaired")
    tri = session.points3d("triangulated")
    if not isinstance(found, dict) and tri.is_file() and pts.info.get("stage") != "triangulated":
        found = read_points3d_info(tri).get("swaps_repaired")
    more = pts.info.get("swaps", {}).get("per_camera") if isinstance(pts.info.get("swaps"), dict) else None
    if isinstance(more, dict) and any(more.values()):  # and those refine found (mocap.stages.refine_swaps)
        found = {c: int((found or {}).get(c) or 0) + int(more.get(c, 0)) for c in set(found or {}) | set(more)}
    return found if isinstance(found, dict) else None


def _sources(session: Session):
    """The rig, the 3D points (refined, else triangulated) and their file, and the sync offsets."""
    from mocap.io.hdf5 import read_points3d
    from mocap.stages.sync import read_offsets

    src = session.points3d("refined") if session.points3d("refined").is_file() else session.points3d("triangulated")
    return session.rig(), read_points3d(src), src, read_offsets(session)


def _keypoints(session: Session, rig, pts, last: bool = False):
    """The detections as the report compares them: (repaired, as detected or None when no repair ran, the
    repairs), each person's in the 3D points' order. ``last``: the run's last read of them (the report's page): the
    memo's entries handed over (long takes: no copies held beside them)."""
    from mocap.report import people
    from mocap.stages import triangulate

    P = pts.xyz.shape[1]
    kp, repairs = triangulate.read_session_keypoints(session, rig, single_performer=P == 1, last=last)
    repaired = bool(repairs.get("swaps_repaired") and any(repairs["swaps_repaired"].values()))
    kp_raw = triangulate.session_keypoints(session, rig, single_performer=P == 1, repair_swaps=False, last=last) \
        if repaired else None
    if "association" not in repairs or kp.shape[2] != P:  # no recorded association: match by proximity
        kp = people.aligned_keypoints(rig, kp, pts)
        kp_raw = people.aligned_keypoints(rig, kp_raw, pts) if kp_raw is not None else None
    rows = pts.info.get("swaps", {}).get("views") if isinstance(pts.info.get("swaps"), dict) else None
    if rows:  # the swaps refine found against its trajectory (mocap.stages.refine_swaps): compared as refined
        from mocap.stages.refine_swaps import apply_recorded
        from mocap.types import Keypoints2D

        if kp_raw is None:
            kp_raw = kp
        kp = Keypoints2D(apply_recorded(kp.data, rows, kp.keypoint_set), kp.camera_names, kp.keypoint_set, kp.fps)
    return kp, kp_raw, repairs


def _start_videos(session: Session, rig, pts, offsets, kp, kp_raw, cfg: Config):
    """Start (or join) the overlay videos' render, keeping the video frames the crops will show."""
    from mocap.report import overlay
    from mocap.report.crops import wanted_video_frames

    wanted = wanted_video_frames(rig, kp_raw if kp_raw is not None else kp, pts, cfg.worst_frames, offsets,
                                 session.video_sampling()) if _videos(session, rig, cfg) else None
    return overlay.start(session, rig, pts, offsets, cfg.person, wanted=wanted, height=cfg.overlay_height)


def prestart(session: Session, cfg: Config = Config()):
    """Start the overlay videos in the background, as soon as the 3D points are final (``mocap run`` calls it
    after the refine stage); the report stage joins them. Returns their :class:`~mocap.report.overlay.Pending`
    (None: overlay videos off)."""
    if not cfg.overlay_videos or not (session.root / "videos").is_dir():
        return None
    rig, pts, _, offsets = _sources(session)
    kp, kp_raw, _ = _keypoints(session, rig, pts)
    return _start_videos(session, rig, pts, offsets, kp, kp_raw, cfg)


def build(session: Session, timings: dict[str, float] | None = None, extra: dict | None = None,
          cfg: Config = Config(), detect_persons: int | str | None = None) -> dict:
    """Compute the metrics and write the report files (the overlay videos rendered meanwhile, where out of
    date, or joined where ``mocap run`` started them); returns the metrics. ``detect_persons``: the detect stage's
    ``persons`` (a flagged camera's hint, :func:`mocap.report.cameras.hint`; None: not known)."""
    rig, pts, src, offsets = _sources(session)
    kp, kp_raw, repairs = _keypoints(session, rig, pts, last=True)
    videos = None
    if cfg.overlay_videos:
        from mocap.report.overlay import camera_videos

        camera_videos(session.root / "videos", rig.names, warn=True)  # a warning naming each camera without one
        videos = _start_videos(session, rig, pts, offsets, kp, kp_raw, cfg)
    try:  # the page links the review videos rendered, or up to date, for the cameras that have a video
        metrics = _metrics(session, rig, pts, src, offsets, timings, extra, cfg, (kp, kp_raw, repairs),
                           [p.name for p in videos.paths] if videos is not None else [], detect_persons)
        if videos is not None:
            metrics["overlay_videos"] = [str(p) for p in videos.result()]
    except BaseException:
        if videos is not None:
            videos.cancel()
        raise
    return metrics


def _videos(session: Session, rig, cfg: Config) -> dict[str, Path] | None:
    """camera → video for the crops, when the report reads videos (``overlay_videos``) and there are any."""
    if not cfg.overlay_videos or cfg.worst_frames == 0:
        return None
    from mocap.report.overlay import camera_videos

    return camera_videos(session.root / "videos", rig.names) or None  # the cameras without one: drawn on grey


def _person_metrics(rig, kp, pts, p: int, offsets, cfg: Config, swaps, detect_persons=None, boxes=None) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames where this person is absent: all-NaN slices
        return compute(rig, kp, pts, p, offsets, cfg.camera_flag_ratio, swaps, detect_persons, boxes)


def _frames_of(session: Session):
    """{frame: image} of a camera's video for the crops: those its overlay render kept, the rest decoded."""
    from mocap.report import overlay
    from mocap.report.crops import read_video_frames

    def read(camera: str, path: Path, frames: list[int]) -> dict:
        kept = overlay.captured(session.root / "review", camera, path)
        out = {i: kept[i] for i in frames if i in kept}
        missing = [i for i in frames if i not in out]
        return out | (read_video_frames(path, missing) if missing else {})

    return read


def _metrics(session: Session, rig, pts, src: Path, offsets: dict, timings, extra, cfg: Config, detections,
             review: list[str] = (), detect_persons: int | str | None = None) -> dict:
    from mocap.io.video import unused_videos
    from mocap.report import page, people
    from mocap.report.crops import CropCache, camera_crops
    from mocap.report.dark import dark_cameras
    from mocap.report.late import late_cameras
    from mocap.report.lost import image_boxes, lost_cameras
    from mocap.report.mirrored_people import turned_people
    from mocap.report.overlay import camera_videos
    from mocap.stages import triangulate
    from mocap.stages.sync import read_halves, read_steps

    P = pts.xyz.shape[1]
    kp, kp_raw, repairs = detections
    swaps = _swaps_repaired(session, pts)
    own = people.swaps_per_person(session, pts, rig.names, P) if P > 1 and swaps else None
    boxes = image_boxes(rig, pts.xyz)  # the people's image boxes, once (mocap.report.lost)
    per_person = [_person_metrics(rig, kp, pts, p, offsets, cfg, own[p] if own else swaps, detect_persons, boxes)
                  for p in range(P)]
    turned_people([m["cameras"] for m in per_person], rig, pts,  # a mirrored camera: its people nobody or mixed
                  lambda: triangulate.every_detection(session, rig), cfg.camera_flag_ratio)
    for key in ("knees", "toes"):  # one-view ankles, toes refine moved to their ray's other side (refine_knees, _toes)
        moved = pts.info.get(key) if isinstance(pts.info.get(key), dict) else {}
        for p, m in enumerate(per_person):
            if moved.get(person_name(p)):
                m[f"{key}_moved"] = int(moved[person_name(p)])
    metrics = dict(per_person[0])
    metrics |= {"points_source": src.name, "timings_s": timings or {}, "sync_offsets_frames": offsets}
    metrics |= {"sync_steps": steps} if (steps := read_steps(session)) else {}
    metrics["videos_not_used"] = unused_videos(session.root / "videos", rig.names)  # logged once, at the start
    metrics |= {"groundtruth": gt} if (gt := groundtruth(session, pts)) else {}
    extra = dict(extra or {})
    person_gaps = extra.pop("person_gaps", None) or {}  # several people: each one's gap frames, by name
    metrics |= extra
    assoc = people.association_summary(session, pts)  # several people asked for: who was found
    metrics |= {"association": assoc} if assoc else {}
    calib = extra.get("calibration_refinement")
    people.person_specific(per_person)
    people.not_a_person(per_person)
    for m in per_person:
        for name, row in m["cameras"].items():  # the camera refinement's move, when it ran
            row["calibration_move"] = None if not calib or name not in calib.get("moves_deg", {}) else {
                "deg": calib["moves_deg"][name], "mm": calib["moves_mm"][name],
                "applied": bool(calib.get("rig_refined", calib.get("applied"))),
                "aligned_deg": calib.get("moves_aligned_deg", {}).get(name),
                "aligned_mm": calib.get("moves_aligned_mm", {}).get(name)}
            if row["flagged"] and calib and name in (calib.get("moved_too_far") or []):
                row["hint"] = moved_too_far_hint(name, calib, row.get("hint"), rig.cameras[rig.names.index(name)])
    tables, lengths = [m["cameras"] for m in per_person], _video_frames(session, rig)
    if late := late_cameras(kp, offsets, tables, lengths, session.video_sampling()[1], read_halves(session)):
        metrics["late_cameras"] = late  # a video started late, no offset proven: a flagged camera's hint says so
    info2d = pose2d_info(session)  # what detection recorded of the frames: black ones, repeated ones
    if blank := blank_record(info2d, list(rig.names)):  # black frames: undecodable (mocap.report.repeated)
        metrics["blank_frames"] = blank
    if lost := lost_cameras(tables, blank):  # losing the people in its view far more than the others (report.lost)
        metrics["lost_cameras"] = lost
    if dark := dark_cameras(tables, camera_videos(session.root / "videos", rig.names), lengths):
        metrics["dark_cameras"] = dark  # a camera that saw no one, or flagged, whose footage is dark: its hint says
    if rep := repeated_record(session, info2d, list(rig.names), pts.xyz.shape[0]):  # (mocap.report.repeated)
        metrics["repeated_frames"] = rep  # frames a camera repeated (frozen): their detections not used, or kept
    checks = (cfg.max_reprojection_mm, cfg.max_bone_length_cv, cfg.min_points_reconstructed, cfg.max_reprojection_px,
              cfg.resolution_floor_px, cfg.min_points_two_views, cfg.max_points_one_view_long)
    metrics["verdict"] = verdict(metrics, *checks)
    if P > 1:
        metrics["timeline"] = people.timeline(pts)
        metrics["persons"] = []
        failed, limited, ghosts = [], [], people.never_met(pts)
        for p, (m, t) in enumerate(zip(per_person, metrics["timeline"], strict=True)):
            ghost = t["name"] in ghosts and len(ghosts) < P  # not a person: said, left out of the take's verdict
            absent = {"metric": "frames_present", "label": "frames with 3D points", "value": 0.0, "comparison": "<",
                      "threshold": 1.0, "unit": "frames", "text": f"{t['name']}: no 3D point in any frame " + (
                          "(its detections never met as one body: not a person?)" if ghost else
                          "(its reconstruction failed: see the log)")}
            m["verdict"] = verdict(m, *checks) if t["frames_present"] else {
                "usable": False, "failed": [absent], "limited": [], "summary": "absent"}  # fails the take too
            for key, out in (("failed", failed), ("limited", limited)) if not ghost else ():
                out += [f | {"label": f"{t['name']}: {f['label']}", "metric": f"persons.{p}.{f['metric']}"}
                        for f in m["verdict"][key] if not f["metric"].endswith(".mid_take")]  # the take's: once
            m |= {"gaps": person_gaps[t["name"]]} if person_gaps.get(t["name"]) else {}
            metrics["persons"].append({"name": t["name"], "frames_present": t["frames_present"], **m})
        failed += [f for f in metrics["verdict"]["failed"] if f["metric"].endswith(".mid_take")]  # a camera's
        metrics["verdict"] = summarised(failed, limited)
        if ghosts := [g for g in ghosts if len(ghosts) < P]:
            metrics["never_met"] = ghosts
            people.say_never_met(ghosts)
    if metrics["verdict"]["failed"] or metrics["verdict"]["limited"]:
        log.warning("report verdict: %s", metrics["verdict"]["summary"])
    warn_one_view([(q["name"], q) for q in metrics["persons"]] if P > 1 else [("the performer", metrics)],
                  cfg.min_points_reconstructed)
    log_cameras(metrics)
    videos = _videos(session, rig, cfg)
    cache = CropCache(session.root / "report" / ".crops", cfg.overlay_height)
    data, moves = [], session.camera_moves()  # read once for every person's crops
    for p in range(P):
        err, err_raw = page.errors(rig, kp, kp_raw, pts, p)
        crops = camera_crops(rig, kp_raw if kp_raw is not None else kp, kp, pts, p, cfg.worst_frames, videos,
                             offsets, repairs.get("swap_repairs"), session.video_sampling(), _frames_of(session),
                             cache, moves) if cfg.worst_frames else []
        data.append(page.PersonData(p, person_name(p), per_person[p] | _take_rows(metrics, p, P), err, err_raw, crops))
    if videos:
        cache.prune()
    out = session.root / "report"
    atomic_write_text(out / "metrics.json", json.dumps(json_safe(metrics), indent=1, allow_nan=False))
    extra_html = calibration_html(metrics.get("calibration_refinement")) + _gaps_html(metrics.get("gaps"))
    if P > 1:
        extra_html += "".join(_gaps_html(m.get("gaps"), m["name"]) for m in metrics["persons"])
    extra_html = people.association_html(assoc) + extra_html
    atomic_write_text(out / "report.html", page.page(session.name, metrics, data, pts, rig, cfg, extra_html,
                                                     list(review)))
    return metrics


def json_safe(x):
    """``x`` as strict JSON takes it (RFC 8259: browsers, Node, jq): a non-finite number (NaN: a camera that saw
    no one, a joint never detected; ±inf) as None (null), NumPy values as Python's, recursively."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in x]
    if x is None or isinstance(x, (str, bool, np.bool_)):
        return x if not isinstance(x, np.bool_) else bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)  # a float or a NumPy one (anything else raises, as json.dumps(default=float) did)
    return x if math.isfinite(x) else None


def _take_rows(metrics: dict, p: int, P: int) -> dict:
    """What the take's metrics hold that person p's summary on the page shows too: the cameras' time offsets,
    videos not used, and that person's error against the ground truth (one person: the MPJPE and P95)."""
    out = {k: metrics[k] for k in ("sync_offsets_frames", "sync_steps", "late_cameras", "repeated_frames",
                                   "blank_frames", "videos_not_used")
           if metrics.get(k)}
    gt = metrics.get("groundtruth")
    if gt and P == 1:
        out["groundtruth"] = gt
    elif gt:
        own = [q for q in gt.get("persons", []) if q.get("name") == person_name(p)]
        out |= {"groundtruth": {"mpjpe_mm": own[0]["mpjpe_mm"]}} if own else {}
    return out


def overlay_videos(session: Session, rig, pts, offsets: dict[str, float], cfg: Config) -> list[Path]:
    """The refined 3D skeleton projected over each camera's video (with its sync offset); cameras in
    parallel, each only when out of date (:mod:`mocap.report.overlay`)."""
    from mocap.report import overlay

    return overlay.overlay_videos(session, rig, pts, offsets, cfg.person)


def _video_frames(session: Session, rig) -> dict[str, int] | None:
    """camera → its video's frames (probed once per run), None without videos (2D keypoints brought along)."""
    from mocap.io.video import find_videos, probe

    try:
        return {n: probe(p).frames for n, p in find_videos(session.root / "videos", rig.names).items()}
    except (FileNotFoundError, ValueError, OSError):
        return None


def _camera_rows(cameras: dict[str, dict]) -> str:
    """The per-camera table's rows (:func:`mocap.report.page.camera_rows`)."""
    from mocap.report.page import camera_rows

    return camera_rows(cameras, "worst-person1")
