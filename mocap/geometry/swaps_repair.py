"""Left/right swap repair of a take's keypoints (:class:`~mocap.types.Keypoints2D`, every person): the search
(:func:`mocap.geometry.swaps.find_swaps`) run per person or a stored result reused, the exchanges undone, and the
record of what was repaired (per camera, per view) that later readers of the same keypoints reuse."""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from mocap.geometry.normal_terms import finite
from mocap.geometry.swaps import SwapConfig, find_swaps, swap_groups, swap_permutations
from mocap.types import Keypoints2D, KeypointSet, Rig

log = logging.getLogger("mocap.geometry.swaps")  # the repairs are logged under the swap repair's name, as before
DEFAULT = SwapConfig()


def apply_swaps(data: np.ndarray, swapped: np.ndarray, ks: KeypointSet) -> np.ndarray:
    """data (F, C, J, K) per joint values, swapped (F, C, G) from :func:`find_swaps` → repaired copy (only the
    frames with an exchange gathered)."""
    _, member = swap_groups(ks)
    frames = np.flatnonzero(swapped.any(axis=(1, 2)))
    idx = swap_permutations(ks.flip_permutation, member, swapped[frames])
    out = data.copy()
    out[frames] = np.take_along_axis(data[frames], idx[..., None], axis=2)
    return out


def _digest(kp: Keypoints2D, min_score: float, cfg: SwapConfig) -> str:
    h = hashlib.sha1(np.ascontiguousarray(kp.data, dtype=np.float64).reshape(-1).view(np.uint8))  # no bytes copy
    h.update(repr((kp.keypoint_set, kp.camera_names, min_score, cfg)).encode())
    return h.hexdigest()[:16]


def _frame_ranges(frames: np.ndarray) -> str:
    """[3, 4, 5, 9] → '3–5, 9'."""
    if frames.size == 0:
        return ""
    cuts = np.flatnonzero(np.diff(frames) > 1)
    starts, ends = frames[np.r_[0, cuts + 1]], frames[np.r_[cuts, frames.size - 1]]
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in zip(starts, ends, strict=True))


def repair_keypoints(rig: Rig, kp: Keypoints2D, ks: KeypointSet, min_score: float = 0.2,
                     cfg: SwapConfig = DEFAULT, stored: dict | None = None,
                     work: dict | None = None) -> tuple[Keypoints2D, dict]:
    """Find and undo left/right swaps in every view of every person's detections.

    ``ks``: the keypoints' set (its left/right pairs give the body-side groups). Detections below
    ``min_score`` take no part in the test (they are exchanged with their group).
    ``stored``: the ``swap_repairs`` of an earlier call; reused without a new search when they were
    found on the same keypoints with the same settings. Returns the repaired keypoints and
    {"swaps_repaired": {camera: views (frame, person) changed}, "swap_repairs": {"digest", "groups",
    "views": [[frame, camera, person, group bits], ...]}}. ``work``: filled, when the search ran, with "swapped"
    (F, C, P, G), "min_score" and "persons": per person :func:`find_swaps`'s ``work`` (of the keypoints as given).
    """
    if ks.name != kp.keypoint_set and len(ks.joints) != kp.shape[3]:
        raise ValueError(f"swaps: keypoint set {ks.name!r} does not fit keypoints of {kp.keypoint_set!r}")
    F, C, P, J = kp.shape
    names, member = swap_groups(ks)
    digest = _digest(kp, min_score, cfg)
    swapped = np.zeros((F, C, P, len(names)), bool)
    reuse = bool(stored) and stored.get("digest") == digest and list(stored.get("groups", [])) == list(names)
    if reuse:
        for f, c, p, bits in stored.get("views", []):
            swapped[f, c, p] = [(bits >> g) & 1 for g in range(len(names))]
    else:
        s = kp.score
        w = np.where(np.isfinite(s) & (s >= min_score) & finite(kp.xy), np.maximum(s, 1e-6), 0)
        found = [{} for _ in range(P)]
        for p in range(P):
            swapped[:, :, p] = find_swaps(rig, kp.xy[:, :, p], w[:, :, p], ks, cfg, kp.fps, found[p])[0]
        # a group with no detection in a view has nothing to exchange there (the path over time may pass
        # through it swapped): not a repair, and not counted as one
        swapped &= (finite(kp.xy).astype(np.float32) @ member.astype(np.float32)) > 0
        if work is not None and all(found):
            work.update(swapped=swapped, persons=found, min_score=min_score)
    data = kp.data
    if swapped.any():
        data = np.moveaxis(kp.data, 2, 1).copy()  # (F, P, C, J, 3)
        for p in range(P):
            data[:, p] = apply_swaps(data[:, p], swapped[:, :, p], ks)
        data = np.moveaxis(data, 1, 2)
    views = np.argwhere(swapped.any(axis=-1))
    bits = (swapped.astype(int) << np.arange(len(names))).sum(axis=-1)
    counts = {name: int(swapped[:, c].any(axis=-1).sum()) for c, name in enumerate(kp.camera_names)}
    for c, name in enumerate(kp.camera_names):
        if counts[name]:
            frames = np.flatnonzero(swapped[:, c].any(axis=(-1, -2)))
            parts = ", ".join(f"{n} {int(swapped[:, c, :, g].sum())}" for g, n in enumerate(names)
                              if swapped[:, c, :, g].any())
            log.log(logging.DEBUG if reuse else logging.INFO, "%s: left/right swaps repaired in %d views "
                    "(%s; frames %s)", name, counts[name], parts, _frame_ranges(frames))
    record = {"digest": digest, "groups": list(names), "views": [[int(f), int(c), int(p), int(bits[f, c, p])]
                                                                 for f, c, p in views]}
    return Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps), {"swaps_repaired": counts,
                                                                         "swap_repairs": record}
