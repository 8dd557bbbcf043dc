"""``mocap dataset synth``: randomised synthetic takes (clip segments, camera layouts, noise; or renders
with ``pixels``) written as sessions beside the dataset, then built into it like real ones."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from mocap.dataset.build import BuildConfig, BuildSummary, build

log = logging.getLogger(__name__)

RECIPE = "synth.json"  # in each session: what made it (seed, clips, pixels, seconds)


def recipes(n: int, seed: int, bvhs: list[Path], pixels: bool, seconds: float) -> list[dict]:
    """What defines each take k: its random seed, the clips it is drawn from (by content, in order), pixels or
    2D, its length."""
    clips = {"clips": [Path(b).name for b in bvhs],
             "clips_sha1": [hashlib.sha1(Path(b).read_bytes()).hexdigest() for b in bvhs]}
    return [{"seed": seed + k, "base_seed": seed, "take": k, **clips, "pixels": bool(pixels),
             "seconds": float(seconds)} for k in range(n)]


def _differs(made: dict, asked: dict) -> list[str]:
    out = []
    if made.get("seed") != asked["seed"]:
        out.append(f"seed {made.get('base_seed')} (this call: {asked['base_seed']})")
    if made.get("clips_sha1") != asked["clips_sha1"]:
        out.append(f"clips {', '.join(made.get('clips', []))} (this call: {', '.join(asked['clips'])}"
                   f"{'; same names, other contents' if made.get('clips') == asked['clips'] else ''})")
    for key in ("pixels", "seconds"):
        if made.get(key) != asked[key]:
            out.append(f"{key} {made.get(key)} (this call: {asked[key]})")
    return out


def check_made(sessions: list[Path], asked: list[dict]) -> None:
    """ValueError when a session already there was made with another seed, clips, pixels or length than this
    call asks (it would be reused as it is: the dataset keeps its take); a session of an earlier version, which
    recorded nothing, is reused with a warning."""
    unknown, other = [], []
    for session, wanted in zip(sessions, asked, strict=True):
        if not _complete(session):
            continue
        try:
            made = json.loads((session / RECIPE).read_text())
        except (OSError, ValueError):
            unknown.append(session.name)
            continue
        why = _differs(made, wanted)
        if why:
            other.append((session.name, why))
    if unknown:
        log.warning("%s: %d synthetic takes (%s) were made by an earlier version, which did not record their seed "
                    "and clips: reused as they are", sessions[0].parent, len(unknown), ", ".join(unknown[:5]))
    if other:
        name, why = other[0]
        raise ValueError(f"{sessions[0].parent}: {len(other)} synthetic takes already there were made otherwise "
                         f"({name}: {'; '.join(why)}): they would be reused, and their takes kept in the dataset. "
                         f"Give another --out for other takes (its sessions go to OUT_takes/ beside it), or the "
                         f"same seed, clips and options; or remove {sessions[0].parent} and the dataset to make "
                         f"them again")


def _complete(session: Path) -> bool:
    return (session / "session.toml").is_file() and (session / "groundtruth").is_dir() and (
        (session / "videos").is_dir() or (session / "pose2d.h5").is_file())


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
    out = [folder / f"synth_{k:05d}" for k in range(n)]
    asked = recipes(n, seed, bvhs, pixels, seconds)
    check_made(out, asked)  # before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    for k, session in enumerate(out):
        if _complete(session):
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
            _publish(tmp, session, asked[k] | {"clip": bvh.name})
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
        _publish(tmp, session, asked[k] | {"clip": bvh.name})
    return out


def _publish(tmp: Path, session: Path, made: dict) -> None:
    (tmp / RECIPE).write_text(json.dumps(made, indent=1))
    if session.exists():
        shutil.rmtree(session)  # an incomplete session written in place by an earlier version
    os.replace(tmp, session)


def synth(n: int, out: str | Path, bvhs: list[Path], seed: int = 0, pixels: bool = False, workers: int = 0,
          scheduler: str | None = None, cfg: BuildConfig | None = None) -> BuildSummary:
    out = Path(out)
    sessions = make_sessions(n, out.with_name(out.stem + "_takes"), bvhs, seed, pixels)
    return build(sessions, out, cfg or BuildConfig(), workers, scheduler)
