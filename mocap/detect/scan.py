"""``persons = auto`` at the cost of the people in view: BlazePose tracks the people it follows on every frame
and looks for new ones only every ``scan_every`` frames.

MediaPipe's ``PoseLandmarker`` in VIDEO mode runs its person detector on every frame where it follows fewer
poses than ``num_poses``; with ``num_poses`` = :data:`~mocap.stages.detect.AUTO_PERSONS` (10) that is every
frame of a take with fewer than 10 people: +58 % inference CPU on a single-person camera of the Pose2Sim demo
(34.6 against 21.9 ms a frame on one core). :class:`ScanningPose` instead keeps a VIDEO landmarker whose
``num_poses`` is the number of people it follows (k, at least 1), and every ``scan_every`` frames runs the pose
detector alone (:class:`PersonScanner`, the ``pose_detection`` model of the same ``.task`` bundle: 13.7 ms a
frame) on the whole image. A detection that no followed person explains (each explains the one box it overlaps
most, by more than the landmarker's own tracking threshold ``min_tracking``: the IoU MediaPipe's association uses
for the same decision) is a new person: the landmarker is made again with k = followed + new (capped at
``num_poses``), and its first frame finds them all. When it follows fewer than k people at
:data:`SHRINK_SCANS` scans in a row (someone left: MediaPipe then runs its detector on every frame to find
them), it is made again with k = the people it still follows (at least 1). A take with one person therefore
gives exactly what ``persons = 1`` gives, plus the scans' cost, as long as no scan finds anyone else.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from mocap.detect.blazepose import _import_mediapipe, _landmarker, _poses, build_bundle, to_rgb
from mocap.quiet import native_stderr_to_log

log = logging.getLogger(__name__)
SHRINK_SCANS = 3  # scans in a row with fewer people followed than k before the landmarker is made for fewer
EXPAND = 1.25  # MediaPipe's person box: the circle around the body (centre at the hips) grown by this factor
HIPS = (23, 24)  # blazepose33: left and right hip


def scanning(cfg) -> bool:
    """Whether the detect config ``cfg`` runs :class:`ScanningPose`: ``persons = auto`` with BlazePose and
    ``scan_every`` > 1 (1: MediaPipe's person detector on every frame, as before the scans)."""
    return cfg.persons == "auto" and cfg.detector == "blazepose" and cfg.scan_every > 1


def describe(stats: list[dict]) -> str:
    """One camera's :attr:`ScanningPose.stats` (one per chunk) in words."""
    grown, shrunk = sum(s["grown"] for s in stats), sum(s["shrunk"] for s in stats)
    return (f"persons = auto: {sum(s['scans'] for s in stats)} scans for new people, landmarker made again "
            f"{grown + shrunk} times ({grown} for more people, {shrunk} for fewer), at most "
            f"{max(s['most'] for s in stats)} people followed")


class PersonScanner:
    """MediaPipe's pose detector alone (``PoseDetectorGraph``, IMAGE mode): the person boxes of one image, as
    (N, 4) x0, y0, x1, y1 in pixels (the detector's expanded, square box; its rotation ignored)."""

    def __init__(self, bundle: Path, num_poses: int, min_detection: float = 0.5):
        mp = _import_mediapipe()
        from mediapipe.python import packet_creator, packet_getter
        from mediapipe.tasks.cc.vision.pose_detector.proto import pose_detector_graph_options_pb2
        from mediapipe.tasks.python.core import base_options, task_info
        from mediapipe.tasks.python.vision.core import base_vision_task_api, vision_task_running_mode

        with zipfile.ZipFile(bundle) as z:  # the bundle's detector, with its input-normalisation metadata
            model = z.read("pose_detector.tflite")

        class Options:
            def to_pb2(self):
                out = pose_detector_graph_options_pb2.PoseDetectorGraphOptions(
                    min_detection_confidence=min_detection, num_poses=num_poses)
                out.base_options.CopyFrom(base_options.BaseOptions(model_asset_buffer=model).to_pb2())
                return out

        info = task_info.TaskInfo(task_graph="mediapipe.tasks.vision.pose_detector.PoseDetectorGraph",
                                  input_streams=["IMAGE:image_in", "NORM_RECT:norm_rect_in"],
                                  output_streams=["EXPANDED_POSE_RECTS:rects", "IMAGE:image_out"],
                                  task_options=Options())
        self._mp, self._create, self._get = mp, packet_creator, packet_getter
        with native_stderr_to_log(log):
            self._api = base_vision_task_api.BaseVisionTaskApi(
                info.generate_graph_config(), vision_task_running_mode.VisionTaskRunningMode.IMAGE, None)

    def __call__(self, image) -> np.ndarray:
        """``image``: a mediapipe Image (SRGB)."""
        rect = self._api.convert_to_normalized_rect(None, image, roi_allowed=False)
        with native_stderr_to_log(log):
            out = self._api._process_image_data({"image_in": self._create.create_image(image),
                                                 "norm_rect_in": self._create.create_proto(rect.to_pb2())})
        if out["rects"].is_empty():
            return np.zeros((0, 4))
        h, w = image.height, image.width
        boxes = [(r.x_center * w, r.y_center * h, r.width * w, r.height * h)
                 for r in self._get.get_proto_list(out["rects"])]
        c = np.array(boxes, float).reshape(-1, 4)
        return np.stack([c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2, c[:, 0] + c[:, 2] / 2, c[:, 1] + c[:, 3] / 2],
                        axis=-1)

    def close(self) -> None:
        with native_stderr_to_log(log):
            self._api.close()


def pose_boxes(poses: np.ndarray) -> np.ndarray:
    """The person box MediaPipe would track for each pose (P, 33, 3) in pixels: a square centred on the hips
    whose half side is :data:`EXPAND` × the farthest landmark's distance from them (the detector's circle
    around the body). (P, 4) x0, y0, x1, y1."""
    hips = poses[:, HIPS, :2].mean(axis=1)  # (P, 2)
    r = np.nanmax(np.linalg.norm(poses[..., :2] - hips[:, None], axis=-1), axis=-1) * EXPAND
    return np.concatenate([hips - r[:, None], hips + r[:, None]], axis=-1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes a (N, 4) and b (M, 4) (x0, y0, x1, y1): (N, M)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def new_people(found: np.ndarray, followed: np.ndarray, min_iou: float) -> int:
    """How many of the detector's boxes ``found`` (N, 4) no followed person (boxes (M, 4)) explains: each followed
    person explains at most one box, the one it overlaps most (pairs taken by decreasing overlap) if by more than
    ``min_iou`` (two people close together are two boxes overlapping one followed person)."""
    if not len(followed) or not len(found):
        return len(found)
    overlap = iou(found, followed)
    explained = 0
    while overlap.size and overlap.max() > min_iou:
        i, j = np.unravel_index(np.argmax(overlap), overlap.shape)
        overlap[i, :] = overlap[:, j] = -1.0
        explained += 1
    return len(found) - explained


class ScanningPose:
    """BlazePose for ``persons = auto`` (see the module): up to ``num_poses`` people per frame, new ones looked
    for every ``scan_every`` frames. ``stats``: scans, landmarkers made again (grown, shrunk), the most people
    followed. ``phase``: the output-frame index (video frame // stride) of the first frame it is given, set by
    :func:`mocap.detect.chunks.detect_video`: it scans its first frame, then the frames whose index is a multiple of
    ``scan_every``, so a chunk of a camera (``detect.split``, cluster chunks) scans where the whole camera does."""

    keypoint_set = "blazepose33"

    def __init__(self, variant: str = "full", model_path: str | Path | None = None, num_poses: int = 10,
                 scan_every: int = 15, min_detection: float = 0.5, min_tracking: float = 0.5):
        if scan_every < 1 or num_poses < 1:
            raise ValueError(f"blazepose: need scan_every ≥ 1 and num_poses ≥ 1, got {scan_every} and {num_poses}")
        self.num_poses, self.scan_every, self.min_tracking = num_poses, scan_every, min_tracking
        self._make = lambda k: _landmarker(variant, model_path, "VIDEO", k, min_pose_detection_confidence=min_detection,
                                           min_tracking_confidence=min_tracking)[1]
        self._mp = _import_mediapipe()
        self._scanner = PersonScanner(build_bundle(variant, model_path), num_poses, min_detection)
        self._tracker = None
        self.k = 0  # the landmarker's num_poses: the people it follows
        try:
            self._follow(1)  # made now, as BlazePose makes its landmarker (a pool worker makes detectors ahead)
        except Exception:
            self._scanner.close()  # a landmark model mediapipe refuses: the detector's graph is not left open
            raise
        self._reset()

    def _reset(self) -> None:
        self._frame = 0
        self.phase = 0
        self._short = 0  # scans in a row that found it following fewer than k
        self._last = np.zeros((0, 33, 3))  # the people followed in the last frame
        self.stats = {"frames": 0, "scans": 0, "grown": 0, "shrunk": 0, "most": 0}

    def restart(self) -> None:
        """Be a new detector again, for another video or chunk: a new landmarker following one person (a tracking
        graph cannot restart: see :mod:`mocap.detect.chunks`), the scan counter, phase and stats reset. The person
        scanner is kept (IMAGE mode: no state between images; made anew it costs ~0.07 CPU s), so the output is
        what a new ScanningPose gives."""
        if self._scanner is None:
            raise RuntimeError("blazepose: a closed ScanningPose cannot restart")
        self._follow(1)
        self._reset()

    def _follow(self, k: int) -> None:
        if self._tracker is not None:
            with native_stderr_to_log(log):
                self._tracker.close()
        self._tracker, self.k, self._short = self._make(k), k, 0

    def _scan(self, image) -> None:
        self.stats["scans"] += 1
        found = self._scanner(image)
        followed = len(self._last)
        new = new_people(found, pose_boxes(self._last), self.min_tracking)
        want = min(self.num_poses, max(1, followed + new))
        if want > self.k:
            self.stats["grown"] += 1
            log.debug("frame %d: %d new people found, following %d", self._frame, new, want)
            self._follow(want)
        elif followed < self.k:
            self._short += 1
            if self._short >= SHRINK_SCANS and want < self.k:
                self.stats["shrunk"] += 1
                log.debug("frame %d: following %d of %d people for %d scans", self._frame, followed, self.k,
                          self._short)
                self._follow(want)
        else:
            self._short = 0

    def __call__(self, image_bgr: np.ndarray, timestamp_ms: int) -> np.ndarray:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=to_rgb(image_bgr))
        if self._frame == 0 or (self.phase + self._frame) % self.scan_every == 0:
            self._scan(image)
        self._frame += 1
        self.stats["frames"] += 1
        with native_stderr_to_log(log):
            result = self._tracker.detect_for_video(image, int(timestamp_ms))
        out = _poses(result, image_bgr.shape, self.num_poses)
        self._last = out[np.isfinite(out[:, :, 0]).any(axis=1)]
        self.stats["most"] = max(self.stats["most"], len(self._last))
        return out

    def close(self) -> None:
        if self._scanner is not None:
            self._scanner.close()
            self._scanner = None
        if self._tracker is not None:
            with native_stderr_to_log(log):
                self._tracker.close()
            self._tracker = None


def fit_persons_axis(path: Path, slots: int | None = None) -> None:
    """``persons = auto``: cut the persons axis of a finished ``pose2d.h5`` to the slots that hold a detection in
    some frame and view (at least 1; a take with one person then has the file ``persons = 1`` gives), or with
    ``slots``, give it that many again (a cut file resumed: the detector fills all of them). The file is written
    anew beside it (config, info and completion kept) and renamed over it."""
    import os
    from contextlib import closing

    from mocap.io.hdf5 import (
        create_keypoints2d,
        keypoints2d_cameras,
        keypoints2d_info,
        keypoints2d_status,
        write_camera,
    )

    with closing(keypoints2d_cameras(path)) as cameras:  # the file closed on every path (an error included)
        (F, C, P, J), names, keypoint_set, fps = next(cameras)
        filled = np.zeros(P, bool)
        for data in cameras:  # one camera at a time: the file may be large (up to AUTO_PERSONS slots per view)
            filled |= np.isfinite(data[..., 0]).any(axis=(0, 2))
    used = np.flatnonzero(filled)
    n = slots or (int(used[-1]) + 1 if len(used) else 1)
    if n == P or n <= (used[-1] if len(used) else -1):
        return
    complete, config = keypoints2d_status(path)
    info = keypoints2d_info(path)
    tmp = path.with_name(path.stem + ".persons.h5")
    create_keypoints2d(tmp, F, list(names), n, keypoint_set, fps, config, info)
    keep = min(n, P)
    try:
        with closing(keypoints2d_cameras(path)) as cameras:
            next(cameras)
            for c, piece in enumerate(cameras):
                if complete[c]:
                    data = np.full((F, n, J, 3), np.nan, np.float32)
                    data[:, :keep] = piece[:, :keep]
                    write_camera(tmp, c, data)
    except BaseException:  # a failed copy (disk full, Ctrl-C) leaves the file as it was and no half copy beside it
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    log.info("persons = auto: %d detection slots per view, %d before (the most people any view held: %d)", n,
             P, used[-1] + 1 if len(used) else 0)
