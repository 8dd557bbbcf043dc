"""Keypoints from any BVH skeleton: joint names matched by pattern, units and rest axes measured.

A clip whose joints carry the names of a marker-map preset (``configs/synth/cmu_blazepose33.toml``)
uses that preset. Any other clip (Mixamo ``mixamorig:LeftArm``, the same names without the prefix,
Unreal ``upperarm_l``, Blender ``forearm.L``, Unity ``LeftUpperLeg`` ...) is mapped by joint-name
patterns (case-insensitive; sides ``left``/``l_``/``_l``/``.l``); its units are found from its rest
height and its rest axes from its rest pose (up: feet → head, left: right → left hip and shoulder).
Clips at any frame rate are resampled: root positions linearly, rotations by slerp.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from mocap.io.bvh import read_bvh
from mocap.motion import scale_motion
from mocap.types import Motion, Skeleton

log = logging.getLogger(__name__)

# body part → (name fragments, fragments that exclude it); matched on the lower-case name without
# namespace, side and separators; among several matches the joint nearest the root wins
PARTS = {
    "hips": (("hips", "pelvis"), ()),
    "head": (("head",), ("headtop",)),
    "upperarm": (("upperarm", "arm"), ("forearm", "lowerarm")),
    "forearm": (("forearm", "lowerarm"), ()),
    "hand": (("hand", "wrist"), ()),
    "thigh": (("thigh", "upleg", "upperleg"), ()),
    "shin": (("shin", "calf", "lowerleg", "leg"), ("upleg", "upperleg")),
    "foot": (("foot", "ankle"), ()),
    "toe": (("toe", "ball"), ()),
}
SIDED = ("upperarm", "forearm", "hand", "thigh", "shin", "foot", "toe")
REQUIRED = ["head"] + [f"{s}_{p}" for s in ("left", "right") for p in SIDED if p != "toe"]
# plausible unit scales (file unit → metres), tried on the rest height of the skeleton
UNITS = {"m": 1.0, "dm": 0.1, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "CMU unit": 0.056444}
# face keypoints on the head joint: [left, forward, up] metres (as configs/synth/cmu_blazepose33.toml)
FACE = {
    "nose": (0.0, 0.10, 0.05), "left_eye_inner": (0.015, 0.085, 0.08), "left_eye": (0.032, 0.08, 0.08),
    "left_eye_outer": (0.048, 0.07, 0.08), "right_eye_inner": (-0.015, 0.085, 0.08),
    "right_eye": (-0.032, 0.08, 0.08), "right_eye_outer": (-0.048, 0.07, 0.08), "left_ear": (0.075, 0.0, 0.06),
    "right_ear": (-0.075, 0.0, 0.06), "mouth_left": (0.025, 0.085, 0.0), "mouth_right": (-0.025, 0.085, 0.0),
}
WORLD = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0]])  # (left, forward, up) → Z-up world facing −Y


def _strip(name: str) -> str:
    """``mixamorig:LeftArm`` → ``leftarm``; ``mixamorig_LeftArm`` → ``leftarm``."""
    name = name.rsplit(":", 1)[-1].lower()
    return re.sub(r"^mixamorig\d*_", "", name)


def _side_part(name: str) -> tuple[str | None, str]:
    n = _strip(name)
    side = None
    for s, short in (("left", "l"), ("right", "r")):
        if s in n:
            side, n = s, n.replace(s, "", 1)
            break
        m = re.match(rf"^{short}[_.\-]|.*[_.\-]{short}$", n)
        if m:
            side = s
            n = n[2:] if re.match(rf"^{short}[_.\-]", n) else n[:-2]
            break
    return side, re.sub(r"[_.\-\s]", "", n)


def _depths(sk: Skeleton) -> list[int]:
    depth = [0] * len(sk.joint_names)
    for j in range(1, len(depth)):
        depth[j] = depth[sk.parents[j]] + 1
    return depth


def find_joints(sk: Skeleton) -> dict[str, int]:
    """Canonical part (``head``, ``left_forearm`` ...) → joint index, for the parts found."""
    depth = _depths(sk)
    found: dict[str, int] = {}
    for j, name in enumerate(sk.joint_names):
        if name.lower().endswith("_end"):
            continue
        side, part = _side_part(name)
        for key, (include, exclude) in PARTS.items():
            if not any(f in part for f in include) or any(f in part for f in exclude):
                continue
            if (key in SIDED) != (side is not None):
                continue
            canon = f"{side}_{key}" if side else key
            if canon not in found or depth[j] < depth[found[canon]]:
                found[canon] = j
            break
    return found


def rest_positions(sk: Skeleton) -> np.ndarray:
    """(J, 3) joint positions with every rotation zero (file axes and units)."""
    pos = np.zeros((len(sk.joint_names), 3))
    for j in range(1, len(pos)):
        pos[j] = pos[sk.parents[j]] + sk.offsets[j]
    return pos


def rest_height(sk: Skeleton, up: np.ndarray) -> float:
    h = rest_positions(sk) @ up
    return float(h.max() - h.min())


def unit_scale(height: float, where: str) -> float:
    """File unit → metres, from the rest height of a human skeleton in file units."""
    best = min(UNITS.items(), key=lambda kv: abs(np.log(kv[1] * height / 1.7)))
    if 1.0 <= best[1] * height <= 2.4:
        log.info("%s: rest height %.4g file units: taken as %s", where, height, best[0])
        return best[1]
    log.warning("%s: rest height %.4g file units matches no usual unit; scaled to 1.7 m", where, height)
    return 1.7 / height


def rest_axes(sk: Skeleton, joints: dict[str, int]) -> np.ndarray:
    """(3, 3) columns: the file's left, forward and up directions at rest."""
    pos = rest_positions(sk)
    feet = (pos[joints["left_foot"]] + pos[joints["right_foot"]]) / 2
    up = pos[joints["head"]] - feet
    left = sum(pos[joints[f"left_{p}"]] - pos[joints[f"right_{p}"]] for p in ("thigh", "upperarm"))
    if np.linalg.norm(up) < 1e-9:
        raise ValueError("the head and the feet are at the same place at rest")
    up = up / np.linalg.norm(up)
    left = left - (left @ up) * up
    if np.linalg.norm(left) < 1e-9:
        raise ValueError("the left and right hips and shoulders are not apart at rest")
    left /= np.linalg.norm(left)
    up, left = _snap(up), _snap(left)  # files are made with a coordinate axis up: a lean is not a tilt
    if abs(up @ left) > 1e-9:
        left = left - (left @ up) * up
        left /= np.linalg.norm(left)
    return np.stack([left, np.cross(left, up), up], axis=1)


