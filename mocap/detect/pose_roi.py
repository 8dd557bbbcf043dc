"""BlazePose's landmark model on a given ROI, without the person detector (MediaPipe's *tracking* step).

BlazePose's person detector leans on the face: a person whose face is hidden, blurred or turned away may not be
detected from scratch (on the Pose2Sim demo a blacked-out head defeats it in 14 of 200 frames; the rest it still
finds), though the landmark model follows them once it has an ROI. MediaPipe's tracking runs the landmark model
directly on an ROI made from the previous frame's landmarks; :class:`RoiPose` does the same on ROIs made by
:func:`roi_from_points` from any skeleton (e.g. one predicted from the other views and projected into this one,
:mod:`mocap.detect.recover`).

The chain is MediaPipe's ``PoseLandmarkByRoiCpu`` / the Tasks ``SinglePoseLandmarksDetectorGraph``: the rotated
square ROI warped to the model's input (256 × 256 for lite / full / heavy, read from the model) with bilinear
sampling and the border replicated (ImageToTensor's default there: neither graph sets ``border_mode``), colours
as floats in [0, 1]; the model through mediapipe's ``InferenceCalculator`` (TFLite, XNNPACK); its 39 landmarks
decoded by ``TensorsToLandmarksCalculator`` (visibility and presence are logits: sigmoid) and refined from the
heatmap (``RefineLandmarksFromHeatmapCalculator``, kernel 7), as both graphs do; the pose flag is already a
probability (the model ends in a logistic). The first 33 landmarks are projected back to the image as
MediaPipe's ``LandmarkProjectionCalculator`` does, then shifted as :func:`mocap.detect.blazepose._poses`
(pixel centres at integers): the results are in the repo's convention, comparable with ``CropPose``'s. (MediaPipe's
crop reads the ROI's centre half a pixel off its projection's; kept, so that the landmarks agree with the
landmarker's. The cv2 crop here gives the model's outputs of MediaPipe's own ImageToTensor on the same ROI to 0.03
crop pixels.) Nothing is downloaded: the model is :func:`mocap.detect.blazepose.landmark_model`'s file.

Cost (CPU time per ROI, the first call's setup excluded, one ROI a call, 40 calls on a 1080 × 1920 frame of the
Pose2Sim demo; a 2-vCPU AMD EPYC with two other processes keeping both cores busy; mediapipe 0.10.21, XNNPACK):
full 18.8 ms (the warp and colour conversion 0.5 of it), heavy 61 ms. The IMAGE-mode landmarker (detector then
landmarks, :class:`mocap.detect.blazepose.CropPose`) on a 256-pixel person crop: 31 ms. The first call makes the
graph: ~0.1 s (full) / 0.3 s (heavy) once mediapipe is imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCALE = 1.25  # MediaPipe's RectTransformationCalculator on the pose ROI (detection → ROI and landmarks → ROI)
HIPS, SHOULDERS = (23, 24), (11, 12)
EXTENT, TORSO = 1.09, 1.74  # MediaPipe's body radius |AB| over the farthest landmark's distance / the torso length
BORDERS = ("replicate", "zero")

GRAPH = """
input_stream: "crop"
output_stream: "landmarks"
output_stream: "presence"
node { calculator: "ImageToTensorCalculator" input_stream: "IMAGE:crop" output_stream: "TENSORS:input"
  options { [mediapipe.ImageToTensorCalculatorOptions.ext] { output_tensor_width: SIZE output_tensor_height: SIZE
    keep_aspect_ratio: true output_tensor_float_range { min: 0.0 max: 1.0 } } } }
node { calculator: "InferenceCalculator" input_stream: "TENSORS:input" output_stream: "TENSORS:output"
  options { [mediapipe.InferenceCalculatorOptions.ext] { model_path: "MODEL" delegate { xnnpack {} } } } }
node { calculator: "SplitTensorVectorCalculator" input_stream: "output"
  output_stream: "lm" output_stream: "flag" output_stream: "heatmap"
  options { [mediapipe.SplitVectorCalculatorOptions.ext] {
    ranges: { begin: 0 end: 1 } ranges: { begin: 1 end: 2 } ranges: { begin: 3 end: 4 } } } }
node { calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:flag" output_stream: "FLOAT:presence" }
node { calculator: "TensorsToLandmarksCalculator" input_stream: "TENSORS:lm" output_stream: "NORM_LANDMARKS:raw"
  options { [mediapipe.TensorsToLandmarksCalculatorOptions.ext] { num_landmarks: 39 input_image_width: SIZE
    input_image_height: SIZE visibility_activation: SIGMOID presence_activation: SIGMOID } } }
node { calculator: "RefineLandmarksFromHeatmapCalculator" input_stream: "NORM_LANDMARKS:raw"
  input_stream: "TENSORS:heatmap" output_stream: "NORM_LANDMARKS:landmarks"
  options { [mediapipe.RefineLandmarksFromHeatmapCalculatorOptions.ext] { kernel_size: 7 } } }
"""


def roi_from_points(uv: np.ndarray, min_joints: int = 8) -> tuple[float, float, float, float] | None:
    """The pose ROI ``(cx, cy, side, angle)`` of a BlazePose-33 skeleton's pixel points ``uv`` (33, 2), NaN where
    unknown; None with fewer than ``min_joints`` finite points or with no hip and no shoulder.

    MediaPipe's landmarks → ROI rule (``PoseLandmarksToRoi``) takes two auxiliary landmarks the model predicts
    besides the 33: A, the centre, and B, a point such that |AB| is the radius of the circle around the whole body
    and A → B points up the body; ``AlignmentPointsRectsCalculator`` makes the square of side 2 |AB| centred on A,
    rotated by ``pi/2 - atan2(-(By - Ay), Bx - Ax)``, and ``RectTransformationCalculator`` scales it by 1.25.
    Without A and B, their equivalents from the 33 points (pixels, y down). Fitted to the model's own A and B on
    the 400 frames of the Pose2Sim demo (4 views, each tracked from its own A and B): A is the hips' midpoint (within
    2 % of |AB|), A → B is hips → shoulders (within 3°), and |AB| is 1.09 × the farthest landmark's distance from
    A (0.91-1.11 on 90 % of the frames) or 1.74 × the torso (0.89-1.04). The rule below gives the model's ROI
    within 4 % in side on 80 % of the frames (0.93-1.11 at worst), 4.5° in angle and 2 % of |AB| in centre:

    * centre c: the hips' midpoint (one hip alone when the other is unknown; with no hip, the shoulders'
      midpoint moved down the body by 0.3 × the skeleton's extent along it);
    * up direction d: hips' midpoint → shoulders' midpoint; with only hips or only shoulders, the direction
      from the finite leg points (knees, ankles, heels, feet) to c, else straight up (0, -1);
    * radius r = max(e, sqrt(1.09 e × 1.74 t)) with e = max |p - c| over the finite points and t = |shoulders'
      midpoint - hips' midpoint|; r = 1.09 e when the torso is unknown (no hip or no shoulder);
    * ``cx, cy = c``, ``side = 2 * 1.25 * r``, ``angle = pi/2 - atan2(-d_y, d_x)`` wrapped to [-pi, pi):
      MediaPipe's ``NormalizedRect.rotation``, 0 for a person upright in the image, positive clockwise on screen
      (the ROI's axes in the image are x' = (cos a, sin a), y' = (-sin a, cos a): y' points to the feet).
    """
    uv = np.asarray(uv, dtype=float)
    if uv.shape != (33, 2):
        raise ValueError(f"roi_from_points: expected blazepose33 pixel points of shape (33, 2), got {uv.shape}")
    ok = np.isfinite(uv).all(axis=1)
    if ok.sum() < min_joints:
        return None
    hips = [uv[k] for k in HIPS if ok[k]]
    shoulders = [uv[k] for k in SHOULDERS if ok[k]]
    if not hips and not shoulders:
        return None
    hip = np.mean(hips, axis=0) if hips else None
    shoulder = np.mean(shoulders, axis=0) if shoulders else None
    torso = float(np.linalg.norm(shoulder - hip)) if hip is not None and shoulder is not None else 0.0
    if torso > 0:
        d = shoulder - hip
    else:
        anchor = hip if hip is not None else shoulder
        legs = uv[25:33][ok[25:33]]
        d = anchor - legs.mean(axis=0) if len(legs) else np.array([0.0, -1.0])
        if not np.linalg.norm(d) > 0:
            d = np.array([0.0, -1.0])
    d = d / np.linalg.norm(d)
    if hip is not None:
        c = hip
    else:  # no hip: the shoulders moved down the body by an estimated torso length
        along = (uv[ok] - shoulder) @ d
        c = shoulder - 0.3 * float(np.ptp(along)) * d
    e = float(np.max(np.linalg.norm(uv[ok] - c, axis=1)))
    if not e > 0:
        return None
    r = max(e, float(np.sqrt(EXTENT * e * TORSO * torso))) if torso > 0 else EXTENT * e
    angle = float(np.pi / 2 - np.arctan2(-d[1], d[0]))
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    return float(c[0]), float(c[1]), 2 * SCALE * r, angle


def crop_matrix(roi, size: int) -> np.ndarray:
    """(2, 3) affine map image pixels → the model's ``size``-pixel crop of ``roi``, as MediaPipe's ImageToTensor
    builds it: the ROI's corners onto the crop's corners (0 and ``size`` in OpenCV's pixel-centre coordinates), the
    ROI's centre taken in MediaPipe's image coordinates (the repo's + 0.5, as :func:`blazepose._poses` undoes)."""
    cx, cy, side, angle = (float(v) for v in roi)
    c, s = np.cos(angle), np.sin(angle)
    k = size / side
    A = k * np.array([[c, s], [-s, c]])  # k R(angle)^T
    b = size / 2 - A @ np.array([cx + 0.5, cy + 0.5])
    return np.hstack([A, b[:, None]])


def project(norm_xy: np.ndarray, roi) -> np.ndarray:
    """Landmarks normalised in the crop (N, 2) → image pixels (repo convention), as MediaPipe's
    ``LandmarkProjectionCalculator`` then :func:`blazepose._poses`: ``c + side R(angle) (xy - 0.5)``."""
    cx, cy, side, angle = (float(v) for v in roi)
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s], [s, c]])
    return (np.asarray(norm_xy, float) - 0.5) @ R.T * side + np.array([cx, cy])


