"""Several people in one synthetic take: crossing paths, occlusion between people, merged and missed
detections, detections that are not people, shuffled detector slots, people entering and leaving.

Each person is a motion played in place (its horizontal hip path removed), turned to face along its
own straight path and moved back and forth along it (``± amplitude_m · sin(2π t / period_s + phase)``).
Up to four people share a crossing point (a lane; more people: further lanes side by side, far
enough apart that paths of different lanes never meet). In a lane, persons 2k and 2k+1 share a phase
and walk in opposite directions, so they cross at the same moment, their paths ``crossing_gap_m``
apart there (closest approach ≈ gap · cos(90°/n)); the other pair passes a quarter period later. Per
view, a keypoint hidden by a person nearer the camera (within ``body_radius_m`` of one of that
person's keypoints in the image) is missing; a person mostly hidden is not detected at
all, and part of those overlaps come out as one detection mixing both people (one body side of the
hidden person). Truth: (F, N, J, 3) per person, NaN while a person is out of the volume; ``owner``
(F, C, S) gives each detector slot's person (-1 empty, -2 a detection that is not a person).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mocap.keypoint_sets import get_keypoint_set
from mocap.synth.groundtruth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
NOT_A_PERSON = -2
LANE = 4  # people sharing one crossing point; more people: further lanes side by side


@dataclass(frozen=True)
class CrowdSpec:
    people: int = 3
    amplitude_m: float = 1.8  # half the length of each person's path
    period_s: float = 12.0  # one back-and-forth along the path
    crossing_gap_m: float = 0.3  # distance between two crossing paths where they cross
    enter_leave: bool = True  # the last person enters at 20 % of the take, the one before leaves at 80 % (≥ 3)
    occlusion: bool = True
    body_radius_m: float = 0.12  # a keypoint this close (in the image) to a nearer person's keypoint is hidden
    hidden_fraction: float = 0.5  # a person with this fraction of keypoints hidden in a view is not detected
    merge_rate: float = 0.5  # of the persons partly hidden (≥ 20 % of keypoints): one detection mixing both
    clutter_rate: float = 0.002  # per view and frame: a run of ~1 s of a detection that is not a person
    shuffle: bool = True  # detector slots in a random order every frame
    seed: int = 0

    def __post_init__(self) -> None:
        if self.people < 1:
            raise ValueError(f"synth: people must be at least 1, got {self.people}")
        if not (self.amplitude_m > 0 and self.period_s > 0):
            raise ValueError(f"synth: amplitude_m and period_s must be positive, got {self.amplitude_m}, "
                             f"{self.period_s}")


@dataclass(frozen=True)
class CrowdTake:
    rig: Rig
    keypoints: Keypoints2D  # (F, C, S, J, 3)
    truth: np.ndarray  # (F, N, J, 3) world keypoints per person, NaN while absent
    owner: np.ndarray  # (F, C, S) person of each slot, -1 empty, -2 not a person
    merged_with: np.ndarray  # (F, C, S) the second person in a merged detection, else -1
    stats: dict = field(default_factory=dict)


def in_place(points: np.ndarray, keypoint_set: str) -> np.ndarray:
    """A motion (F, J, 3) with its horizontal hip path removed (the hips stay over the origin)."""
    ks = get_keypoint_set(keypoint_set)
    hips = [ks.index(n) for n in ("left_hip", "right_hip")]
    centre = np.nanmean(points[:, hips, :2], axis=1)
    out = points.copy()
    out[..., :2] -= centre[:, None]
    return out


def place(motions: list[np.ndarray], spec: CrowdSpec, fps: float) -> np.ndarray:
    """(F, N, J, 3) people on crossing paths from in-place motions (F, J, 3) (reused in turn)."""
    F = min(len(m) for m in motions)
    N = spec.people
    t = np.arange(F) / fps
    lanes = -(-N // LANE)
    spacing = 2 * spec.amplitude_m + 0.5  # lanes far enough apart that their paths never meet
    out = np.empty((F, N) + motions[0].shape[1:])
    for i in range(N):
        lane, k = divmod(i, LANE)
        n_lane = min(LANE, N - lane * LANE)
        centre = np.array([0.0, (lane - (lanes - 1) / 2) * spacing, 0.0])
        theta = np.pi * k / n_lane + 0.1
        u = np.array([np.cos(theta), np.sin(theta), 0.0])
        n = np.array([-u[1], u[0], 0.0])
        offset = (0.5 if k % 2 == 0 else -0.5) * spec.crossing_gap_m
        phase = np.pi * (k // 2) / max(1, -(-n_lane // 2))
        s = (1 if k % 2 == 0 else -1) * spec.amplitude_m * np.sin(2 * np.pi * t / spec.period_s + phase)
        c, si = np.cos(theta + np.pi / 2), np.sin(theta + np.pi / 2)
        R = np.array([[c, -si, 0.0], [si, c, 0.0], [0.0, 0.0, 1.0]])  # faces along its path
        m = motions[i % len(motions)][:F] @ R.T
        out[:, i] = m + (centre + offset * n + s[:, None] * u)[:, None, :]
    if spec.enter_leave and N >= 2:
        out[: int(0.2 * F), N - 1] = np.nan
        if N >= 3:
            out[int(0.8 * F):, N - 2] = np.nan
    return out


def _hidden(rig: Rig, truth: np.ndarray, spec: CrowdSpec) -> np.ndarray:
    """(F, C, N, J) keypoints hidden by a person nearer the camera."""
    F, N, J, _ = truth.shape
    hidden = np.zeros((F, len(rig), N, J), bool)
    if not spec.occlusion or N < 2:
        return hidden
    for c, cam in enumerate(rig.cameras):
        uv = cam.project(truth)  # (F, N, J, 2)
        depth = (truth @ cam.R.T + cam.t)[..., 2]  # (F, N, J)
        centre_depth = np.mean(depth, axis=2)  # (F, N), NaN while absent
        radius = spec.body_radius_m * cam.K[0, 0] / centre_depth  # (F, N) px
        for a in range(N):
            for b in range(N):
                if a == b:
                    continue
                d = np.linalg.norm(uv[:, a, :, None] - uv[:, b, None, :], axis=-1)  # (F, J, J)
                near = np.nanmin(np.where(np.isfinite(d), d, np.inf), axis=2) < radius[:, b, None]
                behind = depth[:, a] > centre_depth[:, b, None] + spec.body_radius_m
                hidden[:, c, a] |= near & behind
    return hidden


def make_crowd(motions: list[np.ndarray], keypoint_set: str, fps: float = 60.0, spec: CrowdSpec = CrowdSpec(),
               rig_spec: RigSpec | None = None, corruption: CorruptionSpec | None = None) -> CrowdTake:
    """A multi-person take from in-place motions (see :func:`in_place`)."""
    rig_spec, corruption = rig_spec or RigSpec(), corruption or CorruptionSpec()
    rng = np.random.default_rng(spec.seed)
    truth = place(motions, spec, fps)
    F, N, J, _ = truth.shape
    rig = ring_rig(rig_spec, truth)
    C = len(rig)
    hidden = _hidden(rig, truth, spec)
    ks = get_keypoint_set(keypoint_set)
    side = np.zeros(J, bool)
    side[[a for a, _ in ks.pairs]] = True  # one body side: what a merged detection takes from the hidden person
    det = np.empty((F, C, N, J, 3))
    for i in range(N):
        uv = np.moveaxis(rig.project(truth[:, i]), 0, 1)  # (F, C, J, 2)
        det[:, :, i] = corrupt(uv, rig, keypoint_set, CorruptionSpec(
            corruption.noise_px, corruption.outliers, corruption.dropouts, corruption.dropout_mean_frames,
            corruption.swaps, corruption.swap_mean_frames, corruption.seed + 1000 * i))[0][:, :, 0]
    present = np.isfinite(truth[..., 0]).any(axis=-1)  # (F, N)
    visible = np.isfinite(det[..., 0]).sum(axis=-1) > 0  # (F, C, N)
    frac = hidden.sum(-1) / np.maximum(np.isfinite(det[..., 0]).sum(-1), 1)
    missed = present[:, None] & (frac >= spec.hidden_fraction)
    partly = present[:, None] & (frac >= 0.2) & ~missed
    merged = partly & (rng.random(partly.shape) < spec.merge_rate)
    clean = det.copy()
    det[hidden] = np.nan
    n_merged = 0
    mixed = np.full((F, C, N), -1, np.int16)
    for f, c, a in np.argwhere(merged):  # the nearest person hiding a takes a's body side and a is missed
        d_b = [np.nanmean((truth[f, b] @ rig[c].R.T + rig[c].t)[:, 2]) if b != a and present[f, b] else np.inf
               for b in range(N)]
        b = int(np.argmin(d_b))
        if not np.isfinite(d_b[b]) or not visible[f, c, b]:
            continue
        det[f, c, b, side] = clean[f, c, a, side]
        missed[f, c, a] = True
        mixed[f, c, b] = a
        n_merged += 1
    det[missed] = np.nan
    owner_p = np.where(np.isfinite(det[..., 0]).any(axis=-1), np.arange(N)[None, None], -1)  # (F, C, N)
    clutter = _clutter(rng, clean, present, spec, fps)
    S = N + (1 if spec.clutter_rate > 0 else 0)
    data = np.full((F, C, S, J, 3), np.nan)
    owner = np.full((F, C, S), -1, np.int16)
    merged_with = np.full((F, C, S), -1, np.int16)
    data[:, :, :N], owner[:, :, :N], merged_with[:, :, :N] = det, owner_p, mixed
    if S > N:
        has = np.isfinite(clutter[..., 0]).any(axis=-1)
        data[:, :, N], owner[:, :, N] = clutter, np.where(has, NOT_A_PERSON, -1)
    if spec.shuffle:
        perm = np.argsort(rng.random((F, C, S)), axis=-1)
        data = np.take_along_axis(data, perm[..., None, None], axis=2)
        owner = np.take_along_axis(owner, perm, axis=2)
        merged_with = np.take_along_axis(merged_with, perm, axis=2)
    centres = np.mean(truth, axis=2)  # (F, N, 3), NaN while absent
    gaps = [np.nanmin(np.linalg.norm(centres[:, a, :2] - centres[:, b, :2], axis=-1))
            for a in range(N) for b in range(a + 1, N) if np.isfinite(centres[:, a, 0] + centres[:, b, 0]).any()]
    stats = {"people": N, "frames": F, "cameras": C, "slots": S, "closest_approach_m": float(min(gaps, default=np.nan)),
             "missed_views": int(np.sum(missed & visible)), "merged_detections": n_merged,
             "hidden_keypoints": int(hidden.sum()), "clutter_views": int(np.sum(owner == NOT_A_PERSON))}
    log.info("synthetic crowd: %s", stats)
    return CrowdTake(rig, Keypoints2D(data, rig.names, keypoint_set, fps), truth, owner, merged_with, stats)


def _clutter(rng: np.random.Generator, det: np.ndarray, present: np.ndarray, spec: CrowdSpec,
             fps: float) -> np.ndarray:
    """(F, C, J, 3): runs of a person's detection moved elsewhere in the image (a poster, a reflection)."""
    F, C, N, J, _ = det.shape
    out = np.full((F, C, J, 3), np.nan)
    if spec.clutter_rate <= 0:
        return out
    for c in range(C):
        starts = np.flatnonzero(rng.random(F) < spec.clutter_rate)
        for f0 in starts:
            length = max(1, int(rng.exponential(fps)))
            a = int(rng.integers(N))
            shift = rng.uniform(-300, 300, 2)
            seg = det[f0 : f0 + length, c, a].copy()
            seg[..., :2] += shift
            out[f0 : f0 + length, c] = seg
    return out


