"""The mediapipe calculator graphs the hand detector (:mod:`mocap.detect.hands`) runs, and their runners: the hand
landmark model on a crop (``VARIANT``: lite or full; :mod:`mocap.detect.hand_onnx` runs the same model through
onnxruntime, faster, and this graph is its fallback), Holistic's hand re-crop model, and the palm detector. They use
the tflite files of the installed mediapipe package; nothing is downloaded."""

from __future__ import annotations

import contextlib
import logging
import os

import numpy as np

from mocap.quiet import native_stderr_to_log

log = logging.getLogger("mocap.detect.hands")
VARIANTS = ("lite", "full")

LANDMARK = """
input_stream: "crop"
output_stream: "landmarks"
output_stream: "presence"
node { calculator: "ImageToTensorCalculator" input_stream: "IMAGE:crop" output_stream: "TENSORS:input"
  options { [mediapipe.ImageToTensorCalculatorOptions.ext] { output_tensor_width: 224 output_tensor_height: 224
    keep_aspect_ratio: true output_tensor_float_range { min: 0.0 max: 1.0 } } } }
node { calculator: "InferenceCalculator" input_stream: "TENSORS:input" output_stream: "TENSORS:output"
  options { [mediapipe.InferenceCalculatorOptions.ext] {
    model_path: "mediapipe/modules/hand_landmark/hand_landmark_VARIANT.tflite" delegate { xnnpack {} } } } }
node { calculator: "SplitTensorVectorCalculator" input_stream: "output" output_stream: "lm" output_stream: "flag"
  options { [mediapipe.SplitVectorCalculatorOptions.ext] { ranges: { begin: 0 end: 1 } ranges: { begin: 1 end: 2 } } } }
node { calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:lm" output_stream: "FLOATS:landmarks" }
node { calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:flag" output_stream: "FLOAT:presence" }
"""
RECROP = """
input_stream: "crop"
output_stream: "points"
node { calculator: "ImageToTensorCalculator" input_stream: "IMAGE:crop" output_stream: "TENSORS:input"
  options { [mediapipe.ImageToTensorCalculatorOptions.ext] { output_tensor_width: 256 output_tensor_height: 256
    keep_aspect_ratio: true output_tensor_float_range { min: 0.0 max: 1.0 } } } }
node { calculator: "InferenceCalculator" input_stream: "TENSORS:input" output_stream: "TENSORS:output"
  options { [mediapipe.InferenceCalculatorOptions.ext] {
    model_path: "mediapipe/modules/holistic_landmark/hand_recrop.tflite" delegate { xnnpack {} } } } }
node { calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:output" output_stream: "FLOATS:points" }
"""
PALM = """
input_stream: "image"
output_stream: "palms"
node { calculator: "PalmDetectionCpu" input_side_packet: "MODEL_COMPLEXITY:complexity"
  input_stream: "IMAGE:image" output_stream: "DETECTIONS:palms" }
"""


def _mediapipe():
    from mocap.detect.blazepose import _import_mediapipe

    mp = _import_mediapipe()
    from mediapipe.python._framework_bindings import resource_util

    # model paths in the graphs are relative to site-packages (as mediapipe's own solutions set it)
    resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mp.__file__)))
    return mp


class _Graph:
    """A mediapipe graph fed one square RGB crop at a time on its ``crop`` stream; returns its output packets."""

    def __init__(self, config: str, outputs: tuple[str, ...]):
        self.mp = _mediapipe()
        self._out: dict = {}
        with native_stderr_to_log(log):
            self.graph = self.mp.CalculatorGraph(graph_config=config)
            for s in outputs:
                self.graph.observe_output_stream(s, lambda name, p: self._out.__setitem__(name, p))
            self.graph.start_run()
            self.graph.wait_until_idle()  # the calculators open (and say so on stderr) in the graph's threads
        self.t = 0

    def run(self, crop_rgb: np.ndarray) -> dict:
        mp = self.mp
        self._out.clear()
        packet = mp.packet_creator.create_image_frame(image_format=mp.ImageFormat.SRGB, data=crop_rgb)
        # the first inference warns about things only mediapipe could fix
        with native_stderr_to_log(log) if self.t == 0 else contextlib.nullcontext():
            self.graph.add_packet_to_input_stream("crop", packet.at(self.t))
            self.graph.wait_until_idle()
        self.t += 1
        return self._out

    def close(self) -> None:
        with native_stderr_to_log(log):
            self.graph.close()


class HandLandmarks(_Graph):
    """The hand landmark model on square crops: (21, 2) crop pixels and the hand-presence score."""

    def __init__(self, variant: str = "full"):
        if variant not in VARIANTS:
            raise ValueError(f"hands: variant must be one of {VARIANTS}, got {variant!r}")
        super().__init__(LANDMARK.replace("VARIANT", variant), ("landmarks", "presence"))

    def __call__(self, crop_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        out = self.run(crop_rgb)
        pts = np.asarray(self.mp.packet_getter.get_float_list(out["landmarks"])).reshape(21, 3)[:, :2]
        return pts - 0.5, float(self.mp.packet_getter.get_float(out["presence"]))


class HandRecrop(_Graph):
    """Holistic's hand re-crop model on a 256-pixel crop of the body's hand ROI: two points (crop pixels), the
    hand's centre and a point towards the wrist half the new crop's size away."""

    def __init__(self):
        super().__init__(RECROP, ("points",))

    def __call__(self, crop_rgb: np.ndarray) -> np.ndarray:
        out = self.run(crop_rgb)
        return np.asarray(self.mp.packet_getter.get_float_list(out["points"])).reshape(2, -1)[:, :2] - 0.5


class PalmDetector:
    """MediaPipe's palm detector on a square crop: list of (wrist, middle MCP, box size) in crop pixels."""

    def __init__(self, variant: str = "full"):
        self.mp = _mediapipe()
        self._out: list = []
        with native_stderr_to_log(log):
            self.graph = self.mp.CalculatorGraph(graph_config=PALM)
            self.graph.observe_output_stream("palms", lambda name, p: self._out.append(p))
            self.graph.start_run({"complexity": self.mp.packet_creator.create_int(int(variant == "full"))})
            self.graph.wait_until_idle()
        self.t = 0

    def __call__(self, crop_rgb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
        mp = self.mp
        self._out.clear()
        h, w = crop_rgb.shape[:2]
        packet = mp.packet_creator.create_image_frame(image_format=mp.ImageFormat.SRGB, data=crop_rgb)
        with native_stderr_to_log(log) if self.t == 0 else contextlib.nullcontext():
            self.graph.add_packet_to_input_stream("image", packet.at(self.t))
            self.graph.wait_until_idle()
        self.t += 1
        found = []
        for p in self._out:
            for det in mp.packet_getter.get_proto_list(p):
                loc = det.location_data
                box = loc.relative_bounding_box
                kp = loc.relative_keypoints
                wrist = np.array([kp[0].x * w, kp[0].y * h]) - 0.5
                middle = np.array([kp[2].x * w, kp[2].y * h]) - 0.5
                score = det.score[0] if det.score else 0.0
                found.append((wrist, middle, max(box.width * w, box.height * h), float(score)))
        return found

    def close(self) -> None:
        with native_stderr_to_log(log):
            self.graph.close()