def _snap(v: np.ndarray, max_deg: float = 15.0) -> np.ndarray:
    """The coordinate axis (±x, ±y, ±z) nearest the unit vector ``v`` when within ``max_deg``, else ``v``."""
    k = int(np.argmax(np.abs(v)))
    if abs(v[k]) < np.cos(np.radians(max_deg)):
        return v
    axis = np.zeros(3)
    axis[k] = np.sign(v[k])
    return axis


def _tip(sk: Skeleton, j: int) -> int | None:
    kids = [k for k in range(len(sk.joint_names)) if sk.parents[k] == j]
    return kids[0] if len(kids) == 1 else None


def generic_marker_map(sk: Skeleton, where: str, keypoint_set: str = "blazepose33"):
    """A :class:`~mocap.synth.groundtruth.MarkerMap` for ``sk`` found from its joint names (file units
    are measured; the map's ``scale`` turns them into metres)."""
    from mocap.synth.groundtruth import MarkerMap

    if keypoint_set != "blazepose33":
        raise ValueError(f"{where}: generic joint mapping makes blazepose33 keypoints, not {keypoint_set!r}")
    joints = find_joints(sk)
    missing = [p for p in REQUIRED if p not in joints]
    if missing:
        patterns = {p: "/".join(PARTS[p.split("_", 1)[-1]][0]) for p in missing}
        raise ValueError(f"{where}: cannot map the BVH joints to keypoints: no joint found for "
                         + ", ".join(f"{p} ({patterns[p]})" for p in missing)
                         + f"; joints in the file: {list(sk.joint_names)}")
    try:
        M = rest_axes(sk, joints)
    except ValueError as e:
        raise ValueError(f"{where}: cannot find the rest axes: {e}") from None
    scale = unit_scale(rest_height(sk, M[:, 2]), where)
    pos = rest_positions(sk) * scale
    name = sk.joint_names
    kp: dict[str, tuple[int, np.ndarray]] = {k: (joints["head"], M @ np.array(v)) for k, v in FACE.items()}
    left, fwd, up = M.T
    for side in ("left", "right"):
        j = {p: joints.get(f"{side}_{p}") for p in SIDED}
        kp[f"{side}_shoulder"] = (j["upperarm"], np.zeros(3))
        kp[f"{side}_elbow"] = (j["forearm"], np.zeros(3))
        kp[f"{side}_wrist"] = (j["hand"], np.zeros(3))
        kp[f"{side}_hip"] = (j["thigh"], np.zeros(3))
        kp[f"{side}_knee"] = (j["shin"], np.zeros(3))
        kp[f"{side}_ankle"] = (j["foot"], np.zeros(3))
        along = pos[j["hand"]] - pos[j["forearm"]]
        along = along / max(np.linalg.norm(along), 1e-9)
        kp[f"{side}_index"] = (j["hand"], 0.08 * along + 0.02 * fwd)
        kp[f"{side}_pinky"] = (j["hand"], 0.075 * along - 0.025 * fwd)
        kp[f"{side}_thumb"] = (j["hand"], 0.05 * along + 0.045 * fwd)
        kp[f"{side}_heel"] = (j["foot"], -0.05 * fwd - 0.06 * up)
        toe = j["toe"]
        tip = _tip(sk, toe) if toe is not None else None
        if tip is not None:
            kp[f"{side}_foot_index"] = (tip, -0.02 * up)
        elif toe is not None:
            kp[f"{side}_foot_index"] = (toe, 0.05 * fwd - 0.02 * up)
        else:
            kp[f"{side}_foot_index"] = (j["foot"], 0.15 * fwd - 0.07 * up)
    from mocap.keypoint_sets import get_keypoint_set

    order = get_keypoint_set(keypoint_set).joints
    log.info("%s: keypoints mapped by joint names (%s)", where,
             ", ".join(f"{p}={name[i]}" for p, i in sorted(joints.items())))
    return MarkerMap(keypoint_set, tuple(name[kp[k][0]] for k in order), np.array([kp[k][1] for k in order]),
                     WORLD @ M.T, scale)


