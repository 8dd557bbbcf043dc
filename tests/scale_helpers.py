"""Sessions with camera videos whose frames carry their (camera, frame) number, and a detector that reads
that number and returns the synthetic take's 2D keypoints: detection that costs nothing, is exactly
reproducible and still gives the later stages a real take (tests of the cluster, batch and live paths)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from mocap.cli import main as cli
from mocap.io.hdf5 import read_keypoints2d

GRID = (4, 4)  # 16 bits: 12 for the frame, 4 for the camera
SIZE = (160, 120)


def encode(camera: int, frame: int, size=SIZE) -> np.ndarray:
    """A BGR frame whose 4 × 4 blocks spell ``frame | camera << 12`` (black 0, white 1)."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    code = frame | camera << 12
    bh, bw = h // GRID[0], w // GRID[1]
    for b in range(16):
        if code >> b & 1:
            r, c = divmod(b, GRID[1])
            img[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw] = 255
    return img


def decode(img: np.ndarray) -> tuple[int, int]:
    h, w = img.shape[:2]
    bh, bw = h // GRID[0], w // GRID[1]
    code = 0
    for b in range(16):
        r, c = divmod(b, GRID[1])
        if img[r * bh + bh // 2, c * bw + bw // 2].mean() > 127:
            code |= 1 << b
    return code >> 12, code & 0xFFF


class ReplayDetector:
    """Detector ``replay``: ``model_path`` is the .npz of the take's keypoints (F, C, P, J, 3). A file
    ``<model_path>.die`` makes the process that reaches (camera 0, frame ``die_at``) exit at once, once
    (the file is removed first): a worker dying mid-chunk."""

    die_at = 20

    def __init__(self, model_path: str, num_poses: int = 1, **_ignored):
        z = np.load(model_path)
        self.data, self.keypoint_set = z["data"], str(z["keypoint_set"])
        self.num_poses = num_poses
        self.die = Path(str(model_path) + ".die")

    def __call__(self, image_bgr: np.ndarray, timestamp_ms: int) -> np.ndarray:
        cam, frame = decode(image_bgr)
        if cam == 0 and frame == self.die_at and self.die.exists():
            self.die.unlink()
            os._exit(1)
        return self.data[frame, cam, : self.num_poses].copy()

    def close(self) -> None:
        pass


def register() -> None:
    from mocap.detect import register_detector

    register_detector("replay", "scale_helpers:ReplayDetector")


def video_session(root: Path, bvh: Path, frames: int = 48, cameras: int = 3, fps: float = 30.0,
                  size=SIZE, people: int = 1) -> tuple[Path, Path]:
    """A synthetic take as videos (``root/videos``) + rig; returns (session, keypoints .npz for ``replay``).
    ``people`` > 1: a crowd (``mocap synth keypoints --people``: slots shuffled, people hiding one another)."""
    assert cli(["synth", "keypoints", str(root), "--bvh", str(bvh), "--frames", str(frames), "--cameras",
                str(cameras), "--fps", str(fps), "--hdf5"] + (["--people", str(people)] if people > 1 else [])) == 0
    kp = read_keypoints2d(root / "pose2d.h5")
    data = _at_size(root / "calibration" / "rig.toml", kp.data, size)
    truth = root.parent / f"{root.name}_keypoints.npz"
    np.savez(truth, data=data, keypoint_set=kp.keypoint_set)
    (root / "pose2d.h5").unlink()
    (root / "videos").mkdir()
    for c, name in enumerate(kp.camera_names):
        w = cv2.VideoWriter(str(root / "videos" / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
        for f in range(frames):
            w.write(encode(c, f, size))
        w.release()
    return root, truth


def _at_size(rig_path: Path, data: np.ndarray, size) -> np.ndarray:
    """The synthetic take at the videos' (small) size, so that footage and calibration agree (detect refuses
    footage that is not its camera's calibrated size): the rig's intrinsics and the keypoints (F, C, P, J, 3)
    scaled per axis about the pixel grid (the centre of the top-left pixel is (0, 0))."""
    import dataclasses

    from mocap.io.rig_files import read_rig, write_rig
    from mocap.types import Rig

    rig = read_rig(rig_path)
    cams, out = [], np.array(data, float)
    for c, cam in enumerate(rig.cameras):
        k = np.array([size[0] / cam.size[0], size[1] / cam.size[1]])
        K = cam.K.copy()
        K[:2] *= k[:, None]
        K[:2, 2] += 0.5 * (k - 1)
        cams.append(dataclasses.replace(cam, K=K, size=tuple(size)))
        out[:, c, ..., :2] = out[:, c, ..., :2] * k + 0.5 * (k - 1)
    write_rig(Rig(tuple(cams)), rig_path)
    return out


def replay_sets(truth: Path) -> list[str]:
    return ["--set", "detect.detector=replay", "--set", f"detect.model_path='{truth}'",
            "--set", "export.formats=['bvh']", "--set", "report.overlay_videos=false"]
