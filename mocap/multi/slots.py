"""Who is in which detector slot: ``slots[f, c, p]`` is the slot of camera ``c`` holding person ``p`` in
frame ``f`` (-1: not seen there); a compact JSON record of it; keypoints reordered by it."""

from __future__ import annotations

import base64
import warnings
import zlib

import numpy as np

from mocap.types import Keypoints2D

MOTION_S = 0.25  # a person's motion is measured as its keypoints' displacement over this time
STILL_SHARE = 0.25  # a person moving less than this share of the most moving one is still (best_person)


def encode_slots(slots: np.ndarray) -> dict:
    """(F, C, P) small ints → a compact JSON-able record."""
    slots = np.asarray(slots)
    if slots.size and (slots.max() > 127 or slots.min() < -128):
        raise ValueError(f"association slots must fit a byte (at most 127 detections per view), "
                         f"got {slots.min()}..{slots.max()}")
    a = slots.astype(np.int8)
    return {"shape": list(a.shape), "zlib_b64": base64.b64encode(zlib.compress(a.tobytes(), 9)).decode()}


def decode_slots(record: dict) -> np.ndarray:
    a = np.frombuffer(zlib.decompress(base64.b64decode(record["zlib_b64"])), np.int8)
    return a.reshape(record["shape"]).astype(np.int16)


def encode_masks(masks: dict) -> list:
    """{(frame, view, person): (J,) bool, the keypoints of that detection that are the person's} → JSON rows
    [frame, view, person, hex bit mask of the joints]."""
    return [[int(f), int(c), int(p), hex(int.from_bytes(np.packbits(np.asarray(m, bool), bitorder="little").tobytes(),
                                                         "little"))]
            for (f, c, p), m in sorted(masks.items())]


def decode_masks(rows: list | None, n_joints: int) -> dict:
    return {(int(f), int(c), int(p)): np.array([(int(h, 16) >> j) & 1 for j in range(n_joints)], bool)
            for f, c, p, h in rows or []}


def apply_slots(kp: Keypoints2D, slots: np.ndarray, masks: dict | list | None = None) -> Keypoints2D:
    """Keypoints whose persons axis is the identity: (F, C, P, J, 3), NaN where a person is not seen.
    ``masks`` (the association's ``keypoint_masks``, rows or decoded): the keypoints of a detection that are
    another person's (a detection merging two bodies) are NaN for this one."""
    F, C, S, J = kp.shape
    if slots.shape[:2] != (F, C):
        raise ValueError(f"association: slots {slots.shape} do not fit keypoints {kp.shape}")
    s = np.clip(slots, 0, max(S - 1, 0)).astype(np.intp)
    data = np.take_along_axis(kp.data, s[..., None, None], axis=2) if S else np.full((F, C, 0, J, 3), np.nan)
    data = np.where((slots >= 0)[..., None, None], data, np.nan)
    if isinstance(masks, list):
        masks = decode_masks(masks, J)
    for (f, c, p), m in (masks or {}).items():
        if f < F and c < C and p < data.shape[2]:
            data[f, c, p, :len(m)][~m] = np.nan
    return Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)


SEEN_SHARE = 0.8  # of the longest-seen moving person's two-view frames: motion orders only those seen this long


def best_person(slots: np.ndarray, people: list[dict], motion: np.ndarray | None = None) -> int:
    """The person with the most evidence: seen in the most frames by two views or more, then with the most
    detections in those frames (views × frames), then the lowest track cost (its detections agree best
    across the views). Of two people seen all take long, the one often seen by fewer views, or whose
    detections mix in the other's limbs (where one hides the other), is the worse one to time the cameras
    or refine them on: its errors follow what the people do, as a time offset would. ``motion`` (P,)
    (:func:`image_motion`): a person moving less than ``STILL_SHARE`` of the most moving one's comes after every
    other (a body standing still, a mannequin, tells no time offset: chosen for being seen in every frame by every
    camera, sync found nothing and a camera stayed 3 frames late), and of the others the one with the most motion
    seen, its motion × its detections, comes first (a lag shows as much as the person moves in the frames two
    views see: on a real two-person take, the one moving 0.04 seen in 100 frames hid a 3-frame lag that the one
    moving 0.10 seen in 96 proved)."""
    n_views = (slots >= 0).sum(axis=1)  # (F, P)
    in3d = n_views >= 2
    frames = in3d.sum(axis=0)
    detections = np.where(in3d, n_views, 0).sum(axis=0)
    cost = [p.get("track_cost_mm") for p in people]
    cost = np.array([np.inf if c is None else c for c in cost], float)
    if motion is None:
        return int(np.lexsort((cost, -detections, -frames))[0])
    motion = np.asarray(motion, float)
    still = motion < STILL_SHARE * np.max(motion)
    # motion decides only among the people seen in two views nearly as long as the longest seen (a bystander
    # crossing the back, or one whose detections jitter, moves much and is seen little: never before the performer)
    near = ~still & (frames >= SEEN_SHARE * np.max(np.where(still, 0, frames)))
    seen_moving = np.where(near, -motion * detections, 0.0)
    return int(np.lexsort((cost, -detections, -frames, seen_moving, ~near, still))[0])


def image_motion(kp: Keypoints2D, seconds: float = MOTION_S, min_score: float = 0.2) -> np.ndarray:
    """How much each person moves in the views: (P,) the mean over frames and views of the median over joints of
    each keypoint's displacement over ``seconds``, in units of the person's size in that view (the extent of the
    detection), each term at most 1 (a wrong detection counts as one step); 0 for a person never seen twice that far
    apart. ``kp``: (F, C, P, J, 3) one person per slot (:func:`apply_slots`). A still body's terms are its
    detector's noise; how long a person is seen does not count here (a performer crossing the volume briefly is
    not still)."""
    F, P = kp.shape[0], kp.shape[2]
    w = max(1, int(round(seconds * kp.fps)))
    out = np.zeros(P)
    if w >= F:
        return out
    for p in range(P):  # one person at a time: (F, C, J, 2) temporaries, not (F, C, P, J, 2)
        d = kp.data[:, :, p]
        xy = np.where(d[..., 2:] >= min_score, d[..., :2], np.nan)  # (F, C, J, 2)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN detections
            size = np.nanmax(np.nanmax(xy, axis=2) - np.nanmin(xy, axis=2), axis=-1)  # (F, C)
            step = np.nanmedian(np.linalg.norm(xy[w:] - xy[:-w], axis=-1), axis=-1)  # (F - w, C)
            term = np.minimum(step / np.fmax(size[w:], size[:-w]), 1.0)
            out[p] = np.nanmean(term) if np.isfinite(term).any() else 0.0
    return out