def missing_joints(sk: Skeleton, mm) -> list[str]:
    return sorted(set(mm.joints) - set(sk.joint_names))


def load_motion(bvh: str | Path, marker_map: str = "auto"):
    """(motion in metres, marker map) of a BVH clip. ``marker_map``: a preset name or TOML file, or
    ``"auto"``: the CMU preset when every joint it needs is in the file, else :func:`generic_marker_map`."""
    from mocap.synth.groundtruth import load_marker_map

    motion = read_bvh(bvh)
    sk = motion.skeleton
    if marker_map != "auto":
        mm = load_marker_map(marker_map)
        missing = missing_joints(sk, mm)
        if missing:
            raise ValueError(f"{bvh}: marker map {marker_map!r} needs joints the file does not have: {missing}; "
                             f"joints in the file: {list(sk.joint_names)}")
        return scale_motion(motion, mm.scale), mm
    mm = load_marker_map("cmu_blazepose33")
    if not missing_joints(sk, mm):
        height = rest_height(sk, np.linalg.inv(mm.to_world)[:, 2]) * mm.scale
        if 1.0 <= height <= 2.4:
            return scale_motion(motion, mm.scale), mm
        log.warning("%s: CMU joint names but %.2f m tall with CMU units; mapping generically", bvh, height)
    mm = generic_marker_map(sk, str(bvh))
    return scale_motion(motion, mm.scale), mm


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of unit quaternions (..., 4) with weights t (...,) in [0, 1]."""
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where(dot[..., None] < 0, -q1, q1)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    s = np.sin(theta)
    small = s < 1e-6
    safe = np.where(small, 1.0, s)
    w0 = np.where(small, 1 - t, np.sin((1 - t) * theta) / safe)
    w1 = np.where(small, t, np.sin(t * theta) / safe)
    q = w0[..., None] * q0 + w1[..., None] * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def resample(motion: Motion, fps: float) -> Motion:
    """The motion at ``fps``: frame k at time k / fps from the first frame. A whole-number ratio of
    frame rates (within 0.1%) keeps every n-th frame exactly; any other interpolates."""
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"resample: fps must be positive, got {fps}")
    F = motion.n_frames
    stride = motion.fps / fps
    if abs(stride - round(stride)) <= 1e-3 and round(stride) >= 1:
        idx = np.arange(0, F, int(round(stride)))
        return Motion(motion.skeleton, motion.rotations[idx], motion.root_positions[idx], fps)
    n = int(np.floor((F - 1) / stride + 1e-9)) + 1
    x = np.minimum(np.arange(n) * stride, F - 1)
    i0 = np.minimum(np.floor(x).astype(int), F - 1)
    i1 = np.minimum(i0 + 1, F - 1)
    t = x - i0
    root = (1 - t)[:, None] * motion.root_positions[i0] + t[:, None] * motion.root_positions[i1]
    J = motion.rotations.shape[1]
    rot = slerp(motion.rotations[i0], motion.rotations[i1], np.repeat(t[:, None], J, axis=1))
    return Motion(motion.skeleton, rot, root, fps)
