"""What the view shows: each person's joints over time, the segments drawn between them, which side
(left / right / centre) each segment is on, the floor height and the cameras.

Sources, best first: the fitted skeleton (``motion/<skeleton>.npz``, one person; or
``motion/<skeleton>_person{k}.npz`` per person), else the 3D keypoints (``points3d/refined.h5`` or
``triangulated.h5``, every person of the persons axis).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap.persons import person_name, person_suffix
from mocap.session import Session
from mocap.types import KeypointSet, Rig

log = logging.getLogger(__name__)

CENTRE, LEFT, RIGHT = 0, 1, 2
_LEFT = re.compile(r"(left|(^|[_.:\-\s])l($|[_.:\-\s]))", re.IGNORECASE)
_RIGHT = re.compile(r"(right|(^|[_.:\-\s])r($|[_.:\-\s]))", re.IGNORECASE)
HEAD_WORDS = ("eye", "ear", "mouth", "nose")


def side_of(name: str) -> int:
    """LEFT for ``LeftArm`` / ``left_knee`` / ``upperarm_l`` / ``hand.L``, RIGHT likewise, else CENTRE."""
    base = name.split(":")[-1]
    left, right = bool(_LEFT.search(base)), bool(_RIGHT.search(base))
    return LEFT if left and not right else RIGHT if right and not left else CENTRE


@dataclass(frozen=True)
class Figure:
    """One person. X: (F, N, 3) points (N = the joints, then any added midpoints), NaN where unknown;
    segments: pairs of point indices; sides: (len(segments),) CENTRE / LEFT / RIGHT."""

    name: str
    X: np.ndarray
    segments: tuple[tuple[int, int], ...]
    sides: np.ndarray
    joint_names: tuple[str, ...]


def keypoint_segments(kps: KeypointSet) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(segments, added midpoints): the keypoint set's limbs, plus what joins the head to the body when
    the limbs leave it apart (a neck from the nose to the shoulders' midpoint; a mouth or any other
    head part on its own to the nose). A midpoint (a, b) becomes point J + k."""
    J = len(kps.joints)
    segs = [tuple(map(int, s)) for s in kps.limbs]
    parent = list(range(J))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in segs:
        parent[root(a)] = root(b)
    names = kps.joints
    mids: list[tuple[int, int]] = []
    nose = names.index("nose") if "nose" in names else None
    if nose is not None and "left_shoulder" in names and "right_shoulder" in names:
        ls, rs = names.index("left_shoulder"), names.index("right_shoulder")
        if root(nose) != root(ls):
            mids.append((ls, rs))
            segs.append((nose, J + len(mids) - 1))
            parent[root(nose)] = root(ls)
    if nose is not None:
        for i, n in enumerate(names):
            if root(i) != root(nose) and any(w in n for w in HEAD_WORDS):
                segs.append((nose, i))
                parent[root(i)] = root(nose)
    return segs, mids


def segment_sides(names: tuple[str, ...], segs) -> np.ndarray:
    def side(i: int) -> int:
        return side_of(names[i]) if i < len(names) else CENTRE

    out = []
    for a, b in segs:
        sa, sb = side(a), side(b)
        out.append(sa if sa == sb else (sa if sb == CENTRE else sb if sa == CENTRE else CENTRE))
    return np.array(out, int)


def keypoint_figure(name: str, X: np.ndarray, kps: KeypointSet) -> Figure:
    """A person from 3D keypoints (F, J, 3) of ``kps``."""
    segs, mids = keypoint_segments(kps)
    if mids:
        X = np.concatenate([X, np.stack([(X[:, a] + X[:, b]) / 2 for a, b in mids], axis=1)], axis=1)
    names = tuple(kps.joints) + tuple(f"mid:{kps.joints[a]}+{kps.joints[b]}" for a, b in mids)
    return Figure(name, X, tuple(segs), segment_sides(names, segs), names)


def _fitted(session: Session, skeleton: str) -> list[Path]:
    one = session.motion(skeleton)
    if one.is_file():
        return [one]
    found = []
    for path in session.motion_dir.glob(f"{skeleton}_person*.npz"):
        m = re.fullmatch(rf"{re.escape(skeleton)}_person(\d+)\.npz", path.name)
        if m:
            found.append((int(m.group(1)), path))
    return [p for _, p in sorted(found)]


