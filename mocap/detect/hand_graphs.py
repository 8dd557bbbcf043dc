"""The mediapipe calculator graphs the hand detector (:mod:`mocap.detect.hands`) runs: the hand landmark model on a
crop (``VARIANT``: lite or full), Holistic's hand re-crop model, and the palm detector. They use the tflite files
of the installed mediapipe package; nothing is downloaded."""

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
