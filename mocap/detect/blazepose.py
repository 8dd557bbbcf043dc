"""MediaPipe BlazePose through the Tasks ``PoseLandmarker`` (offline, one or several people).

The ``.task`` bundle is built on first use from the tflite files mediapipe ships (the *full*
landmark model and the pose detector) or from a given landmark model (*heavy*, *lite*), with the
input-normalisation metadata the Tasks API needs; it is cached under ``~/.cache/mocap/models``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
VARIANTS = ("lite", "full", "heavy")


def _package_dir() -> Path:
    import mediapipe

    return Path(os.path.dirname(mediapipe.__file__))


def landmark_model(variant: str, model_path: str | Path | None = None) -> Path:
    """The landmark tflite for a variant: the given file, or the one in the mediapipe package."""
    if variant not in VARIANTS:
        raise ValueError(f"blazepose: variant must be one of {VARIANTS}, got {variant!r}")
    if model_path:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"blazepose: model file {path} does not exist")
        return path
    path = _package_dir() / "modules" / "pose_landmark" / f"pose_landmark_{variant}.tflite"
    if not path.is_file():  # online, mediapipe fetches its own copy; offline this fails and we say what to do
        try:
            from mediapipe.python.solutions import download_utils

            download_utils.download_oss_model(f"mediapipe/modules/pose_landmark/pose_landmark_{variant}.tflite")
        except (OSError, ValueError, ConnectionError) as e:
            log.info("could not download the %s model: %s", variant, e)
    if not path.is_file():
        raise FileNotFoundError(
            f"blazepose: the {variant} model is not in the mediapipe package ({path}); mediapipe 0.10.21 ships only "
            f"'full'. Pass model_path=<pose_landmark_{variant}.tflite> (e.g. the heavy model of the npm package "
            "@mediapipe/pose) or use variant='full'")
    return path


def build_bundle(variant: str = "full", model_path: str | Path | None = None, cache: Path | None = None) -> Path:
    """Write (once) the PoseLandmarker bundle for ``variant`` and return its path."""
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, model_asset_bundle_utils

    landmarks = landmark_model(variant, model_path)
    detector = _package_dir() / "modules" / "pose_detection" / "pose_detection.tflite"
    blobs = {p: p.read_bytes() for p in (detector, landmarks)}
    key = hashlib.sha256(b"".join(blobs.values())).hexdigest()[:12]
    cache = cache or Path(os.environ.get("MOCAP_CACHE", Path.home() / ".cache" / "mocap")) / "models"
    out = cache / f"pose_landmarker_{variant}_{key}.task"
    if out.is_file():
        return out

    def with_metadata(blob: bytes, mean: float, std: float, name: str) -> bytes:
        writer = metadata_writer.MetadataWriter.create(bytearray(blob))
        writer.add_general_info(name, "built by mocap from mediapipe's tflite files")
        writer.add_image_input(norm_mean=[mean], norm_std=[std],
                               color_space_type=metadata_writer.metadata_fb.ColorSpaceType.RGB)
        model, _ = writer.populate()
        return model

    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.part")
    model_asset_bundle_utils.create_model_asset_bundle({
        "pose_detector.tflite": with_metadata(blobs[detector], 127.5, 127.5, "pose_detector"),
        "pose_landmarks_detector.tflite": with_metadata(blobs[landmarks], 0.0, 255.0, "pose_landmarks_detector"),
    }, str(tmp))
    os.replace(tmp, out)
    log.info("built %s", out)
    return out


class BlazePose:
    keypoint_set = "blazepose33"

    def __init__(self, variant: str = "full", model_path: str | Path | None = None, num_poses: int = 1,
                 min_detection: float = 0.5, min_tracking: float = 0.5):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        self.num_poses = num_poses
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(build_bundle(variant, model_path))),
            running_mode=vision.RunningMode.VIDEO, num_poses=num_poses,
            min_pose_detection_confidence=min_detection, min_tracking_confidence=min_tracking)
        self._landmarker = vision.PoseLandmarker.create_from_options(options)

    def __call__(self, image_bgr: np.ndarray, timestamp_ms: int) -> np.ndarray:
        rgb = np.ascontiguousarray(image_bgr[..., ::-1])
        result = self._landmarker.detect_for_video(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb),
                                                   int(timestamp_ms))
        h, w = image_bgr.shape[:2]
        out = np.full((self.num_poses, 33, 3), np.nan)
        for p, landmarks in enumerate(result.pose_landmarks[: self.num_poses]):
            out[p] = [[lm.x * w - 0.5, lm.y * h - 0.5, lm.visibility] for lm in landmarks]
        return out

    def close(self) -> None:
        self._landmarker.close()
