"""Procedural finger motion for synthetic ground truth (the CMU clips have no fingers).

:func:`finger_curls` makes per-finger curl curves (0 = straight, 1 = fully curled) and a spread curve
per hand from a random sequence of gestures (open hand, fist, grasp, pinch, spread fingers, counting
one to four) blended smoothly into each other, with a little independent motion per finger.
:func:`add_fingers` puts them on a body22 motion as a ``body52`` motion (the hand scaled with the
forearm); :func:`hand_keypoints` gives the 42 hand keypoints of ``blazepose33_hands`` (left 21 then
right 21, MediaPipe order) of a body52 motion, fingertips included; :func:`flexion_angles` the
flexion of every finger joint (for measuring a fit).

Curl → joint angles: MCP 85°, PIP 100°, DIP 70° at curl 1 (the distal joints lag a little); the thumb
opposes (CMC 35° flexion and 25° spread, MCP 45°, IP 60°). Every finger joint is a rotation about an
axis in the plane of the joint's flexion axis and spread axis (no twist), as the fit models it.
"""

from __future__ import annotations

import numpy as np

from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_quat, quat_continuous
from mocap.skeletons import SkeletonSpec, flexion_spread_axes, load_skeleton
from mocap.types import Motion, Skeleton

SIDES = ("Left", "Right")
FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")
# MediaPipe hand-landmark order: wrist, then 4 points per finger (3 joints and the tip)
HAND_POINTS = ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip") + tuple(
    f"{f}_{k}" for f in ("index", "middle", "ring", "pinky") for k in ("mcp", "pip", "dip", "tip"))
# gesture → curls (thumb, index, middle, ring, pinky) and spread (−1 … 1)
GESTURES = {
    "open": ((0.0, 0.0, 0.0, 0.0, 0.0), 0.0),
    "fist": ((0.85, 1.0, 1.0, 1.0, 1.0), 0.0),
    "grasp": ((0.5, 0.55, 0.6, 0.6, 0.65), 0.0),
    "pinch": ((0.6, 0.55, 0.15, 0.1, 0.1), 0.2),
    "spread": ((0.0, -0.05, -0.05, -0.05, -0.05), 1.0),
    "one": ((0.9, 0.0, 1.0, 1.0, 1.0), 0.0),
    "two": ((0.9, 0.0, 0.0, 1.0, 1.0), 0.6),
    "three": ((0.9, 0.0, 0.0, 0.0, 1.0), 0.5),
    "four": ((0.9, 0.0, 0.0, 0.0, 0.0), 0.7),
    "relaxed": ((0.2, 0.2, 0.25, 0.3, 0.35), 0.1),
}
FLEX_DEG = {"Thumb": (35.0, 45.0, 60.0), "other": (85.0, 100.0, 70.0)}
# spread at curl/spread 1: + = away from the thumb (the thumb: palmar abduction, part of opposition)
SPREAD_DEG = {"Thumb": 25.0, "Index": -12.0, "Middle": -3.0, "Ring": 7.0, "Pinky": 15.0}


def finger_curls(frames: int, fps: float, seed: int = 0, hold_s: tuple[float, float] = (0.4, 1.0),
                 blend_s: tuple[float, float] = (0.25, 0.6)) -> dict[str, np.ndarray]:
    """Curl curves ``{"LeftIndex": (F,), ...}`` in [−0.05, 1] for every side and finger, and a spread
    curve ``{"LeftSpread": (F,)}`` in [−1, 1] per hand: gestures held for ``hold_s`` seconds (a random
    range) and blended over ``blend_s`` seconds, each hand its own sequence."""
    if frames < 1 or fps <= 0:
        raise ValueError(f"finger_curls: need frames >= 1 and fps > 0, got {frames}, {fps}")
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    names = list(GESTURES)
    out: dict[str, np.ndarray] = {}
    for side in SIDES:
        keys, times = [], []
        now, last = -rng.uniform(0, hold_s[1]), None
        while now < t[-1] + 1:
            g = names[rng.integers(len(names))]
            if g == last:
                continue
            curl, spread = GESTURES[g]
            hold, blend = rng.uniform(*hold_s), rng.uniform(*blend_s)
            keys.append(np.array(curl + (spread,)))
            times.append((now, now + hold))
            now += hold + blend
            last = g
        keys, times = np.array(keys), np.array(times)
        values = np.empty((frames, 6))
        k = np.clip(np.searchsorted(times[:, 0], t, side="right") - 1, 0, len(times) - 1)
        for f in range(frames):
            i = k[f]
            if t[f] <= times[i, 1] or i + 1 >= len(times):
                values[f] = keys[i]
            else:  # eased blend towards the next gesture
                u = (t[f] - times[i, 1]) / max(times[i + 1, 0] - times[i, 1], 1e-9)
                w = 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0, 1))
                values[f] = (1 - w) * keys[i] + w * keys[i + 1]
        wobble = sum(a * np.sin(2 * np.pi * fr * t[:, None] + ph) for a, fr, ph in zip(
            rng.uniform(0.01, 0.04, (2, 6)), rng.uniform(0.3, 1.2, (2, 6)), rng.uniform(0, 2 * np.pi, (2, 6)),
            strict=True))
        values = values + wobble
        for i, finger in enumerate(FINGERS):
            out[f"{side}{finger}"] = np.clip(values[:, i], -0.05, 1.0)
        out[f"{side}Spread"] = np.clip(values[:, 5], -1.0, 1.0)
    return out


joint_axes = flexion_spread_axes  # a finger joint's flexion and spread axes (see mocap.skeletons)


