"""Rendered synthetic takes (bpy, Cycles): a tiny one, checked for geometry and layout."""

import numpy as np
import pytest

from mocap.io.rig_files import read_rig
from mocap.io.video import probe, read_frames

pytest.importorskip("bpy")


@pytest.mark.slow
@pytest.mark.shared_data
def test_render_a_tiny_take(shared_data, tmp_path):
    from mocap.synth.render import RenderSpec, render_session

    spec = RenderSpec(str(shared_data / "bvh" / "cmu_01_03.bvh"), start_s=2.0, seconds=0.1, fps=30.0, cameras=3,
                      size=(320, 240), samples=4, board_frames=2)
    out = render_session(spec, tmp_path / "take")
    rig = read_rig(out / "groundtruth" / "rig.toml")
    assert not (out / "calibration" / "rig.toml").exists() and (out / "calibration" / "board.toml").is_file()
    for cam in rig:
        info = probe(out / "videos" / f"{cam.name}.mp4")
        assert info.frames == 3 and info.size == (320, 240) and info.fps == 30.0
        assert probe(out / "calibration" / "board" / f"{cam.name}.mp4").frames == 2
    gt = np.load(out / "groundtruth" / "rig_joints.npz")
    names = list(gt["names"])
    assert gt["positions"].shape == (3, len(names), 3) and gt["visible"].shape == (3, 3, len(names))
    assert 1.3 < gt["positions"][0, names.index("head"), 2] - gt["positions"][0, names.index("foot_L"), 2] < 2.0
    # the torso joint projects onto the character, not onto the grey background around it
    frames = [img for _, img in read_frames(out / "videos" / f"{rig[0].name}.mp4")]
    uv = gt["uv"][0, 0, names.index("spine03")]
    patch = frames[0][int(uv[1]) - 2:int(uv[1]) + 3, int(uv[0]) - 2:int(uv[0]) + 3].reshape(-1, 3).astype(float)
    corner = frames[0][:8, :8].reshape(-1, 3).astype(float)
    assert np.abs(patch.mean(0) - corner.mean(0)).max() > 25
    assert gt["visible"].any() and not gt["visible"].all()  # some joints hidden behind the body
