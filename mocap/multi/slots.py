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
    keys = sorted(masks)
    if not keys:
        return []
    rows = [np.asarray(masks[k], bool) for k in keys]
    if len({len(m) for m in rows}) == 1:  # the bytes of every row at once (a long crowd take has 10⁵ of them)
        packed = np.packbits(np.stack(rows), axis=1, bitorder="little")
    else:
        packed = [np.packbits(m, bitorder="little") for m in rows]
    return [[int(f), int(c), int(p), hex(int.from_bytes(b.tobytes(), "little"))]
            for (f, c, p), b in zip(keys, packed, strict=True)]


def decode_masks(rows: list | None, n_joints: int) -> dict:
    """:func:`encode_masks`'s rows → {(frame, view, person): (n_joints,) bool} (the joints' bits; any beyond them
    ignored). Decoded together: bit by bit in Python, a 12-camera, 5-person take's 10⁵ rows took 2 s a time."""
    if not rows:
        return {}
    width, keep = (n_joints + 7) // 8, (1 << n_joints) - 1
    raw = b"".join((int(h, 16) & keep).to_bytes(width, "little") for *_, h in rows)
    bits = np.unpackbits(np.frombuffer(raw, np.uint8).reshape(len(rows), width), axis=1, bitorder="little")
    bits = bits[:, :n_joints].astype(bool)
    return {(int(f), int(c), int(p)): m for (f, c, p, _), m in zip(rows, bits, strict=True)}


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
    at = [(k, m) for k, m in (masks or {}).items() if k[0] < F and k[1] < C and k[2] < data.shape[2]]
    if at:  # every mask at once: True beyond a mask's length (a mask shorter than the joints leaves the rest)
        f, c, p = np.array([k for k, _ in at], np.intp).T
        if all(len(m) == J for _, m in at):
            mine = np.stack([np.asarray(m, bool) for _, m in at])
        else:
            mine = np.ones((len(at), J), bool)
            for i, (_, m) in enumerate(at):
                mine[i, : len(m)] = np.asarray(m, bool)[:J]
        part = data[f, c, p]  # (N, J, 3)
        part[~mine] = np.nan
        data[f, c, p] = part
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
