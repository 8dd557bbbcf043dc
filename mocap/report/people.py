"""Several people in a take: which 2D detection of each view is which 3D person, the frames each
person is present (the timeline), and each person's metrics (``metrics.json`` ``persons``)."""

from __future__ import annotations

import logging
import warnings
from html import escape

import numpy as np

from mocap.persons import person_name
from mocap.session import Session
from mocap.types import Keypoints2D, Points3D, Rig

MATCH_SHARE = 0.5  # a detection is a person's when its median distance to the person's reprojection is
# below this share of the person's size in the image
FINE = 1.5  # a camera whose error for a person is under this × the other cameras' is fine for that person
CAMERA_HINTS = ("calibration?", "sync?")  # what every person in the camera's view would show


def present(pts: Points3D, p: int) -> np.ndarray:
    """(F,) frames where person ``p`` has any 3D point."""
    return np.isfinite(pts.xyz[:, p]).all(axis=-1).any(axis=-1)


def spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """[a, b] runs (inclusive) of True frames."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    cut = np.flatnonzero(np.diff(idx) > 1) + 1
    return [(int(r[0]), int(r[-1])) for r in np.split(idx, cut)]


def timeline(pts: Points3D) -> list[dict]:
    """Per person: name, frames present, the spans of frames present."""
    return [{"name": person_name(p), "frames_present": int(present(pts, p).sum()), "spans": spans(present(pts, p))}
            for p in range(pts.xyz.shape[1])]


def aligned_keypoints(rig: Rig, kp: Keypoints2D, pts: Points3D) -> Keypoints2D:
    """2D keypoints whose persons axis is the 3D points' (person p of each view: the detection nearest
    to p's reprojection, each detection used once, NaN when none is near). One person and one
    detection per view: ``kp`` as it is."""
    P = pts.xyz.shape[1]
    if P == 1 and kp.shape[2] == 1:
        return kp
    F, C, D, J = kp.shape
    X = pts.xyz
    uv = np.moveaxis(rig.project(X.reshape(-1, 3)).reshape((C,) + X.shape[:3] + (2,)), 0, 1)  # (F, C, P, J, 2)
    out = np.full((F, C, P, J, 3), np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # people absent in a frame: all-NaN slices
        d = np.linalg.norm(uv[:, :, :, None] - kp.xy[:, :, None], axis=-1)  # (F, C, P, D, J)
        size = np.linalg.norm(np.nanmax(uv, axis=3) - np.nanmin(uv, axis=3), axis=-1)  # (F, C, P)
        med = np.nanmedian(d, axis=-1)
    cost = np.where((np.isfinite(d).sum(axis=-1) >= 3) & np.isfinite(med), med, np.inf)
    size = np.where(np.isfinite(size), size, 0.0)
    for f in range(F):
        for c in range(C):
            m = cost[f, c].copy()
            while np.isfinite(m).any():
                p, q = np.unravel_index(np.argmin(m), m.shape)
                if m[p, q] <= MATCH_SHARE * max(size[f, c, p], 1.0):
                    out[f, c, p] = kp.data[f, c, q]
                m[p, :] = np.inf
                m[:, q] = np.inf
    return Keypoints2D(out, kp.camera_names, kp.keypoint_set, kp.fps)


def swaps_per_person(session: Session, pts, names: tuple[str, ...], P: int) -> list[dict] | None:
    """Per person {camera: swaps repaired in its views} from the rows [frame, view, person, groups] of triangulate
    (``swap_repairs``) and refine (``swaps``); None without rows (then each camera's count over everyone)."""
    from mocap.io.hdf5 import read_points3d_info

    record = pts.info.get("swap_repairs")
    tri = session.points3d("triangulated")
    if not isinstance(record, dict) and tri.is_file() and pts.info.get("stage") != "triangulated":
        record = read_points3d_info(tri).get("swap_repairs")
    if not isinstance(record, dict) or "views" not in record:
        return None
    more = pts.info.get("swaps", {}).get("views", []) if isinstance(pts.info.get("swaps"), dict) else []
    out = [dict.fromkeys(names, 0) for _ in range(P)]
    for _, c, p, *_ in [*record["views"], *more]:
        if 0 <= int(p) < P and 0 <= int(c) < len(names):
            out[int(p)][names[int(c)]] += 1
    return out


def association_summary(session: Session, pts) -> dict:
    """The plain values of the association's summary (triangulated points' ``info["association"]``), or {}."""
    from mocap.io.hdf5 import read_points3d_info

    info = pts.info if pts.info.get("stage") == "triangulated" or not session.points3d("triangulated").is_file() \
        else read_points3d_info(session.points3d("triangulated"))
    assoc = info.get("association")
    summary = assoc.get("overall", assoc) if isinstance(assoc, dict) else None
    if not isinstance(summary, dict):
        return {}
    return {str(k): v for k, v in summary.items() if not isinstance(v, (list, dict))}


def association_html(summary: dict) -> str:
    """:func:`association_summary` as a table, after a sentence when fewer people were found than requested."""
    if not summary:
        return ""
    asked, found = summary.get("persons_requested"), summary.get("persons_found")
    note = (f"<p>{int(asked)} people requested (<code>detect.persons</code>), {int(found)} found in the views: "
            "fewer tracks.</p>") if isinstance(asked, int) and isinstance(found, int) and found < asked else ""
    rows = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(f'{v:.3g}' if isinstance(v, float) else str(v))}"
                   "</td></tr>" for k, v in summary.items())
    return f"<h2>Association of the people</h2>{note}<table>{rows}</table>"


