"""The ONNX path, tested with tiny models exported from torch with RTMPose's and RTMO's signatures."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from mocap.detect import get_detector  # noqa: E402
from mocap.detect.onnx import OnnxPose  # noqa: E402


class SimCC(torch.nn.Module):
    """Puts every keypoint at a fixed place of the crop: (x, y) = (48, 64) of 192 x 256."""

    def forward(self, img):
        b = img.shape[0]
        x = torch.zeros(b, 17, 384)
        y = torch.zeros(b, 17, 512)
        x[:, :, 96] = 1.0 + 0 * img.mean()
        y[:, :, 128] = 0.9
        return x, y


class RTMO(torch.nn.Module):
    def forward(self, img):
        dets = torch.tensor([[[10.0, 10.0, 100.0, 200.0, 0.95], [0.0, 0.0, 5.0, 5.0, 0.1]]]) + 0 * img.mean()
        kpts = torch.zeros(1, 2, 17, 3)
        kpts[0, 0, :, 0], kpts[0, 0, :, 1], kpts[0, 0, :, 2] = 40.0, 80.0, 0.8
        return dets, kpts


def export(model, path, outputs, shape=(1, 3, 256, 192)):
    torch.onnx.export(model, torch.zeros(shape), str(path), input_names=["input"], output_names=outputs, dynamo=False)
    return path


def test_simcc_decoding_maps_back_to_the_image(tmp_path):
    path = export(SimCC(), tmp_path / "rtmpose.onnx", ["simcc_x", "simcc_y"])
    det = get_detector("onnx", model_path=path)
    assert det.keypoint_set == "coco17" and det.kind == "simcc"
    img = np.zeros((480, 360, 3), np.uint8)  # 3:4 like the model: the whole image is the first box
    out = det(img, 0)
    # crop = image grown by 25 % around its centre; (48, 64) of 192 x 256 → a quarter across, a quarter down
    cx, cy, w, h = 179.5, 239.5, 359 * 1.25, 479 * 1.25
    expect = [cx - w / 2 + (48 + 0.5) / 192 * w, cy - h / 2 + (64 + 0.5) / 256 * h]
    assert np.allclose(out[0, :, :2], expect, atol=1.5)
    assert np.allclose(out[0, :, 2], 0.9)
    second = det(img, 33)  # the next box follows the keypoints
    assert np.all(np.isfinite(second))


def test_rtmo_decoding_undoes_the_letterbox(tmp_path):
    path = export(RTMO(), tmp_path / "rtmo.onnx", ["dets", "keypoints"], shape=(1, 3, 640, 640))
    det = OnnxPose(path, num_poses=2)
    assert det.kind == "rtmo"
    out = det(np.zeros((1280, 960, 3), np.uint8), 0)  # scale 0.5 into 640 x 640
    assert np.allclose(out[0, :, :2], [80.0, 160.0]) and np.allclose(out[0, :, 2], 0.8)
    assert np.all(np.isnan(out[1]))  # the low-score detection is dropped


class ChannelMeans(torch.nn.Module):
    """RTMO's signature; its one detection's box is the mean of each input channel."""

    def forward(self, img):
        dets = torch.cat([img.mean(dim=(2, 3)), torch.zeros(1, 1), torch.ones(1, 1)], dim=1)[:, None, :]
        return dets, torch.zeros(1, 1, 17, 3) + 0 * img.mean()


def test_rtmo_gets_the_image_as_it_is(tmp_path):
    """RTMO is trained on BGR 0–255 (MMPose's configs: mean 0, std 1, no channel swap); it was fed RTMPose's
    ImageNet-normalised RGB: B, G, R = 200, 100, 20 reached it as −1.78, −0.29, 1.68."""
    path = export(ChannelMeans(), tmp_path / "rtmo_probe.onnx", ["dets", "keypoints"], shape=(1, 3, 640, 640))
    det = OnnxPose(path)
    seen = {}
    run = det.session.run
    outputs = det.session.get_outputs()
    det.session = type("Spy", (), {"run": lambda self, names, feed: seen.update(feed) or run(names, feed),
                                   "get_outputs": lambda self: outputs})()
    img = np.zeros((640, 640, 3), np.uint8)
    img[...] = (200, 100, 20)  # B, G, R
    det(img, 0)
    assert np.allclose(seen["input"][0].mean(axis=(1, 2)), [200.0, 100.0, 20.0])


def test_unsupported_models_are_refused(tmp_path):
    class OneOutput(torch.nn.Module):
        def forward(self, img):
            return img.mean(dim=(2, 3))

    path = export(OneOutput(), tmp_path / "bad.onnx", ["out"])
    with pytest.raises(ValueError, match="unsupported ONNX signature"):
        OnnxPose(path)
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a loadable ONNX model"):
        OnnxPose(tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OnnxPose(tmp_path / "missing.onnx")


def test_detect_stage_with_an_onnx_model(tmp_path):
    from test_detect import blank_video

    from mocap.io.hdf5 import read_keypoints2d
    from mocap.stages import detect

    model = export(SimCC(), tmp_path / "rtmpose.onnx", ["simcc_x", "simcc_y"])
    (tmp_path / "videos").mkdir()
    blank_video(tmp_path / "videos" / "a.avi", n=5)
    out = detect.main(tmp_path, detect.Config(detector="onnx", model_path=str(model), workers=1))
    kp = read_keypoints2d(out)
    assert kp.keypoint_set == "coco17" and kp.shape == (5, 1, 1, 17) and np.isfinite(kp.data).all()
