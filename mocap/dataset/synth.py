"""``mocap dataset synth``: randomised synthetic takes (clip segments, camera layouts, noise; or renders
with ``pixels``) written as sessions beside the dataset, then built into it like real ones."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from mocap.dataset.build import BuildConfig, BuildSummary, build

log = logging.getLogger(__name__)


def make_sessions(n: int, folder: Path, bvhs: list[Path], seed: int = 0, pixels: bool = False,
                  seconds: float = 4.0) -> list[Path]:
    """Session folders synth_00000 ... (kept, so a re-run reuses them): take k uses seed + k.

    Each session is written (or rendered) under a temporary name and renamed when complete, so a killed
    run never leaves a session that looks done and is not."""
    from mocap.synth import CorruptionSpec, RigSpec, make_take, write_session
    from mocap.synth.bvh_map import load_motion

    lengths = {}
    for b in bvhs:  # every clip is read and mapped before anything is written
        clip, _ = load_motion(b)
        lengths[b] = clip.n_frames / clip.fps
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        session = folder / f"synth_{k:05d}"
        out.append(session)
        done = (session / "session.toml").is_file() and (session / "groundtruth").is_dir() and (
            (session / "videos").is_dir() or (session / "pose2d.h5").is_file())
        if done:
            continue
        tmp = folder / f".{session.name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)  # left by a killed run
        rng = np.random.default_rng(seed + k)
        bvh = bvhs[int(rng.integers(len(bvhs)))]
        start = float(rng.uniform(0, max(lengths[bvh] - seconds - 0.1, 0.0)))
        cams = int(rng.integers(3, 7))
        radius = float(rng.uniform(2.5, 4.5))
        if pixels:
            from mocap.synth.render import RenderSpec, render_session

            render_session(RenderSpec(str(bvh), start_s=start, seconds=seconds, cameras=cams, radius=radius,
                                      seed=seed + k, board_frames=30), tmp)
            _publish(tmp, session)
            continue
        fps = float(rng.choice([30.0, 60.0]))
        take = make_take(bvh, None, fps, RigSpec(n_cameras=cams, radius=radius, height=float(rng.uniform(1.4, 2.2)),
                                                  start_angle_deg=float(rng.uniform(0, 360))),
                         CorruptionSpec(noise_px=float(rng.uniform(1, 3)), outliers=float(rng.uniform(0, 0.05)),
                                        dropouts=float(rng.uniform(0, 0.1)), seed=seed + k))
        first = int(start * fps)
        take = type(take)(take.rig, type(take.keypoints)(take.keypoints.data[first:first + int(seconds * fps)],
                                                         take.keypoints.camera_names, take.keypoints.keypoint_set,
                                                         fps),
                          take.truth[first:first + int(seconds * fps)],
                          {k2: v[first:first + int(seconds * fps)] for k2, v in take.masks.items()})
        write_session(take, tmp, json_2d=False)
        _publish(tmp, session)
    return out


def _publish(tmp: Path, session: Path) -> None:
    if session.exists():
        shutil.rmtree(session)  # an incomplete session written in place by an earlier version
    os.replace(tmp, session)


def synth(n: int, out: str | Path, bvhs: list[Path], seed: int = 0, pixels: bool = False, workers: int = 0,
          scheduler: str | None = None, cfg: BuildConfig | None = None) -> BuildSummary:
    out = Path(out)
    sessions = make_sessions(n, out.with_name(out.stem + "_takes"), bvhs, seed, pixels)
    return build(sessions, out, cfg or BuildConfig(), workers, scheduler)
