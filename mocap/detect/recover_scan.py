"""The second pass's first round (:mod:`mocap.detect.recover`): people the first pass found in no view, or in one,
because they are small in the image.

The first pass finds people with BlazePose's person detector, which looks at the whole image at its input size
(224 × 224 pixels): a person under about 40 % of a 16:9 image's height is then a few pixels of face, and is missed
(three people rendered at 640 × 360, 130 px tall: one found in three views of four, the second in one, the third in
none), although the landmark model finds the same person in a crop around it, where its own detector sees it
larger. The other rounds look where the views that found a person place it; a person found in no view, or in one
view along whose rays no crop agrees, has no such place.

So, in each view whose people are small (the median side of its detections' boxes, or of every view's where that
is smaller, as the people a view found are the larger ones there, compared as angles: pixels ÷ focal length; below
:data:`LARGE` of the image's short side),
every :data:`SCAN_S` seconds the image is cut into overlapping square tiles of :data:`TILE_PEOPLE` person sizes
(:func:`tiles`; the crops of the landmark model, as a tracked person's box is), and each tile goes through the
landmark model. A skeleton found well
inside a tile (:data:`INSIDE` of its keypoints off the tile's border) that is no detection of that view already (its
median keypoint distance to each above ``duplicate_px`` of its box) is a new detection; it is then looked for in
the frames around (up to the next scanned frame's half way, each way) in the box around it, grown by the time
since (:data:`SPEED`, in person sizes per second), and taken where the skeleton found there lies within that
distance of it and nearer it than any detection already there (:func:`mocap.detect.recover.judge`). The rounds
after this one then place the people these detections make in the views that still miss them.

The round runs only on a take of several people (``persons`` ≥ 2, or ``auto`` with two detections in one view and
frame somewhere): one performer alone is found by the first pass as before, at no cost. Its cost is the tiles
(about 55 ms of landmark model each, on every core) and the crops that follow what they find (one a frame per new
person and view, twice a tracked frame's cost): it finds people at that price.
"""

from __future__ import annotations

import math

import numpy as np

from mocap.detect.boxes import person_box

SCAN_S = 1.0  # seconds between scanned frames (each scanned frame's finds are followed half way to the next)
TILE_PEOPLE = 2.0  # a tile's side in person sizes (the largest extent of a detection's keypoints, median)
# share of a tile's side that the next tile overlaps: a person up to 0.72 of the median size always lies inside one
# tile (2 × 0.96 − 1.2 person sizes), a larger one may not (a median-sized one at 6 % of the positions, 1.4× at 33 %)
OVERLAP = 0.4
LARGE = 0.6  # views whose people's boxes are this share of the image's short side are left to the first pass
INSIDE = 0.9  # share of a found skeleton's keypoints inside its tile (not cut by the border): else left to another
BORDER = 0.02  # the tile's border, as a share of its side, where a keypoint counts as cut
SPEED = 1.0  # how far a person may move, in person sizes per second, between a scanned frame and another
GATE = 0.15  # a followed skeleton's agreement gate in person sizes at the scanned frame itself (detector noise)


def extents(view: np.ndarray, min_score: float, min_joints: int, size: tuple[int, int]) -> np.ndarray:
    """The largest extent (px) of each detection's keypoints in one view's detections (F, S, J, 3), flat."""
    ok = np.isfinite(view[..., 2]) & (view[..., 2] >= min_score)
    out = []
    for f, s in zip(*np.nonzero(ok.sum(axis=-1) >= min_joints), strict=True):
        box = person_box(np.where(ok[f, s, :, None], view[f, s, :, :2], np.nan), size, 0.0, 0.0, min_joints)
        if box is not None:
            out.append(box[2])
    return np.array(out)


def several_people(data: np.ndarray, persons: int | str) -> bool:
    """Whether the take holds several people: ``persons`` ≥ 2, or ``auto`` with two detections (F, C, S, J, 3)
    in one view and frame somewhere."""
    if persons != "auto":
        return int(persons) >= 2
    return bool((np.isfinite(data[..., 0]).any(axis=-1).sum(axis=-1) >= 2).any())


def tiles(size: tuple[int, int], side: float) -> list[np.ndarray]:
    """Overlapping square tiles (x0, y0, side) covering an image of ``size`` (width, height), each ``side`` px
    (at most the short side), :data:`OVERLAP` of it shared with the next."""
    w, h = size
    side = float(min(side, w, h))

    def starts(length: float) -> np.ndarray:
        n = 1 + max(0, math.ceil((length - side) / (side * (1 - OVERLAP)) - 1e-9))
        return np.linspace(0.0, length - side, n) if n > 1 else np.array([(length - side) / 2])

    return [np.array([x, y, side]) for y in starts(h) for x in starts(w)]


def scanned_frames(F: int, fps: float) -> tuple[np.ndarray, int]:
    """The frames scanned (every :data:`SCAN_S` seconds, the last frame's half interval covered too) and how far
    around each one its finds are followed."""
    every = max(1, int(round(SCAN_S * fps)))
    frames = np.arange(0, F, every)
    half = every // 2
    if F - 1 - frames[-1] > half:
        frames = np.append(frames, F - 1)
    return frames, half