def load_figures(session: Session) -> tuple[list[Figure], float]:
    """Every person of the session and the frame rate (see the module's docstring for the sources)."""
    from mocap.io.hdf5 import read_points3d
    from mocap.keypoint_sets import get_keypoint_set
    from mocap.settings import load_config
    from mocap.stages.fit import skeleton_name

    points = next((session.points3d(s) for s in ("refined", "triangulated") if session.points3d(s).is_file()), None)
    pts = read_points3d(points) if points is not None else None
    P = pts.xyz.shape[1] if pts is not None else 1
    motions = _fitted(session, skeleton_name(load_config(session)[0]))
    if motions and (pts is None or len(motions) == P):
        from mocap.io.capture import read_capture

        figures, fps = [], 30.0
        for k, path in enumerate(motions):
            m, _ = read_capture(path)
            _, X = m.fk()
            segs = tuple((int(m.skeleton.parents[j]), j) for j in range(1, X.shape[1]))
            names = m.skeleton.joint_names
            figures.append(Figure(person_name(k), X, segs, segment_sides(names, segs), names))
            fps = m.fps
        return _doubted(session, _same_length(figures)), fps
    if pts is None:
        raise FileNotFoundError(f"session {session.root}: nothing to show yet (run mocap run first)")
    kps = get_keypoint_set(pts.keypoint_set)
    figures = [keypoint_figure(person_name(p), pts.xyz[:, p], kps) for p in range(P)
               if np.isfinite(pts.xyz[:, p]).any()]
    if not figures:
        raise ValueError(f"{points}: no 3D point in any frame")
    log.debug("view: %d person(s) from %s%s", len(figures), points.name, person_suffix(0, P))
    return _doubted(session, figures), pts.fps


def _doubted(session: Session, figures: list[Figure]) -> list[Figure]:
    """``figures``, those the report judged likely no one (``metrics.json`` persons' ``not_a_person``: two cameras'
    detections of something else meeting in 3D) named so ("person3 (not a person?)"); as they are without a report
    newer than the 3D points."""
    import json

    path = session.root / "report" / "metrics.json"
    points = [p for p in (session.points3d("refined"), session.points3d("triangulated")) if p.is_file()]
    try:
        if not points or path.stat().st_mtime < max(p.stat().st_mtime for p in points):
            return figures
        persons = json.loads(path.read_text()).get("persons") or []
    except (OSError, ValueError, AttributeError):
        return figures
    doubt = {p.get("name") for p in persons if isinstance(p, dict) and p.get("not_a_person")}
    return [Figure(f"{f.name} (not a person?)", f.X, f.segments, f.sides, f.joint_names) if f.name in doubt else f
            for f in figures]


def _same_length(figures: list[Figure]) -> list[Figure]:
    F = max(f.X.shape[0] for f in figures)
    out = []
    for f in figures:
        pad = np.full((F - f.X.shape[0],) + f.X.shape[1:], np.nan)
        out.append(Figure(f.name, np.concatenate([f.X, pad]), f.segments, f.sides, f.joint_names))
    return out


def floor_height(figures: list[Figure]) -> float:
    """The floor's z: a low percentile over frames of each frame's lowest point (feet, Z up)."""
    lows = [np.nanmin(np.where(np.isfinite(f.X[..., 2]), f.X[..., 2], np.inf), axis=1) for f in figures]
    low = np.concatenate(lows)
    low = low[np.isfinite(low)]
    return float(np.percentile(low, 5)) if low.size else 0.0


def facing(figures: list[Figure]) -> np.ndarray | None:
    """Unit horizontal direction the performers face on average (left minus right joints, × up), or None."""
    lateral = np.zeros(3)
    for f in figures:
        names = f.joint_names
        left = [i for i, n in enumerate(names) if side_of(n) == LEFT]
        pairs = []
        for i in left:
            mirror = names[i].replace("Left", "Right").replace("left", "right")
            if mirror in names:
                pairs.append((i, names.index(mirror)))
        if pairs:
            a, b = np.array(pairs).T
            d = f.X[:, a] - f.X[:, b]
            lateral += np.nansum(d.reshape(-1, 3), axis=0)
    lateral[2] = 0
    n = np.linalg.norm(lateral)
    if not np.isfinite(n) or n < 1e-9:
        return None
    face = np.cross(lateral / n, [0.0, 0.0, 1.0])
    return face / np.linalg.norm(face)


def session_rig(session: Session) -> Rig | None:
    try:
        return session.rig()
    except (FileNotFoundError, ValueError) as e:
        log.info("view: no cameras shown (%s)", e)
        return None
