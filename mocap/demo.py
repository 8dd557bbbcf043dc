"""``mocap demo``: the pipeline on a sample session, with its accuracy against ground truth.

Until the embedded rendered sample exists, the demo builds a synthetic keypoint session from a
CMU clip of the shared data folder (when present).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def run_demo(out: Path) -> tuple[list[str], bool]:
    """Run the demo; returns the lines to show the user and whether it succeeded."""
    from mocap.bench.common import position_errors
    from mocap.bench.triangulation import default_bvh
    from mocap.io.hdf5 import read_points3d
    from mocap.stages import refine, triangulate
    from mocap.synth import make_take, write_session

    bvh = default_bvh()
    if bvh is None or not bvh.is_file():
        return ["mocap demo: the embedded sample session is not yet available in this version; with the shared "
                "data folder present (../shared/data or $MOCAP_SHARED_DATA) the demo runs on a synthetic session "
                "built from a CMU clip."], True
    session = out / "synthetic_cmu_01_03"
    if not (session / "session.toml").exists():
        write_session(make_take(bvh, 600), session)
    tri = read_points3d(triangulate.main(session))
    ref = read_points3d(refine.main(session))
    truth = read_points3d(session / "groundtruth" / "points3d.h5").xyz[:, 0]
    lines = []
    for name, pts in (("triangulated", tri), ("refined", ref)):
        e = position_errors(pts.xyz[:, 0], truth)
        lines.append(f"{name:>12}: MPJPE {e['mpjpe_mm']:.1f} mm, P95 {e['p95_mm']:.1f} mm, "
                     f"{e['reconstructed']:.0%} of points reconstructed")
    lines.append(f"3D points (HDF5 + TRC): {session / 'points3d'}")
    lines.append("FBX/BVH export and the HTML report arrive with the skeleton and pipeline issues.")
    return lines, bool(np.isfinite(ref.xyz).any())
