"""The hand models through onnxruntime: the mediapipe wheel's ``hand_landmark_*.tflite`` and Holistic's
``hand_recrop.tflite`` rewritten as ONNX when they are loaded.

MediaPipe's graph runs a model through TFLite/XNNPACK one crop at a time, with an image-to-tensor step and the
graph's scheduling around it; onnxruntime runs the same network (same weights, float32) in ~80 % of the CPU time
(landmarks: 8.3 against 9.5-10.4 ms a crop; re-crop 1.4 against 1.9-2.1 ms) and can take several crops in one
call. The converter reads the ``.tflite`` flatbuffer with the schema mediapipe ships
(``mediapipe.tasks.metadata.schema_py_generated``) and writes the ONNX protobuf itself (a few message types; the
``onnx`` package is not needed at run time). It knows the operators of the hand landmark and re-crop models
(convolutions, depthwise convolutions, additions, max pooling, mean, fully connected, logistic, PReLU, channel
padding and slicing, fp16 weights); a model with any other operator raises ``NotImplementedError`` and
:mod:`mocap.detect.hands` falls back to mediapipe's graphs. Landmarks agree with mediapipe's to ~3e-4 pixel and
the presence score to ~1e-6 (the same crop; frame to frame, tracking from the landmarks carries such differences
on as the detector's own jitter does).
"""

from __future__ import annotations

import logging
import os

import numpy as np

log = logging.getLogger(__name__)
VARIANTS = ("lite", "full")
FLOAT, UINT8, INT64 = 1, 2, 7  # ONNX TensorProto data types
ATTR_INT, ATTR_STRING, ATTR_INTS = 2, 3, 7  # ONNX AttributeProto types


# --- a minimal protobuf writer (ONNX's ModelProto and the messages it holds) ------------------------------------
def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # int64 as two's complement
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _int(field: int, v: int) -> bytes:
    return _varint(field << 3) + _varint(int(v))


def _bytes(field: int, data: bytes | str) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _attr(name: str, value) -> bytes:
    if isinstance(value, str):
        return _bytes(1, name) + _bytes(4, value) + _int(20, ATTR_STRING)
    if isinstance(value, (list, tuple)):
        return _bytes(1, name) + b"".join(_int(8, v) for v in value) + _int(20, ATTR_INTS)
    return _bytes(1, name) + _int(3, value) + _int(20, ATTR_INT)


def _node(op: str, inputs: list[str], outputs: list[str], **attrs) -> bytes:
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs) + _bytes(4, op)
            + b"".join(_bytes(5, _attr(k, v)) for k, v in attrs.items()))


def _tensor(name: str, array: np.ndarray) -> bytes:
    dtype = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64}[array.dtype]
    return (b"".join(_int(1, d) for d in array.shape) + _int(2, dtype) + _bytes(8, name)
            + _bytes(9, np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()))


def _value_info(name: str, dtype: int, shape: list[int | str]) -> bytes:
    dims = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, dtype) + _bytes(2, dims)))


