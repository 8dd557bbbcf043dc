"""Joint positions of an animation file as Blender imports it (a child process: ``blender_addon.headless``)."""

import subprocess
import sys

import numpy as np


def blender_positions(path, tmp_path, fps, up):
    """Import ``path`` (FBX / GLB / BVH) in Blender; returns (bone names, (F, J, 3) world positions, first frame)."""
    out = tmp_path / f"{path.name}.positions.npz"
    r = subprocess.run([sys.executable, "-m", "blender_addon.headless", "positions", str(path), str(out), "--up", up,
                        "--fps", str(fps)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    z = np.load(out)
    return list(z["names"]), z["positions"], int(z["frame_start"])
