"""MediaPipe BlazePose through the Tasks ``PoseLandmarker`` (offline, one or several people).

The ``.task`` bundle is built on first use from the tflite files mediapipe ships (the *full*
landmark model and the pose detector) or from a given landmark model (*heavy*, *lite*), with the
input-normalisation metadata the Tasks API needs; it is cached under ``~/.cache/mocap/models``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from pathlib import Path

import numpy as np

from mocap.io.atomic import atomic_write, atomic_write_text
from mocap.quiet import native_stderr_to_log, quiet_environment

log = logging.getLogger(__name__)
VARIANTS = ("lite", "full", "heavy")
# what mediapipe's flatbuffer readers raise on a file that is not a tflite model: struct.error past the
# buffer's end, AttributeError / TypeError on a missing table (None), IndexError, ValueError, RuntimeError
BAD_MODEL = (struct.error, ValueError, RuntimeError, AttributeError, IndexError, TypeError)


def _import_mediapipe():
    quiet_environment()
    with native_stderr_to_log(log):
        import mediapipe

    return mediapipe


def _package_dir() -> Path:
    mediapipe = _import_mediapipe()

    return Path(os.path.dirname(mediapipe.__file__))


def _mediapipe_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("mediapipe")
    except metadata.PackageNotFoundError:
        return "?"


def landmark_model(variant: str, model_path: str | Path | None = None) -> Path:
    """The landmark tflite for a variant: the given file, or the one in the mediapipe package.

    Nothing is ever downloaded (mediapipe would fetch lite / heavy at run time, without a checksum
    and not atomically): without the file, this says which file to pass."""
    if variant not in VARIANTS:
        raise ValueError(f"blazepose: variant must be one of {VARIANTS}, got {variant!r}")
    if model_path:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"blazepose: model file {path} does not exist (--model-path / detect.model_path)")
        return path
    path = _package_dir() / "modules" / "pose_landmark" / f"pose_landmark_{variant}.tflite"
    if not path.is_file():
        raise FileNotFoundError(
            f"blazepose: the {variant} landmark model is not installed: mediapipe {_mediapipe_version()} ships only "
            f"'full', and mocap downloads nothing. Pass the file with --model-path pose_landmark_{variant}.tflite "
            f"(detect.model_path in mocap.toml; e.g. from the npm package @mediapipe/pose), or use --variant full")
    return path


def build_bundle(variant: str = "full", model_path: str | Path | None = None, cache: Path | None = None) -> Path:
    """Write (once) the PoseLandmarker bundle for ``variant`` and return its path. The bundle is named after
    its two tflite files' content; this process remembers the name for files whose size and time have not
    changed (hashing them costs ~20 ms per detector, and a worker creates one per chunk)."""
    landmarks = landmark_model(variant, model_path)
    detector = _package_dir() / "modules" / "pose_detection" / "pose_detection.tflite"
    cache = cache or Path(os.environ.get("MOCAP_CACHE", Path.home() / ".cache" / "mocap")) / "models"
    seen = (variant, str(cache), *(_file_version(p) for p in (detector, landmarks)))
    out = _bundles.get(seen) or _known(cache, seen)
    if out is not None and out.is_file():
        _bundles[seen] = out
        return out
    blobs = {p: p.read_bytes() for p in (detector, landmarks)}
    key = hashlib.sha256(b"".join(blobs.values())).hexdigest()[:12]
    out = cache / f"pose_landmarker_{variant}_{key}.task"
    if out.is_file():
        _bundles[seen] = out
        _remember(cache, seen, out)
        return out
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, model_asset_bundle_utils

    def with_metadata(blob: bytes, mean: float, std: float, name: str) -> bytes:
        writer = metadata_writer.MetadataWriter.create(bytearray(blob))
        writer.add_general_info(name, "built by mocap from mediapipe's tflite files")
        writer.add_image_input(norm_mean=[mean], norm_std=[std],
                               color_space_type=metadata_writer.metadata_fb.ColorSpaceType.RGB)
        model, _ = writer.populate()
        return model

    try:
        landmarks_blob = with_metadata(blobs[landmarks], 0.0, 255.0, "pose_landmarks_detector")
    except BAD_MODEL as e:
        raise ValueError(f"blazepose: {landmarks}: not a usable tflite landmark model "
                         f"({e})") from None
    files = {"pose_detector.tflite": with_metadata(blobs[detector], 127.5, 127.5, "pose_detector"),
             "pose_landmarks_detector.tflite": landmarks_blob}
    with native_stderr_to_log(log):
        atomic_write(out, lambda tmp: model_asset_bundle_utils.create_model_asset_bundle(files, str(tmp)))
    log.info("built %s", out)
    _bundles[seen] = out
    _remember(cache, seen, out)
    return out


_bundles: dict[tuple, Path] = {}  # (variant, cache, the tflite files' versions) → the bundle built from them
INDEX = "bundles.json"  # in the cache: the same, for every process (a pool worker would hash 9 MB, ~0.02 CPU s)


def _known(cache: Path, seen: tuple) -> Path | None:
    """The bundle the cache's index names for ``seen`` (None: not listed, or no readable index). Only a
    bundle's file name is taken from it, never a path."""
    try:
        name = json.loads((cache / INDEX).read_text()).get(json.dumps(seen))
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".task"):
        return None
    return cache / name


