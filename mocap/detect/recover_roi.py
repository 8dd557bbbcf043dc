"""The second pass's last look at a tracked person the crop did not give: the landmark model alone on the ROI their
predicted skeleton makes in that view (:class:`mocap.detect.pose_roi.RoiPose`), as MediaPipe's tracking does.

The crop (:mod:`mocap.detect.recover`) runs BlazePose's landmarker in IMAGE mode: its person detector first, and
that detector is face-driven. A performer whose face is hidden, blurred or turned away is not found in the crop,
or the crop gives the person in front again; the first pass only kept such a performer while it tracked them. On
Pose2Sim's two-person take played forward and back (397 frames; the man's face is blurred in the footage) cam01 lost
the man in 28 of the 99 frames of the last pass (first pass and crop), his predicted skeleton in plain view
behind the woman: the crop found her (rejected as a duplicate) or nothing.

Here each tracked candidate whose crop was rejected (nothing found, a duplicate, or outside the gate with every
body it found someone already known in the view: :func:`unexplained`) is looked at once more: the ROI from its
predicted joints (:func:`mocap.detect.pose_roi.roi_from_points`: centred on the hips, turned upright, MediaPipe's
size), the landmark model on it, and the skeleton judged exactly as a crop's
(:func:`mocap.detect.recover_judge.judge`: within the person's gate, not a duplicate of anyone in the view), kept
only when the model's pose flag is at least :data:`MIN_PRESENCE` (MediaPipe's own threshold for a tracked pose).
Only while the prediction's gate has not doubled (the person triangulated within ~10 frames at 60 fps; the
association's rule for a track resuming in one view): the ROI is made from the prediction alone, and the model
fills an ROI with a pose whether or not one is there (its flag stays near 1 with the arms wrong); on the long take,
ROIs of predictions coasting with 200-390 px gates gave skeletons 50-370 px off the people's final reprojection.
A frame is decoded once per camera for all its ROIs; the model alone costs ~19 CPU ms an ROI (BlazePose full;
heavy 61 ms; the crop's landmarker 31 ms: 2 vCPUs, both busy). The ROIs of a round are computed ahead in the
pass's worker processes (:mod:`mocap.detect.recover_pool`, as its crops are) and judged here in frame order, so
the detections are those of one process looking at them in turn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RETRY = frozenset({"nothing found", "outside the gate", "duplicate"})  # a crop's verdicts worth the ROI's look
MIN_PRESENCE = 0.5  # the model's pose flag: MediaPipe keeps a tracked pose at this or more
SIZE_RATIO = 2.0  # an unknown body in the crop is taken for the person looked for within this ratio of its size


def unexplained(found: np.ndarray, others: np.ndarray, gate_px: float, min_score: float, min_joints: int,
                predicted: np.ndarray | None = None, mirror: np.ndarray | None = None) -> bool:
    """Whether a crop's skeletons ``found`` (N, J, 3) hold a body that is no one already known in the view: farther
    than ``gate_px`` from every skeleton of ``others`` (M, J, 2: the view's detections and the other people's
    projections), and, with ``predicted`` (J, 2: the person looked for), of the person's size (within
    :data:`SIZE_RATIO` of the prediction's extent) and not the person with left and right exchanged (within the gate
    of the prediction mirrored by ``mirror``, the keypoint set's flip permutation). Then the person looked for may
    be that body, away from a prediction that is off (a camera's pose off, a person moving faster than the gate): no
    ROI is made there, where the model would find a pose whatever is there (one detection fewer on Pose2Sim's
    two-person demo with cam02's pose turned 3°, none on the others tried). A body of another size is someone else
    (a bystander farther off, a part of a body); one that is the person mirrored (seen from behind) is the person,
    known: on that demo with the man walking out of views, his mirrored detections in cam02 (100-350 px from his
    prediction as given) had stopped the ROI looks that kept his track (98 → 84 frames)."""
    from mocap.detect.recover_judge import median_distance

    found = np.asarray(found, float)
    xy = np.where((found[..., 2:] >= min_score) & np.isfinite(found[..., 2:]), found[..., :2], np.nan)
    body = np.isfinite(xy[..., 0]).sum(axis=-1) >= min_joints
    if predicted is not None and body.any():
        pred = np.asarray(predicted, float)[:, :2]
        # the prediction over the joints each body has (a body cut by the crop's edge is compared part for part)
        ratio = _extent(xy) / np.maximum(_extent(np.where(np.isfinite(xy), pred[None], np.nan)), 1.0)
        body &= (ratio >= 1 / SIZE_RATIO) & (ratio <= SIZE_RATIO)
        n = pred.shape[0]
        if mirror is not None and len(mirror) >= n and (np.asarray(mirror[:n]) < n).all():
            body &= ~(median_distance(xy, pred[np.asarray(mirror[:n])][None], min_joints) <= gate_px)
    if not body.any():
        return False
    if not len(others):
        return True
    d = median_distance(xy[:, None], np.asarray(others, float)[None], min_joints).min(axis=1)
    return bool(np.any(body & (d > gate_px)))


def _extent(xy: np.ndarray) -> np.ndarray:
    """(N,) the diagonal of each skeleton's (N, J, 2) bounding box over its finite points (0: none)."""
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanmin(np.where(np.isfinite(xy), xy, np.inf), axis=1), np.nanmax(
            np.where(np.isfinite(xy), xy, -np.inf), axis=1)
    d = np.linalg.norm(hi - lo, axis=-1)
    return np.where(np.isfinite(d), d, 0.0)


def look_on_rois(run, todo: list, decide: Callable, person: Callable) -> None:
    """For each (candidate, the crop's verdict) in ``todo`` (:class:`mocap.detect.recover.Candidate` of
    ``run``, a :class:`mocap.detect.recover._Run` with a ``roi_model``): the landmark model on the candidate's ROI,
    judged by ``decide(cand, found)`` and written as the crop's would be; a candidate still not recovered counts
    under the ROI's verdict (the crop's where no ROI could be made or the video had no such frame). The ROIs of
    views with a free slot are computed ahead in the pass's worker processes when it has them (or enough ROIs to
    start them, :func:`mocap.detect.recover_pool.computed_rois`), else in turn here; judged in this process in
    frame order either way, so the detections written are the same."""
    from mocap.detect import recover_pool
    from mocap.detect.pose_roi import roi_from_points
    from mocap.detect.recover import free_slot

    by_camera: dict[int, list] = {}
    for cand, why in todo:
        by_camera.setdefault(cand.camera, []).append((cand, why))
    stats = run.stats
    wanted: dict[int, list] = {}  # camera: [(video frame, candidate, the crop's verdict, ROI)], in frame order
    for c, items in sorted(by_camera.items()):
        items.sort(key=lambda t: int(run.video_frames[t[0].frame]))
        rows = [(int(run.video_frames[cand.frame]), cand, why, roi_from_points(cand.predicted[:33]))
                for cand, why in items]
        for row in rows:
            if row[3] is None:
                run.reject(c, row[2])
        if rows := [row for row in rows if row[3] is not None]:
            wanted[c] = rows
    free = {c: [k for k, row in enumerate(rows) if free_slot(run.data[row[1].frame, c]) >= 0]
            for c, rows in wanted.items()}
    ready = recover_pool.computed_rois(run, {c: [wanted[c][k][0::3] for k in ks] for c, ks in free.items() if ks})
    for c, rows in wanted.items():
        name = run.names[c]
        if ready is None:
            found_at = recover_pool.serial_rois(run.videos[name], [row[0::3] for row in rows], run.roi_model)
        else:  # slots only fill during the round: a view without one when it started has none now
            found_at = dict(zip(free[c], ready.get(c, []), strict=True)).__getitem__
        try:
            for k, (_, cand, why, _) in enumerate(rows):
                if free_slot(run.data[cand.frame, c]) < 0:  # another person's skeleton took the last slot
                    stats["no_free_slot"][name] += 1
                    continue
                got = found_at(k)
                if got is None:  # the video has no such frame: the crop's verdict stands
                    run.reject(c, why)
                    continue
                stats.setdefault("looked_roi", dict.fromkeys(run.names, 0))[name] += 1
                landmarks, presence = got
                if presence < MIN_PRESENCE:
                    run.reject(c, "nothing found")
                    continue
                found = np.array(landmarks[None, :cand.predicted.shape[0]], float)
                best, why2, dist = decide(cand, found)
                if best >= 0 and run.write(cand.frame, c, found[best], person(cand), dist, cand.gate_px):
                    run.from_roi.add(tuple(run.recovered_at[-1][:3]))  # (frame, camera, slot)
                elif best < 0:
                    run.reject(c, why2)
        finally:
            if ready is None:
                found_at.close()