def new_skeleton(found: np.ndarray, tile: np.ndarray, dets: np.ndarray, min_score: float, min_joints: int,
                 duplicate: float, margin: float, size: tuple[int, int]) -> int:
    """Which skeleton found in a tile (N, J, 3) is a new detection (-1: none): enough keypoints, well inside the
    tile, and no duplicate of a detection already in the view (``dets`` (M, J, 2)): its median distance to each
    above ``duplicate`` × its box side (with ``margin``). The one with the most keypoints first."""
    from mocap.detect.recover import median_distance

    x0, y0, side = tile
    lo, hi = np.array([x0, y0]) + BORDER * side, np.array([x0, y0]) + (1 - BORDER) * side
    xy = np.where((found[..., 2:] >= min_score) & np.isfinite(found[..., 2:]), found[..., :2], np.nan)
    count = np.isfinite(xy[..., 0]).sum(axis=-1)
    for k in np.argsort(-count, kind="stable"):
        if count[k] < min_joints:
            break
        seen = xy[k][np.isfinite(xy[k, :, 0])]
        if np.all((seen >= lo) & (seen <= hi), axis=-1).mean() < INSIDE:
            continue
        box = person_box(xy[k], size, margin, 0.0, min_joints)
        if box is None:
            continue
        if len(dets) and np.min(median_distance(xy[k][None], dets, min_joints)) <= duplicate * box[2]:
            continue
        return int(k)
    return -1


def scan_round(run, persons: int | str) -> None:
    """The round (see the module) on :class:`mocap.detect.recover._Run` ``run``: tiles in every view of small
    people, then the frames around each new detection."""
    from mocap.detect.recover import Candidate, judge, others_in_view

    data, cfg, kp = run.data, run.cfg, run.kp
    F, C = data.shape[:2]
    stats = run.stats.setdefault("scan", {"tiles": dict.fromkeys(run.names, 0), "found": dict.fromkeys(run.names, 0),
                                          "followed": dict.fromkeys(run.names, 0)})
    if not several_people(data, persons):
        stats["skipped"] = "one person (no view holds two detections in a frame)"
        return
    # people's sizes as angles (pixels ÷ focal length): pooled across views of other resolutions or lenses (in
    # pixels, two 2560 × 1440 cameras among 640 × 360 ones took the small views' people: 20 tiles where none were due)
    focal = [float(np.sqrt(cam.K[0, 0] * cam.K[1, 1])) for cam in run.rig.cameras]
    per_view = [extents(data[:, c], run.min_score, cfg.min_joints, run.rig[c].size) / focal[c] for c in range(C)]
    known = np.concatenate(per_view)
    if not known.size:
        stats["skipped"] = "no detection to size people by"
        return
    frames, half = scanned_frames(F, kp.fps)
    todo = []
    everyone = float(np.median(known))
    for c, cam in enumerate(run.rig.cameras):  # the view's own people, or the others' where smaller (the ones
        angle = min(float(np.median(per_view[c])), everyone) if per_view[c].size else everyone  # it found: nearer)
        person = angle * focal[c]
        if person * (1 + 2 * cfg.margin) >= LARGE * min(cam.size):
            continue  # large people: the whole-image detector sees them
        for f in frames:
            todo += [Candidate(int(f), c, -2, tile, np.empty((0, 2)), 0.0) for tile in tiles(cam.size,
                                                                                            TILE_PEOPLE * person)]
    if not todo:
        stats["skipped"] = "every view's people are large"
        return
    found_at: list[tuple[int, int, np.ndarray]] = []

    def decide_tile(cand, found: np.ndarray) -> tuple[int, str, float]:
        f, c, n = cand.frame, cand.camera, found.shape[1]
        stats["tiles"][run.names[c]] += 1
        dets = others_in_view(data[f, c, :, :n], np.empty((0, n, 2)), run.mirror)
        k = new_skeleton(found, cand.box, dets, run.min_score, cfg.min_joints, cfg.duplicate_px, cfg.margin,
                         run.rig[c].size)
        if k < 0:
            return -1, "", float("inf")  # (a tile without a new person is no rejection)
        found_at.append((f, c, found[k].copy()))
        stats["found"][run.names[c]] += 1
        return k, "recovered", 0.0

    run.look(todo, decide_tile, lambda cand: -2)
    follow = []
    for f, c, skeleton in found_at:
        xy = np.where(skeleton[:, 2:] >= run.min_score, skeleton[:, :2], np.nan)
        size = person_box(xy, run.rig[c].size, 0.0, 0.0, cfg.min_joints)[2]
        for g in range(max(0, f - half), min(F, f + half + 1)):
            if g == f:
                continue
            dt = abs(g - f) / kp.fps
            box = person_box(xy, run.rig[c].size, cfg.margin + SPEED * dt, cfg.min_inside, cfg.min_joints)
            if box is not None:
                follow.append(Candidate(g, c, -2, box, xy, size * (GATE + SPEED * dt)))

    def decide_follow(cand, found: np.ndarray) -> tuple[int, str, float]:
        f, c, n = cand.frame, cand.camera, found.shape[1]
        others = others_in_view(data[f, c, :, :n], np.empty((0, n, 2)), run.mirror)
        k, why, dist = judge(found, cand.predicted[:n], cand.gate_px, others, run.min_score, cfg.min_joints,
                             cfg.duplicate_px * cand.box[2])
        if k >= 0:
            stats["followed"][run.names[c]] += 1
        return k, ("" if why == "duplicate" else why), dist  # the first pass's own detection of it: no rejection

    run.look(follow, decide_follow, lambda cand: -2)