def _hand_scale(body: Skeleton, spec: SkeletonSpec, side: str) -> float:
    """The hand's scale: the body's forearm length over the preset's."""
    ref = spec.skeleton.offsets[spec.skeleton.index(f"{side}Hand")]
    return float(np.linalg.norm(body.offsets[body.index(f"{side}Hand")]) / np.linalg.norm(ref))


def add_fingers(motion22: Motion, curls: dict[str, np.ndarray], skeleton: str = "body52") -> Motion:
    """A body22 motion with fingers: the ``body52`` motion whose body joints move as ``motion22``'s and
    whose fingers follow ``curls`` (:func:`finger_curls`; a missing finger stays straight). Each hand is
    scaled with its forearm."""
    spec = load_skeleton(skeleton)
    sk52, body = spec.skeleton, motion22.skeleton
    F = motion22.n_frames
    missing = [n for n in body.joint_names if n not in sk52.joint_names]
    if missing:
        raise ValueError(f"add_fingers: the motion has joints {missing} that {skeleton} lacks")
    offsets = sk52.offsets.copy()
    q = np.tile([1.0, 0.0, 0.0, 0.0], (F, len(sk52.joint_names), 1))
    for j, name in enumerate(body.joint_names):
        offsets[sk52.index(name)] = body.offsets[j]
        q[:, sk52.index(name)] = motion22.rotations[:, j]
    for side in SIDES:
        scale = _hand_scale(body, spec, side)
        spread = np.asarray(curls.get(f"{side}Spread", np.zeros(F)), float)
        for finger in FINGERS:
            c = np.asarray(curls.get(f"{side}{finger}", np.zeros(F)), float)
            if c.shape != (F,):
                raise ValueError(f"add_fingers: curl {side}{finger} has shape {c.shape}, expected ({F},)")
            flex = FLEX_DEG["Thumb" if finger == "Thumb" else "other"]
            lag = (c, np.clip(c * 1.1 - 0.05, -0.05, 1.0), np.clip(c * 1.2 - 0.1, -0.05, 1.0))
            for i in range(3):
                name = f"{side}Hand{finger}{i + 1}"
                j = sk52.index(name)
                offsets[j] = sk52.offsets[j] * scale
                axis, sp = joint_axes(spec, name)
                angle = np.radians(flex[i]) * lag[i]
                vec = angle[:, None] * axis
                if i == 0:  # spread at the base: fingers fan out, the thumb opposes as it curls
                    s = SPREAD_DEG[finger] * (c if finger == "Thumb" else spread)
                    sgn = _away_from_thumb(spec, side, sp) * (-1.0 if finger == "Thumb" else 1.0)
                    vec = vec + np.radians(s)[:, None] * sgn * sp
                q[:, j] = matrix_to_quat(axis_angle_to_matrix(vec))
    q = quat_continuous(q, axis=0)
    return Motion(Skeleton(sk52.joint_names, sk52.parents, offsets), q, motion22.root_positions, motion22.fps)


def _away_from_thumb(spec: SkeletonSpec, side: str, spread_axis: np.ndarray) -> float:
    """+1 when turning a finger about +spread_axis moves it away from the thumb, else −1."""
    sk = spec.skeleton
    bone = sk.offsets[sk.index(f"{side}HandIndex2")]
    thumb_side = sk.offsets[sk.index(f"{side}HandIndex1")] - sk.offsets[sk.index(f"{side}HandPinky1")]
    return -1.0 if np.cross(spread_axis, bone) @ thumb_side > 0 else 1.0


def _tip(spec: SkeletonSpec, sk: Skeleton, joint: str) -> np.ndarray:
    """The fingertip offset of ``joint`` (its last segment) scaled like the motion's finger."""
    ref = spec.skeleton.offsets[spec.skeleton.index(joint)]
    scale = np.linalg.norm(sk.offsets[sk.index(joint)]) / np.linalg.norm(ref)
    return np.asarray(spec.tips[joint], float) * scale


def hand_keypoints(motion52: Motion, skeleton: str = "body52") -> np.ndarray:
    """(F, 42, 3) world hand keypoints of a body52 motion: left 21 then right 21 in MediaPipe order
    (wrist = the hand joint, CMC/MCP/IP/PIP/DIP = the finger joints, tips at the end of each last segment)."""
    spec = load_skeleton(skeleton)
    sk = motion52.skeleton
    Rw, p = motion52.fk()
    out = np.empty((motion52.n_frames, 42, 3))
    k = 0
    for side in SIDES:
        out[:, k] = p[:, sk.index(f"{side}Hand")]
        k += 1
        for finger in FINGERS:
            for i in (1, 2, 3):
                out[:, k] = p[:, sk.index(f"{side}Hand{finger}{i}")]
                k += 1
            j = sk.index(f"{side}Hand{finger}3")
            out[:, k] = p[:, j] + Rw[:, j] @ _tip(spec, sk, f"{side}Hand{finger}3")
            k += 1
    return out


def hand_keypoint_names() -> list[str]:
    """The 42 names of :func:`hand_keypoints`' points (as in ``blazepose33_hands``)."""
    return [f"{side.lower()}_{'hand_wrist' if n == 'wrist' else n}" for side in SIDES for n in HAND_POINTS]


def flexion_angles(motion52: Motion, skeleton: str = "body52") -> dict[str, np.ndarray]:
    """Flexion (radians, (F,)) of every finger joint: its local rotation vector along the flexion axis."""
    spec = load_skeleton(skeleton)
    sk = motion52.skeleton
    from mocap.geometry.rotations import quat_to_matrix

    out = {}
    for name in spec.finger_joints:
        axis, _ = joint_axes(spec, name)
        out[name] = matrix_to_axis_angle(quat_to_matrix(motion52.rotations[:, sk.index(name)])) @ axis
    return out
