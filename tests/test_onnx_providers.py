"""The ONNX detectors take onnxruntime's CUDA provider when it is there (provider selection only: no GPU here)."""

import pytest

ort = pytest.importorskip("onnxruntime")

from mocap.detect.onnx import OnnxPose, select_providers  # noqa: E402

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


def test_selection():
    assert select_providers([CUDA, CPU]) == [CUDA, CPU]  # CUDA first, the CPU for what CUDA cannot run
    assert select_providers([CPU]) == [CPU]
    assert select_providers([CUDA, CPU], "cpu") == [CPU]
    assert select_providers(["TensorrtExecutionProvider", CUDA, CPU], "CUDA") == [CUDA, CPU]
    with pytest.raises(ValueError, match=r"device cuda asked for, but this onnxruntime offers only \['CPUExecution"):
        select_providers([CPU], "cuda")
    with pytest.raises(ValueError, match="device must be auto, cuda or cpu .*got 'gpu'"):
        select_providers([CPU], "gpu")


@pytest.mark.parametrize("available, env, expected", [([CUDA, CPU], None, [CUDA, CPU]), ([CPU], None, [CPU]),
                                                      ([CUDA, CPU], "cpu", [CPU])])
def test_detector_asks_onnxruntime_for_the_selected_providers(tmp_path, monkeypatch, available, env, expected):
    seen = {}

    class Session:  # records what the detector asked for, then refuses the (empty) model
        def __init__(self, path, options, providers):
            seen["providers"] = providers
            raise RuntimeError("not a model")

    monkeypatch.setattr(ort, "get_available_providers", lambda: available)
    monkeypatch.setattr(ort, "InferenceSession", Session)
    if env:
        monkeypatch.setenv("MOCAP_ONNX_DEVICE", env)
    else:
        monkeypatch.delenv("MOCAP_ONNX_DEVICE", raising=False)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    with pytest.raises(ValueError, match="not a loadable ONNX model: not a model"):
        OnnxPose(model)
    assert seen["providers"] == expected