# --- tflite → ONNX -------------------------------------------------------------------------------------------------
def tflite_to_onnx(path: str) -> tuple[bytes, list[str]]:
    """The serialized ONNX model of a tflite hand-landmark-like network and its output names (the tflite's).
    The ONNX input is ``image``: (N, H, W, 3) uint8 RGB, scaled to [0, 1] in the graph (as mediapipe feeds it)."""
    from mediapipe.tasks.metadata import schema_py_generated as fb

    with open(path, "rb") as f:
        buf = f.read()
    model = fb.Model.GetRootAsModel(buf, 0)
    g = model.Subgraphs(0)
    op_names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    codes = [op_names.get(max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode()))
             for i in range(model.OperatorCodesLength())]
    dtypes = {fb.TensorType.FLOAT32: np.float32, fb.TensorType.FLOAT16: np.float16, fb.TensorType.INT32: np.int32}

    def shape(i: int) -> list[int]:
        return [int(d) for d in g.Tensors(i).ShapeAsNumpy()]

    consts: dict[int, np.ndarray] = {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        data = model.Buffers(t.Buffer()).DataAsNumpy() if t.Buffer() else 0
        if not isinstance(data, int) and data.size and t.Type() in dtypes:
            consts[i] = np.frombuffer(data.tobytes(), dtypes[t.Type()]).reshape(shape(i))

    def options(op, cls):
        o, table = cls(), op.BuiltinOptions()
        o.Init(table.Bytes, table.Pos)
        return o

    nodes: list[bytes] = []
    inits = [_tensor("scale", np.array(1 / 255, np.float32))]
    name = "t{}".format
    act_fn = fb.ActivationFunctionType

    def activated(op_type: str, inputs: list[str], out: str, activation: int, **attrs) -> None:
        if activation == act_fn.NONE:
            nodes.append(_node(op_type, inputs, [out], **attrs))
            return
        nodes.append(_node(op_type, inputs, [out + "_pre"], **attrs))
        if activation == act_fn.RELU:
            nodes.append(_node("Relu", [out + "_pre"], [out]))
        elif activation == act_fn.RELU6:
            inits.extend([_tensor(out + "_lo", np.array(0, np.float32)), _tensor(out + "_hi", np.array(6, np.float32))])
            nodes.append(_node("Clip", [out + "_pre", out + "_lo", out + "_hi"], [out]))
        else:
            raise NotImplementedError(f"{path}: fused activation {activation} is not supported")

    def weight(i: int) -> np.ndarray:
        if i not in consts:
            raise NotImplementedError(f"{path}: tensor {i} should be constant weights")
        return consts[i].astype(np.float32)

    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code, ins, outs = codes[op.OpcodeIndex()], op.InputsAsNumpy().tolist(), op.OutputsAsNumpy().tolist()
        out = name(outs[0])
        if code == "DEQUANTIZE" and ins[0] in consts:  # fp16 weights
            consts[outs[0]] = consts[ins[0]].astype(np.float32)
        elif code in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            o = options(op, fb.Conv2DOptions if code == "CONV_2D" else fb.DepthwiseConv2DOptions)
            if o.DilationHFactor() != 1 or o.DilationWFactor() != 1:
                raise NotImplementedError(f"{path}: dilated convolutions are not supported")
            w = weight(ins[1])  # tflite: (out, kh, kw, in); depthwise (1, kh, kw, channels)
            w = w.transpose(0, 3, 1, 2) if code == "CONV_2D" else w.transpose(3, 0, 1, 2)
            b = weight(ins[2]) if len(ins) > 2 and ins[2] >= 0 else np.zeros(w.shape[0], np.float32)
            inits += [_tensor(out + "_w", w), _tensor(out + "_b", b)]
            activated("Conv", [name(ins[0]), out + "_w", out + "_b"], out, o.FusedActivationFunction(),
                      strides=[o.StrideH(), o.StrideW()], kernel_shape=list(w.shape[2:]),
                      group=1 if code == "CONV_2D" else w.shape[0],
                      auto_pad="SAME_UPPER" if o.Padding() == fb.Padding.SAME else "VALID")
        elif code == "MAX_POOL_2D":
            o = options(op, fb.Pool2DOptions)
            activated("MaxPool", [name(ins[0])], out, o.FusedActivationFunction(), strides=[o.StrideH(), o.StrideW()],
                      kernel_shape=[o.FilterHeight(), o.FilterWidth()],
                      auto_pad="SAME_UPPER" if o.Padding() == fb.Padding.SAME else "VALID")
        elif code == "ADD":
            if any(i in consts for i in ins):
                raise NotImplementedError(f"{path}: ADD of a constant is not supported")
            o = options(op, fb.AddOptions)
            activated("Add", [name(i) for i in ins], out, o.FusedActivationFunction())
        elif code == "MEAN":
            axes = [{1: 2, 2: 3, 3: 1}[int(a) % 4] for a in np.ravel(consts[ins[1]])]
            if sorted(axes) != [2, 3] or options(op, fb.ReducerOptions).KeepDims():
                raise NotImplementedError(f"{path}: MEAN only over the image (without keep_dims) is supported")
            inits.append(_tensor(out + "_axes", np.array(axes, np.int64)))
            nodes.append(_node("ReduceMean", [name(ins[0]), out + "_axes"], [out], keepdims=0))
        elif code == "FULLY_CONNECTED":
            if len(shape(ins[0])) != 2:
                raise NotImplementedError(f"{path}: FULLY_CONNECTED on a {len(shape(ins[0]))}-D input is not supported")
            o = options(op, fb.FullyConnectedOptions)
            w = weight(ins[1])  # (out, in)
            b = weight(ins[2]) if len(ins) > 2 and ins[2] >= 0 else np.zeros(w.shape[0], np.float32)
            inits += [_tensor(out + "_w", np.ascontiguousarray(w.T)), _tensor(out + "_b", b)]
            activated("Gemm", [name(ins[0]), out + "_w", out + "_b"], out, o.FusedActivationFunction())
        elif code == "PRELU":
            slope = weight(ins[1])
            if slope.ndim != 3 or slope.shape[:2] != (1, 1):
                raise NotImplementedError(f"{path}: PRELU with slopes of shape {slope.shape} is not supported")
            inits.append(_tensor(out + "_slope", slope.reshape(-1, 1, 1)))
            nodes.append(_node("PRelu", [name(ins[0]), out + "_slope"], [out]))
        elif code == "PAD":
            pads = np.asarray(consts[ins[1]]).reshape(4, 2)[[0, 3, 1, 2]]  # NHWC → NCHW rows of (before, after)
            inits.append(_tensor(out + "_pads", np.concatenate([pads[:, 0], pads[:, 1]]).astype(np.int64)))
            nodes.append(_node("Pad", [name(ins[0]), out + "_pads"], [out]))
        elif code == "STRIDED_SLICE":
            o = options(op, fb.StridedSliceOptions)
            if o.BeginMask() or o.EndMask() or o.EllipsisMask() or o.NewAxisMask() or o.ShrinkAxisMask():
                raise NotImplementedError(f"{path}: STRIDED_SLICE with masks is not supported")
            begin, end, step = (np.asarray(consts[i], np.int64)[[0, 3, 1, 2]] for i in ins[1:4])
            for part, v in (("_begin", begin), ("_end", end), ("_axes", np.arange(4)), ("_step", step)):
                inits.append(_tensor(out + part, v.astype(np.int64)))
            parts = [out + p for p in ("_begin", "_end", "_axes", "_step")]
            nodes.append(_node("Slice", [name(ins[0]), *parts], [out]))
        elif code == "LOGISTIC":
            nodes.append(_node("Sigmoid", [name(ins[0])], [out]))
        else:
            raise NotImplementedError(f"{path}: operator {code} is not supported")

    (inp,) = g.InputsAsNumpy().tolist()
    _, h, w, c = shape(inp)
    nodes[:0] = [_node("Cast", ["image"], ["image_f"], to=FLOAT), _node("Mul", ["image_f", "scale"], ["image_s"]),
                 _node("Transpose", ["image_s"], [name(inp)], perm=[0, 3, 1, 2])]
    out_ids = g.OutputsAsNumpy().tolist()
    out_names = [g.Tensors(i).Name().decode() for i in out_ids]
    # outputs renamed to the tflite's names through Identity nodes
    pairs = list(zip(out_ids, out_names, strict=True))
    for i, n in pairs:  # outputs named as in the tflite, flattened in its (NHWC) order
        if len(shape(i)) == 4:
            nodes += [_node("Transpose", [name(i)], [n + "_nhwc"], perm=[0, 2, 3, 1]),
                      _node("Flatten", [n + "_nhwc"], [n])]
        else:
            nodes.append(_node("Identity", [name(i)], [n]))
    graph = (b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "hand_landmark")
             + b"".join(_bytes(5, t) for t in inits) + _bytes(11, _value_info("image", UINT8, ["N", h, w, c]))
             + b"".join(_bytes(12, _value_info(n, FLOAT, ["N", int(np.prod(shape(i)[1:]))])) for i, n in pairs))
    onnx_model = _int(1, 8) + _bytes(8, _bytes(1, "") + _int(2, 18)) + _bytes(7, graph)
    return onnx_model, out_names