def _check_roi(roi) -> tuple[float, float, float, float]:
    try:
        vals = tuple(float(v) for v in roi)
    except (TypeError, ValueError):
        raise ValueError(f"RoiPose: an ROI is (cx, cy, side, angle_rad), got {roi!r}") from None
    if len(vals) != 4 or not np.isfinite(vals).all() or not vals[2] > 0:
        raise ValueError(f"RoiPose: an ROI is 4 finite numbers (cx, cy, side > 0, angle_rad), got {roi!r}")
    return vals  # type: ignore[return-value]


def input_size(model: Path) -> int:
    """The landmark model's square input side (256 for BlazePose lite / full / heavy), from the tflite."""
    from mediapipe.tasks.metadata import schema_py_generated as fb

    g = fb.Model.GetRootAsModel(Path(model).read_bytes(), 0).Subgraphs(0)
    _, h, w, _ = (int(d) for d in g.Tensors(int(g.InputsAsNumpy()[0])).ShapeAsNumpy())
    if h != w:
        raise ValueError(f"RoiPose: {model}: expected a square input, got {h}x{w}")
    return h


class RoiPose:
    """The pose landmark model on ROIs of an image: ``(image_bgr, [roi, ...]) → (landmarks (N, 33, 3), presence
    (N,))``. Landmarks: x, y in the image's pixels (centre of the top-left pixel at (0, 0)) and the landmark's
    visibility as score (as the landmarker's results, :func:`blazepose._poses`); presence: the model's pose flag
    (a probability; MediaPipe's graph keeps a pose at ≥ 0.5). Landmarks are returned whatever the presence. The
    graph (and mediapipe, ~1 CPU s in a process that has not imported it) is made on the first call; ``spec``
    rebuilds the same model in another process (``RoiPose(**spec)``). ``border``: the image outside the frame,
    ``replicate`` (MediaPipe's) or ``zero`` (black)."""

    keypoint_set = "blazepose33"

    def __init__(self, variant: str = "full", model_path: str | Path | None = None, border: str = "replicate"):
        from mocap.detect.blazepose import VARIANTS

        if variant not in VARIANTS:
            raise ValueError(f"RoiPose: variant must be one of {VARIANTS}, got {variant!r}")
        if border not in BORDERS:
            raise ValueError(f"RoiPose: border must be one of {BORDERS}, got {border!r}")
        self.spec = {"variant": variant, "model_path": model_path, "border": border}
        self._graph = None
        self.size = 0

    def _start(self) -> None:
        from mocap.detect.blazepose import landmark_model
        from mocap.detect.hand_graphs import _Graph

        model = landmark_model(self.spec["variant"], self.spec["model_path"])
        self.size = input_size(model)
        path = str(Path(model).resolve()).replace("\\", "\\\\").replace('"', '\\"')
        self._graph = _Graph(GRAPH.replace("SIZE", str(self.size)).replace("MODEL", path), ("landmarks", "presence"))

    def raw(self, crop_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The model on one RGB crop of the input size: all 39 landmarks (39, 5) (x, y normalised in the crop, z,
        visibility, presence) and the pose flag."""
        if self._graph is None:
            self._start()
        if crop_rgb.shape != (self.size, self.size, 3):
            raise ValueError(f"RoiPose: the model takes a {self.size}x{self.size} RGB crop, got {crop_rgb.shape}")
        out = self._graph.run(crop_rgb)
        mp = self._graph.mp
        lms = mp.packet_getter.get_proto(out["landmarks"]).landmark
        pts = np.array([(m.x, m.y, m.z, m.visibility, m.presence) for m in lms])
        return pts, float(mp.packet_getter.get_float(out["presence"]))

    def __call__(self, image_bgr: np.ndarray, rois: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        image_bgr = np.asarray(image_bgr)
        if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            raise ValueError(f"RoiPose: expected a uint8 BGR image (H, W, 3), got {image_bgr.dtype} "
                             f"{image_bgr.shape}")
        rois = [_check_roi(r) for r in rois]
        landmarks, presence = np.full((len(rois), 33, 3), np.nan), np.zeros(len(rois))
        if rois and self._graph is None:
            self._start()
        border = cv2.BORDER_REPLICATE if self.spec["border"] == "replicate" else cv2.BORDER_CONSTANT
        for n, roi in enumerate(rois):
            crop = cv2.warpAffine(image_bgr, crop_matrix(roi, self.size), (self.size, self.size),
                                  flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)
            pts, presence[n] = self.raw(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB, dst=crop))
            landmarks[n, :, :2] = project(pts[:33, :2], roi)
            landmarks[n, :, 2] = pts[:33, 3]
        return landmarks, presence

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None