def person_specific(per_person: list[dict]) -> None:
    """A camera flagged for one person over the whole take with a hint about the camera itself (its pose, its
    timing: every person in its view would show it) while it is fine (unflagged, under ``FINE`` × the other
    cameras) for every other person it saw: the hint names this person's detections in that view instead
    (hidden in part by another person, far from the camera, or found by a second look where the person stood)."""
    for p, m in enumerate(per_person):
        for name, row in m["cameras"].items():
            if not row.get("flagged") or not str(row.get("hint") or "").startswith(CAMERA_HINTS) \
                    or row["flag"].get("stat") == "part_median_px":  # a part of the take: the others' whole take
                continue  # would hide it
            rows = {person_name(k): q["cameras"][name] for k, q in enumerate(per_person)
                    if k != p and name in q.get("cameras", {})}
            if any(r.get("flagged") for r in rows.values()):
                continue  # flagged for another person too: the camera itself
            others = {k: r["ratio_to_others"] for k, r in rows.items() if np.isfinite(r["ratio_to_others"])}
            if others and max(others.values()) < FINE:
                fine = ", ".join(f"{k} {r:.1f}×" for k, r in others.items())
                row["hint"] = (f"this person's detections in {name}, not the camera? its error for this person is "
                               f"{row['ratio_to_others']:.1f}× the other cameras' while for the other people it "
                               f"is at their level ({fine}); a camera's pose and timing are everyone's: this "
                               "person's detections there are off (partly hidden by another person, far from the "
                               "camera, or found by a second look where the person stood): check them in the "
                               f"review video (was: {row['hint']})")


def not_a_person(per_person: list[dict]) -> None:
    """A "person" two cameras or fewer detect while the others, with it in their view, never do (``missed``) but
    detect every other person of the take, each unflagged: those cameras' hint says what it most likely is, two
    cameras' detections of something else (a reflection, a picture, clutter) meeting in 3D, not someone (a synthetic
    100 s take of 3 people and 6 cameras made one of 2 s from two cameras' clutter; the hint had asked whether two
    cameras' videos were swapped). Changes those rows' ``hint``; the person's ``not_a_person``: {missed, seeing}."""
    for p, m in enumerate(per_person):
        rows = m["cameras"]
        missed = [n for n, r in rows.items() if r.get("missed")]
        seeing = [n for n, r in rows.items() if r.get("detections", 0) > 0]
        if len(missed) < 2 or not seeing or len(seeing) > 2:
            continue
        others = [q["cameras"] for k, q in enumerate(per_person) if k != p]
        if not others or any(o[n].get("detections", 0) == 0 or o[n].get("flagged") for o in others for n in missed
                             if n in o):
            continue
        m["not_a_person"] = {"missed": missed, "seeing": seeing}
        for n in missed:
            rows[n]["hint"] = no_one_hint(rows, [n], seeing)


def no_one_hint(rows: dict, missed: list[str], seeing: list[str]) -> str:
    """What :func:`not_a_person` says for the cameras ``missed`` (one or several) of a person only ``seeing`` saw."""
    one = len(missed) == 1
    share = ", ".join(f"{n} {rows[n]['in_view_share']:.0%}" for n in missed)
    return (f"never detected this person although it stood in {'its' if one else 'their'} view ({share} of the "
            f"frames), while {'it detects' if one else 'they detect'} every other person well: not a person? Only "
            f"{' and '.join(seeing)} saw it: their detections of something else (a reflection, a picture, clutter) "
            "meeting in 3D; check it in their review video")


def never_met(pts) -> list[str]:
    """The people of ``pts`` whose triangulation (its record in ``info["persons"]``) made no point: an identity the
    tracker followed whose views never met as one body there (a 12-camera, 5-person take of 6,000 frames: "person7",
    built from detections that are not people, failed a take whose five people were all reconstructed)."""
    return [r["name"] for r in pts.info.get("persons") or []
            if isinstance(r, dict) and r.get("frames_present") == 0 and isinstance(r.get("name"), str)]


def say_never_met(ghosts: list[str]) -> None:
    """The warning for the identities of :func:`never_met` (left out of the take's verdict)."""
    logging.getLogger("mocap.report").warning(
        "%s: no 3D point in any frame: the detections followed as %s never met as one body in triangulation (a "
        "poster, a reflection, detections of different things): not a person?, left out of the take's verdict",
        ", ".join(ghosts), "this identity" if len(ghosts) == 1 else "these identities")