def session(path: str):
    """An onnxruntime session of a tflite model (one thread, no spinning: as mediapipe runs it) and its outputs."""
    import onnxruntime as ort

    model, names = tflite_to_onnx(path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]), names
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise NotImplementedError(f"{path}: onnxruntime does not take the rewritten model: {e}") from None


def _model_path(*parts: str) -> str:
    from mocap.detect.hand_graphs import _mediapipe

    return os.path.join(os.path.dirname(_mediapipe().__file__), "modules", *parts)


class OnnxHandLandmarks:
    """The hand landmark model on square RGB crops through onnxruntime: ``(crop) → ((21, 2) crop pixels,
    presence)``; :meth:`batch` takes several crops in one call."""

    def __init__(self, variant: str = "full"):
        if variant not in VARIANTS:
            raise ValueError(f"hands: variant must be one of {VARIANTS}, got {variant!r}")
        self.session, names = session(_model_path("hand_landmark", f"hand_landmark_{variant}.tflite"))
        self.outputs = names[:2]  # landmarks (21 x 3, crop pixels), hand presence (after the model's logistic)

    def batch(self, crops_rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        lm, presence = self.session.run(self.outputs, {"image": np.ascontiguousarray(crops_rgb, dtype=np.uint8)})
        return [(lm[k].reshape(21, 3)[:, :2] - 0.5, float(presence[k, 0])) for k in range(len(lm))]

    def __call__(self, crop_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        return self.batch(crop_rgb[None])[0]

    def close(self) -> None:
        self.session = None


class OnnxHandRecrop:
    """Holistic's hand re-crop model through onnxruntime: as :class:`mocap.detect.hand_graphs.HandRecrop`."""

    def __init__(self):
        self.session, self.outputs = session(_model_path("holistic_landmark", "hand_recrop.tflite"))

    def __call__(self, crop_rgb: np.ndarray) -> np.ndarray:
        (points,) = self.session.run(self.outputs, {"image": np.ascontiguousarray(crop_rgb[None], dtype=np.uint8)})
        return points.reshape(2, -1)[:, :2] - 0.5

    def close(self) -> None:
        self.session = None
