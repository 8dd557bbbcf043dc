"""``mocap demo``: the whole pipeline on a sample session, with its accuracy against ground truth.

The sample is the embedded rendered session (``mocap/samples/rendered``) when this checkout has it;
otherwise a synthetic keypoint session built from a CMU clip of the shared data folder.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
SAMPLE = Path(__file__).resolve().parent / "samples" / "rendered"


def _prepare(out: Path) -> Path | None:
    if (SAMPLE / "calibration").is_dir():
        session = out / "sample"
        if not session.exists():
            shutil.copytree(SAMPLE, session)
        return session
    from mocap.bench.triangulation import default_bvh

    bvh = default_bvh()
    if bvh is None or not bvh.is_file():
        return None
    from mocap.synth import make_take, write_session

    session = out / "synthetic_cmu_01_03"
    if not (session / "session.toml").exists():
        write_session(make_take(bvh, 600), session, json_2d=False)
    return session


def run_demo(out: Path) -> tuple[list[str], bool]:
    """Run the demo; returns the lines to show the user and whether it succeeded."""
    from mocap.pipeline import run

    session = _prepare(Path(out))
    if session is None:
        return ["mocap demo: no sample session in this checkout and no shared data folder (../shared/data or "
                "$MOCAP_SHARED_DATA) to build one from."], False
    r = run(session)
    m = r.metrics or {}
    lines = [f"session: {session}", ""]
    lines += [f"{k:>12}: {v}" + (f" ({r.timings[k]:.2f} s)" if v == "ran" else "") for k, v in r.status.items()]
    lines.append("")
    lines += [f"animation: {p}" for p in r.outputs.get("export", [])]
    lines.append(f"report:    {session / 'report' / 'report.html'}")
    if m:
        rp = m["reprojection_px"]
        lines.append(f"quality:   reprojection median {rp['median']:.2f} px, bone-length CV "
                     f"{m['bone_length_cv']['mean']:.2%}, {m['reconstructed']['frames_all_joints']:.0%} of frames "
                     "complete")
    if "groundtruth" in m:
        g = m["groundtruth"]
        lines.append(f"accuracy:  {g['mpjpe_mm']:.1f} mm mean joint error against the ground truth "
                     f"(P95 {g['p95_mm']:.1f} mm; {g['mpjpe_bias_corrected_mm']:.1f} mm once each keypoint's constant "
                     "offset from the rig joint is taken out)")
    return lines, bool(r.outputs.get("export"))