def load_motions(bvh: str | Path, people: int, frames: int, fps: float = 60.0) -> tuple[list[np.ndarray], str]:
    """``people`` in-place motions cut from one clip at different starts, and their keypoint set."""
    from mocap.synth.bvh_map import load_motion
    from mocap.synth.groundtruth import clip_points

    motion, mm = load_motion(bvh, "auto")
    step = max(1, (motion.n_frames - 1) // max(people, 1))
    out = [in_place(clip_points(motion, mm, fps, frames, (1 + i * step) % motion.n_frames, str(bvh)), mm.keypoint_set)
           for i in range(people)]
    return out, mm.keypoint_set


def write_crowd_session(take: CrowdTake, root: str | Path, json_2d: bool = False) -> Path:
    """A session folder: rig, 2D keypoints, every person's ground truth (the slot owners in its info) and
    ``mocap.toml`` with ``detect.persons`` set to the number of people."""
    import tomli_w

    from mocap.io.hdf5 import write_keypoints2d, write_points3d
    from mocap.io.openpose import write_openpose
    from mocap.io.rig_files import write_rig
    from mocap.multi.slots import encode_slots
    from mocap.types import Points3D

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    kp = take.keypoints
    (root / "session.toml").write_text(tomli_w.dumps(
        {"fps": kp.fps, "keypoint_set": kp.keypoint_set, "description": "synthetic multi-person take (mocap.synth)"}))
    (root / "mocap.toml").write_text(tomli_w.dumps({"detect": {"persons": int(take.truth.shape[1])}}))
    write_rig(take.rig, root / "calibration" / "rig.toml")
    if json_2d:
        write_openpose(kp, root / "pose2d")
    else:
        write_keypoints2d(kp, root / "pose2d.h5")
    F, N, J, _ = take.truth.shape
    seen = np.isfinite(take.truth[..., 0])
    gt = Points3D(take.truth, np.where(seen, 0.0, np.nan), np.repeat(seen[..., None], len(take.rig), -1),
                  take.rig.names, kp.keypoint_set, kp.fps,
                  {"source": "ground truth", "slot_owner": encode_slots(take.owner),
                   "slot_merged_with": encode_slots(take.merged_with), "stats": take.stats})
    write_points3d(gt, root / "groundtruth" / "points3d.h5")
    return root
