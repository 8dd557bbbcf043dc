"""Who is in which detector slot: ``slots[f, c, p]`` is the slot of camera ``c`` holding person ``p`` in
frame ``f`` (-1: not seen there); a compact JSON record of it; keypoints reordered by it."""

from __future__ import annotations

import base64
import warnings
import zlib

import numpy as np

from mocap.types import Keypoints2D

MOTION_S = 0.25  # a person's motion is measured as its keypoints' displacement over this time
STILL_SHARE = 0.25  # a person moving less than this share of the most moving one ... (moving)
NOISE_RATIO = 2.0  # ... and over MOTION_S less than this many times as far as from one frame to the next is still


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


def moving(motion: np.ndarray, jitter: np.ndarray | None = None) -> np.ndarray:
    """(P,) bool: the people who move. Still: under ``STILL_SHARE`` of the most moving one's :func:`image_motion`
    ``motion`` (P,), and, with ``jitter`` (P,) (the same from one frame to the next), under ``NOISE_RATIO`` times
    its own jitter: its keypoints move over a quarter second no further than its detector's noise moves them from
    frame to frame. A body standing still (a mannequin) tells no time offset, and its points, the same at every lag,
    only dilute those of the people who do (on a real two-person take, the one moving 0.04 hid a 3-frame lag that
    the one moving 0.10 proved; there 4.6 and 8.3 times their jitter). The jitter keeps a performer moving slowly
    beside a bystander moving much (a quarter of its motion) who may be seen by some cameras only. Every person when
    none moves."""
    motion = np.asarray(motion, float)
    if not motion.size or not np.max(motion) > 0:
        return np.ones(motion.size, bool)
    keep = motion >= STILL_SHARE * np.max(motion)
    return keep if jitter is None else keep | (motion >= NOISE_RATIO * np.asarray(jitter, float))


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
