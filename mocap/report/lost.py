"""A camera that loses the people while they stand in its view, far more often than the other cameras do.

The other cameras carry the 3D through such frames, so nothing else fires: the real demo with cam01's pixels × 0.12
(underexposed) found the performer in 68 % of its frames where the others found them in all, its median 7.0 →
11.3 px, and the report passed the take saying nothing (its detection rate only in the log, at INFO). Per camera,
over the take's people: the frames a person stands in its view (half their projected joints or more inside its
image) with no detection of them there. A camera losing :data:`LOST_SHARE` of them or more, and :data:`LOST_RATIO`
times the other cameras' median share, is said: ``lost_cameras`` in ``metrics.json``, a warning, each person's row
``lost`` (its hint, unless the row has one: flagged or seeing no one say more), and the dark footage check
(:mod:`mocap.report.dark`) looks at it. Not a fault of the 3D: the verdict is unchanged.

The frames where a person's image box meets another person's in that camera (:func:`crossed`, from the take's
:func:`image_boxes`) do not count: one person hidden behind another is no fault of the camera (on 12 synthetic takes
of 2-5 people crossing, cameras lost a person in up to 38 % of its frames in view, and the real two-person take's
cam03 one in 30 %, all where they crossed; the rest: 0-4 %).
"""

from __future__ import annotations

import warnings

import numpy as np

from mocap.types import Rig

LOST_SHARE = 0.1  # a camera losing the people in this share of the frames they stand in its view ...
LOST_RATIO = 3.0  # ... and this many times the other cameras' median share: said
LOST_HINT = ("lost {who} in {share:.0%} of the frames {they} stood in its view (the other cameras: {others:.0%}): "
             "footage dark, blurred or out of focus, a smeared lens, or {who} hidden from this camera?")
LOST_BLANK_HINT = ("lost {who} in {share:.0%} of the frames {they} stood in its view (the other cameras: "
                   "{others:.0%}); {blank} frame(s) of its video are black, most likely frames that could not be "
                   "decoded (a damaged file: re-export or re-encode it)")


def in_view_frames(rig: Rig, uv: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, C) whether at least half the person's known joints project inside each camera's image (in front of it),
    and (F,) the frames where the person has a known joint. uv (F, C, J, 2) projected, X (F, J, 3)."""
    known = np.isfinite(X).all(axis=-1)  # (F, J)
    size = np.array([c.size for c in rig.cameras], float)[None, :, None]  # (1, C, 1, 2)
    with np.errstate(invalid="ignore"):
        inside = np.all((uv >= -0.5) & (uv <= size - 0.5), axis=-1) & known[:, None]  # (F, C, J)
    share = inside.sum(axis=-1) / np.maximum(known.sum(axis=-1), 1)[:, None]
    present = known.sum(axis=1) > 0
    return (share >= 0.5) & present[:, None], present


def crossed(boxes: np.ndarray | None, person: int, uv: np.ndarray) -> np.ndarray:
    """(F, C) where the person's image box (its projected joints ``uv`` (F, C, J, 2)) meets another person's box
    (``boxes`` (F, C, P, 4) from :func:`image_boxes`) in that camera: frames where a detector may miss them for being
    hidden or merged, left out of what a camera lost. All False without boxes (one person)."""
    out = np.zeros(uv.shape[:2], bool)
    if boxes is None or boxes.shape[2] < 2:
        return out
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames without the person: NaN boxes, meeting nothing
        mine = np.concatenate([np.nanmin(uv, axis=2), np.nanmax(uv, axis=2)], axis=-1)[:, :, None]  # (F, C, 1, 4)
        meets = ((mine[..., 0] <= boxes[..., 2]) & (boxes[..., 0] <= mine[..., 2])
                 & (mine[..., 1] <= boxes[..., 3]) & (boxes[..., 1] <= mine[..., 3]))  # (F, C, P)
    meets[:, :, person] = False
    return meets.any(axis=2)


def image_boxes(rig: Rig, xyz: np.ndarray) -> np.ndarray | None:
    """(F, C, P, 4) each person's image box in each camera (min x, min y, max x, max y of the projected corners of
    its 3D box; NaN where the person has no point), once per take; None with one person."""
    F, P = xyz.shape[:2]
    if P < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanmin(xyz, axis=2), np.nanmax(xyz, axis=2)  # (F, P, 3)
        bits = np.array([[i >> k & 1 for k in range(3)] for i in range(8)], bool)  # (8, 3)
        corners = np.where(bits[None, None], hi[:, :, None], lo[:, :, None])  # (F, P, 8, 3)
        pr = rig.project(corners.reshape(-1, 3)).reshape((len(rig), F, P, 8, 2))
        return np.moveaxis(np.concatenate([np.nanmin(pr, axis=3), np.nanmax(pr, axis=3)], axis=-1), 0, 1)


def lost_counts(rows: dict[str, dict], view: np.ndarray, det: np.ndarray) -> None:
    """In place, on one person's camera rows: ``in_view_frames`` (frames the person stands in its view, apart from
    another person's: ``view`` (F, C), see :func:`in_view_frames` and :func:`crossed`), ``lost_frames`` (those with
    no detection of them: ``det`` (F, C, J) the person's scored detections) and ``lost_share``."""
    lost = (view & ~det.any(axis=2)).sum(axis=0)
    frames = view.sum(axis=0)
    for i, row in enumerate(rows.values()):
        row |= {"in_view_frames": int(frames[i]), "lost_frames": int(lost[i]),
                "lost_share": float(lost[i] / frames[i]) if frames[i] else float("nan")}