def _remember(cache: Path, seen: tuple, out: Path) -> None:
    """Add ``seen`` → ``out`` to the cache's index (others' entries kept; a failure only costs the next
    process a hash)."""
    try:
        index = json.loads((cache / INDEX).read_text())
        index = index if isinstance(index, dict) else {}
    except (OSError, ValueError):
        index = {}
    index[json.dumps(seen)] = out.name
    try:
        atomic_write_text(cache / INDEX, json.dumps(index, indent=0))
    except OSError as e:
        log.debug("cannot write %s: %s", cache / INDEX, e)


def _file_version(path: Path) -> tuple:
    st = path.stat()
    return str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def to_rgb(image_bgr: np.ndarray) -> np.ndarray:
    """A BGR image as a new contiguous RGB array. OpenCV swaps the channels in 0.2-0.6 ms on a 1080×1920
    frame, where numpy's ``np.ascontiguousarray(image[..., ::-1])`` took 15-16 ms (a strided copy byte by
    byte): on the 4-camera demo that was a third of what was counted as inference. Same bytes."""
    import cv2

    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        return np.ascontiguousarray(image_bgr[..., ::-1])
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


def _landmarker(variant: str, model_path, mode: str, num_poses: int, **thresholds):
    """mediapipe and a PoseLandmarker in ``mode`` (VIDEO or IMAGE) on the offline bundle; a landmark model
    mediapipe cannot use is a ValueError naming the file."""
    mp = _import_mediapipe()
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(build_bundle(variant, model_path))),
        running_mode=getattr(vision.RunningMode, mode), num_poses=num_poses, **thresholds)
    try:
        with native_stderr_to_log(log):  # "GPU support is not available", "Created TensorFlow Lite XNNPACK ..."
            return mp, vision.PoseLandmarker.create_from_options(options)
    except (RuntimeError, ValueError) as e:
        if not model_path:
            raise
        raise ValueError(f"blazepose: {model_path}: mediapipe cannot use this landmark model: {e}") from None


def _poses(result, shape: tuple[int, ...], num_poses: int) -> np.ndarray:
    """(num_poses, 33, 3) from a landmarker result: pixels (centre of the top-left pixel at (0, 0)), visibility."""
    h, w = shape[:2]
    out = np.full((num_poses, 33, 3), np.nan)
    for p, landmarks in enumerate(result.pose_landmarks[:num_poses]):
        out[p] = [[lm.x * w - 0.5, lm.y * h - 0.5, lm.visibility] for lm in landmarks]
    return out


class BlazePose:
    keypoint_set = "blazepose33"

    def __init__(self, variant: str = "full", model_path: str | Path | None = None, num_poses: int = 1,
                 min_detection: float = 0.5, min_tracking: float = 0.5):
        self.num_poses = num_poses
        self._mp, self._landmarker = _landmarker(variant, model_path, "VIDEO", num_poses,
                                                 min_pose_detection_confidence=min_detection,
                                                 min_tracking_confidence=min_tracking)

    def __call__(self, image_bgr: np.ndarray, timestamp_ms: int) -> np.ndarray:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=to_rgb(image_bgr))
        with native_stderr_to_log(log):  # the graph's first frames warn about things only mediapipe could fix
            result = self._landmarker.detect_for_video(image, int(timestamp_ms))
        return _poses(result, image_bgr.shape, self.num_poses)

    def close(self) -> None:
        with native_stderr_to_log(log):
            self._landmarker.close()


class CropPose:
    """The pose landmarker on person boxes (crops), one image at a time (IMAGE mode: no tracking between
    calls, as the crops of one camera are not a video). Used by :mod:`mocap.detect.recover` to look again
    where the other views place a person the first pass missed; several poses per crop, as the crop of a
    person behind another holds both. The landmarker (and mediapipe, ~1 CPU s in a process that has not
    imported it) is made on the first crop: a second pass with no box to look at makes none."""

    keypoint_set = "blazepose33"

    def __init__(self, variant: str = "full", model_path: str | Path | None = None, num_poses: int = 2,
                 min_detection: float = 0.3):
        self.num_poses = num_poses
        self.spec = {"variant": variant, "model_path": model_path, "num_poses": num_poses,  # what a worker makes
                     "min_detection": min_detection}  # the same model from (mocap.detect.recover_pool)
        self._make = lambda: _landmarker(variant, model_path, "IMAGE", num_poses,
                                         min_pose_detection_confidence=min_detection,
                                         min_pose_presence_confidence=min_detection)
        self._landmarker = None

    def close(self) -> None:
        if self._landmarker is not None:
            BlazePose.close(self)
            self._landmarker = None

    def __call__(self, crop_bgr: np.ndarray) -> np.ndarray:
        """(num_poses, 33, 3): x, y in the crop's pixels (centre of the top-left pixel at (0, 0)), score."""
        if self._landmarker is None:
            self._mp, self._landmarker = self._make()
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=to_rgb(crop_bgr))
        with native_stderr_to_log(log):
            result = self._landmarker.detect(image)
        return _poses(result, crop_bgr.shape, self.num_poses)
