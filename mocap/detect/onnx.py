"""RTMPose (SimCC, top-down) and RTMO (one-stage, multi-person) from a user-supplied ``.onnx`` file.

RTMPose: one input (1, 3, H, W), outputs ``simcc_x`` (1, K, W·r) and ``simcc_y`` (1, K, H·r). The
person box is the previous frame's keypoints grown by 25 % (the whole image at the start or after
a loss); the crop keeps the model's aspect ratio; decoding takes the arg-max of each axis and the
smaller of the two maxima as the score. RTMO: outputs ``dets`` (1, N, 5) and ``keypoints``
(1, N, K, 3) in input pixels (letterboxed, pad value 114). RTMPose's input is RGB normalised with the ImageNet
mean and std, RTMO's the letterboxed image as it is, BGR 0–255 (MMPose's RTMO configs: mean 0, std 1, no
channel swap; it was fed RTMPose's, values of −2 to 2.6 in the wrong channel order).

Whole-body models (RTMW and DWPose with COCO-WholeBody 133 keypoints, Halpe 136) are mapped onto
``blazepose33_hands``: body, feet and both hands by name, BlazePose's eye corners and mouth from the
68 face points, its index / pinky / thumb points from the hand's knuckles; what a model lacks stays NaN.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from mocap.keypoint_sets import keypoint_set_for_count
from mocap.quiet import native_stderr_to_log

log = logging.getLogger(__name__)
COCO_BODY = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
             "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
             "right_knee", "left_ankle", "right_ankle")
# whole-body layouts: (body + feet names in order, first face index, first left-hand index)
WHOLE_BODY = {
    133: (COCO_BODY + ("left_foot_index", "left_small_toe", "left_heel", "right_foot_index", "right_small_toe",
                       "right_heel"), 23, 91),  # COCO-WholeBody
    136: (COCO_BODY + ("head", "neck", "hip", "left_foot_index", "right_foot_index", "left_small_toe",
                       "right_small_toe", "left_heel", "right_heel"), 26, 94),  # Halpe 136
}
# iBUG 68 face points BlazePose names (the person's left / right)
FACE = {"right_eye_outer": 36, "right_eye_inner": 39, "left_eye_inner": 42, "left_eye_outer": 45,
        "mouth_right": 48, "mouth_left": 54}
# BlazePose's hand points are knuckles: index / pinky MCP, thumb MCP
KNUCKLES = {"index": "index_mcp", "pinky": "pinky_mcp", "thumb": "thumb_mcp"}


def whole_body_map(n: int) -> np.ndarray:
    """For a whole-body model of ``n`` keypoints: the source index of each ``blazepose33_hands`` joint (-1: none)."""
    from mocap.detect.hands import HAND_POINTS
    from mocap.keypoint_sets import get_keypoint_set

    names, face, hand = WHOLE_BODY[n]
    source = {name: i for i, name in enumerate(names)}
    source.update({name: face + k for name, k in FACE.items()})
    for s, side in enumerate(("left", "right")):
        source.update({f"{side}_{p}": hand + 21 * s + k for k, p in enumerate(HAND_POINTS)})
        source.update({f"{side}_{b}": source[f"{side}_{h}"] for b, h in KNUCKLES.items()})
    return np.array([source.get(j, -1) for j in get_keypoint_set("blazepose33_hands").joints])
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


DEVICE_ENV = "MOCAP_ONNX_DEVICE"  # auto (default) | cuda | cpu


def select_providers(available: list[str], device: str = "auto") -> list[str]:
    """onnxruntime execution providers for ``device``: ``auto`` takes CUDA when this onnxruntime has it
    (the ``onnxruntime-gpu`` package), else the CPU; ``cuda`` insists on it; ``cpu`` never uses it."""
    device = (device or "auto").lower()
    if device not in ("auto", "cuda", "cpu"):
        raise ValueError(f"onnx detector: device must be auto, cuda or cpu (${DEVICE_ENV}), got {device!r}")
    cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not cuda:
        raise ValueError(f"onnx detector: device cuda asked for, but this onnxruntime offers only {available}; "
                         "install onnxruntime-gpu (README: GPU) or use device auto / cpu")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda and device != "cpu" else ["CPUExecutionProvider"]


class OnnxPose:
    def __init__(self, model_path: str | Path, num_poses: int = 1, min_score: float = 0.3, device: str | None = None,
                 **_ignored):
        import os

        import onnxruntime as ort

        path = Path(model_path or "")
        if not path.is_file():
            raise FileNotFoundError(f"onnx detector: model file {str(path) if model_path else '(none given)'} does "
                                    "not exist (detect.model_path, or --model-path)")
        self.providers = select_providers(ort.get_available_providers(), device or os.environ.get(DEVICE_ENV, "auto"))
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: graph-optimisation notes are nothing the user can act on
        try:
            with native_stderr_to_log(log):
                self.session = ort.InferenceSession(str(path), options, providers=self.providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ValueError(f"{path}: not a loadable ONNX model: {e}") from None
        log.debug("onnx detector %s on %s", path.name, self.session.get_providers())
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        shapes = {o.name: o.shape for o in outs}
        if len(ins) != 1 or len(ins[0].shape) != 4 or ins[0].shape[1] != 3:
            raise ValueError(f"{path}: unsupported ONNX signature: expected one (1, 3, H, W) image input, got "
                             f"{[(i.name, i.shape) for i in ins]}")
        self.input = ins[0].name
        dims = zip(ins[0].shape[2:], (256, 192), strict=True)  # dynamic sizes: RTMPose's 256 x 192
        self.H, self.W = (int(v) if isinstance(v, int) else d for v, d in dims)
        names = [o.name for o in outs]
        if len(outs) == 2 and all(len(s) == 3 for s in shapes.values()):
            self.kind = "simcc"
            sx, sy = outs[0].shape, outs[1].shape
            K = sx[1]
            if not (isinstance(sx[2], int) and isinstance(sy[2], int)) or sx[2] * self.H != sy[2] * self.W:
                raise ValueError(f"{path}: unsupported ONNX signature: SimCC outputs must be (1, K, W·r) and "
                                 f"(1, K, H·r) for the input {self.H}x{self.W}, got {sx} and {sy}")
            self.ratio = sx[2] / self.W
        elif len(outs) == 2 and sorted(len(s) for s in shapes.values()) == [3, 4]:
            self.kind = "rtmo"
            K = next(s for s in shapes.values() if len(s) == 4)[2]
            self.dets_name = next(n for n, s in shapes.items() if len(s) == 3)
            self.kpts_name = next(n for n, s in shapes.items() if len(s) == 4)
        else:
            raise ValueError(f"{path}: unsupported ONNX signature: expected RTMPose (simcc_x, simcc_y) or RTMO "
                             f"(dets, keypoints) outputs, got {[(n, shapes[n]) for n in names]}")
        if not isinstance(K, int):
            raise ValueError(f"{path}: unsupported ONNX signature: the number of keypoints is not fixed ({K})")
        self.remap = whole_body_map(K) if K in WHOLE_BODY else None
        self.keypoint_set = "blazepose33_hands" if self.remap is not None else keypoint_set_for_count(K)
        self.K, self.num_poses, self.min_score = K, num_poses, min_score
        # RTMPose is top-down without a person detector here: one person per view; RTMO finds everyone
        self.max_poses = 1 if self.kind == "simcc" else None
        self.description = f"RTMPose top-down model {path.name}" if self.kind == "simcc" else f"RTMO model {path.name}"
        self.boxes: list[np.ndarray] = []

    def _blob(self, img: np.ndarray) -> np.ndarray:
        rgb = img[..., ::-1].astype(np.float32)
        return ((rgb - MEAN) / STD).transpose(2, 0, 1)[None]

    def _crop(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Affine crop of ``box`` (x0, y0, x1, y1) to the model input; returns (crop, 2x3 inverse)."""
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        w, h = (box[2] - box[0]) * 1.25, (box[3] - box[1]) * 1.25
        aspect = self.W / self.H
        w, h = (h * aspect, h) if w < h * aspect else (w, w / aspect)
        src = np.float32([[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2], [cx - w / 2, cy + h / 2]])
        dst = np.float32([[-0.5, -0.5], [self.W - 0.5, -0.5], [-0.5, self.H - 0.5]])
        M = cv2.getAffineTransform(src, dst)
        return cv2.warpAffine(image, M, (self.W, self.H), flags=cv2.INTER_LINEAR), cv2.invertAffineTransform(M)

    def _simcc(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        boxes = self.boxes or [np.array([0.0, 0.0, w - 1.0, h - 1.0])]
        out = np.full((self.num_poses, self.K, 3), np.nan)
        kept = []
        for p, box in enumerate(boxes[: self.num_poses]):
            crop, inv = self._crop(image, box)
            sx, sy = self.session.run(None, {self.input: self._blob(crop)})
            x, y = np.argmax(sx[0], axis=1) / self.ratio, np.argmax(sy[0], axis=1) / self.ratio
            score = np.minimum(sx[0].max(axis=1), sy[0].max(axis=1))
            pts = np.stack([x, y, np.ones_like(x)], axis=1) @ inv.T
            out[p] = np.concatenate([pts, score[:, None]], axis=1)
            good = score >= self.min_score
            if good.sum() >= 3:
                kept.append(np.concatenate([pts[good].min(0), pts[good].max(0)]))
        self.boxes = kept
        return out

    def _rtmo(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        s = min(self.W / w, self.H / h)
        canvas = np.full((self.H, self.W, 3), 114, np.uint8)
        canvas[: round(h * s), : round(w * s)] = cv2.resize(image, (round(w * s), round(h * s)))
        res = dict(zip([o.name for o in self.session.get_outputs()],
                       self.session.run(None, {self.input: canvas.astype(np.float32).transpose(2, 0, 1)[None]}),
                       strict=True))
        dets, kpts = res[self.dets_name][0], res[self.kpts_name][0]
        order = np.argsort(-dets[:, 4])
        out = np.full((self.num_poses, self.K, 3), np.nan)
        for p, n in enumerate([n for n in order if dets[n, 4] >= self.min_score][: self.num_poses]):
            out[p, :, :2] = kpts[n, :, :2] / s
            out[p, :, 2] = kpts[n, :, 2]
        return out

    def __call__(self, image_bgr: np.ndarray, timestamp_ms: int) -> np.ndarray:
        out = self._simcc(image_bgr) if self.kind == "simcc" else self._rtmo(image_bgr)
        if self.remap is None:
            return out
        mapped = out[:, self.remap]
        mapped[:, self.remap < 0] = np.nan
        return mapped

    def close(self) -> None:
        self.session = None