def lost_cameras(tables: list[dict[str, dict]], blank: dict | None = None) -> dict[str, dict]:
    """{camera: {"share", "others", "text"}} for the cameras that lose the people far more than the others (see the
    module), from each person's camera table in ``tables`` (their :func:`lost_counts`); those rows get ``lost`` and,
    without a hint, its text. ``blank``: {camera: {"frames": n, ...}} the frames of its video that were black (not
    decodable, :func:`mocap.report.repeated.blank_record`): where they are half its lost frames or more, the text names
    them instead of dark footage."""
    names = list(tables[0]) if tables else []
    # a person the camera is said never to detect (missed, saw no one): not counted again here
    said = [[bool(t[n].get("missed") or t[n].get("unseen")) for t in tables] for n in names]
    lost = np.array([sum(t[n].get("lost_frames", 0) for t, s in zip(tables, said[i], strict=True) if not s)
                     for i, n in enumerate(names)], float)
    frames = np.array([sum(t[n].get("in_view_frames", 0) for t, s in zip(tables, said[i], strict=True) if not s)
                       for i, n in enumerate(names)], float)
    share = np.where(frames > 0, lost / np.maximum(frames, 1), np.nan)
    one = len(tables) == 1
    out = {}
    for i, name in enumerate(names):
        others = np.delete(share, i)
        others = others[np.isfinite(others)]
        if not np.isfinite(share[i]) or not others.size or not any(t[name].get("detections", 0) for t in tables):
            continue
        ref = float(np.median(others))
        if share[i] >= LOST_SHARE and share[i] >= LOST_RATIO * ref:
            black = (blank or {}).get(name, {}).get("frames", 0)
            black = black if black >= lost[i] / 2 else 0  # the black frames explain much of what it lost
            text = (LOST_BLANK_HINT if black else LOST_HINT).format(
                who="the performer" if one else "the people", they="they", share=share[i], others=ref, blank=black)
            out[name] = {"share": float(share[i]), "others": ref, "text": text}
            for t in tables:  # the rows of the people it had in view
                if t[name].get("in_view_frames", 0):
                    t[name]["lost"] = out[name]
                    t[name]["hint"] = t[name].get("hint") or text
    return out
