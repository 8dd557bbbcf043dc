"""Skeletons as data (``configs/skeletons/*.toml``): joints, rest offsets, joint types and limits,
and the weights that place each joint centre from a keypoint set's points.

Joint types: ``ball`` (3 DoF), ``hinge`` (one angle about ``axis``, ``limits`` in degrees) and ``2dof``
(finger MCP, thumb CMC: flexion about ``axis`` within ``limits``, sideways ``spread`` about the axis
across the bone within its limits, no twist about the bone). ``[tips]`` (optional): the last segment of
a chain that ends without a joint (a fingertip), in its joint's rest frame. A vector with
``fallback = true`` is used only in frames where its joint's children are unseen (the body's hand
points orient a hand whose fingers were not detected)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mocap.config_files import check_keys, load_preset
from mocap.keypoint_sets import get_keypoint_set
from mocap.types import Skeleton

JOINT_KEYS = {"parent", "offset", "type", "axis", "limits", "spread", "twist", "twist_axis"}
JOINT_TYPES = ("ball", "hinge", "2dof")


@dataclass(frozen=True)
class JointSpec:
    type: str = "ball"  # ball | hinge | 2dof
    axis: tuple[float, float, float] | None = None  # hinge (or 2dof flexion) axis in the joint's rest frame
    limits_deg: tuple[float, float] | None = None
    spread_deg: tuple[float, float] | None = None  # 2dof: limits of the sideways spread
    # 2dof: how far it may twist about its bone: σ (a number), or [low, high] limits it turns freely within;
    # None: held (the IK's default σ)
    twist_deg: float | tuple[float, float] | None = None
    twist_axis: tuple[float, float, float] | None = None  # 2dof: the axis of that twist when not its bone (rest frame)


@dataclass(frozen=True)
class SkeletonSpec:
    name: str
    skeleton: Skeleton
    joints: dict[str, JointSpec]
    mappings: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    vectors: dict[str, list[dict]] = field(default_factory=dict)
    tips: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # joint → end segment

    @property
    def finger_joints(self) -> tuple[str, ...]:
        """The joints below the hands (fingers), in skeleton order; () for a body-only skeleton."""
        sk = self.skeleton
        hands = {sk.index(h) for h in ("LeftHand", "RightHand") if h in sk.joint_names}
        out = []
        for j, name in enumerate(sk.joint_names):
            k = sk.parents[j]
            while k >= 0 and k not in hands:
                k = sk.parents[k]
            if k >= 0:
                out.append(name)
        return tuple(out)

    def unmapped_fingers(self, keypoint_set: str) -> list[str]:
        """Finger joints the keypoint set's mapping does not place (all of them for a set without hands)."""
        mapping = self.mappings.get(keypoint_set, {})
        return [j for j in self.finger_joints if j not in mapping]

    def mapping_matrix(self, keypoint_set: str) -> tuple[np.ndarray, np.ndarray]:
        """(W (J, K), mapped (J,) bool): joint centres = W @ keypoints for the joints the set places."""
        if keypoint_set not in self.mappings:
            raise ValueError(f"skeleton {self.name!r} has no mapping for keypoint set {keypoint_set!r} "
                             f"(has {sorted(self.mappings)})")
        kps = get_keypoint_set(keypoint_set)
        names = self.skeleton.joint_names
        W = np.zeros((len(names), len(kps.joints)))
        for joint, weights in self.mappings[keypoint_set].items():
            for kp, w in weights.items():
                W[names.index(joint), kps.index(kp)] = w
        return W, W.sum(axis=1) > 0


    def vector_matrices(self, keypoint_set: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Orientation vectors of a keypoint set: (joint index (V,), A (V, K), rest unit directions (V, 3));
        observed vector v = A @ keypoints should equal Rw[joint] @ rest."""
        kps = get_keypoint_set(keypoint_set)
        entries = self.vectors.get(keypoint_set, [])
        idx = np.array([self.skeleton.index(v["joint"]) for v in entries], int)
        A = np.zeros((len(entries), len(kps.joints)))
        rest = np.zeros((len(entries), 3))
        for i, v in enumerate(entries):
            for kp, w in v["to"].items():
                A[i, kps.index(kp)] += w
            for kp, w in v["from"].items():
                A[i, kps.index(kp)] -= w
            rest[i] = np.asarray(v["rest"], float) / np.linalg.norm(v["rest"])
        return idx, A, rest

    def vector_fallback(self, keypoint_set: str) -> np.ndarray:
        """(V,) bool: the vectors used only where their joint's children are unseen."""
        return np.array([bool(v.get("fallback", False)) for v in self.vectors.get(keypoint_set, [])], bool)


def _check_weights(weights: dict, kps, where: str) -> None:
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"{where}: expected a table of keypoint weights, got {weights!r}")
    for kp in weights:
        if kp not in kps.joints:
            raise ValueError(f"{where}: keypoint {kp!r} is not in {kps.name}")
    if abs(sum(weights.values()) - 1.0) > 1e-6:
        raise ValueError(f"{where}: weights sum to {sum(weights.values())}, not 1")


def _degrees_range(spec: dict, key: str, where: str) -> tuple[float, float]:
    """``limits`` / ``spread`` of a joint: [low, high] in degrees with low < high."""
    lo, hi = _numbers(spec[key], 2, where, f"{key} (degrees, [low, high])")
    if not lo < hi:
        raise ValueError(f"{where}: {key} must be [low, high] with low < high, got {spec[key]!r}")
    return float(lo), float(hi)


def _numbers(value, n: int, where: str, key: str) -> np.ndarray:
    """``value`` as ``n`` finite floats, or an error naming ``where`` (file and joint) and ``key``."""
    ok = isinstance(value, list) and len(value) == n and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    a = np.asarray(value, float) if ok else None
    if a is None or not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: {key} must be {n} finite numbers, got {value!r}")
    return a


def check_joint_tables(joints, where: str, keys: set[str] | None = None) -> None:
    """``joints`` is a non-empty table of tables (with only ``keys``, when given), or an error naming ``where``."""
    if not isinstance(joints, dict) or not joints:
        raise ValueError(f"{where}: no [joints]")
    for j, spec in joints.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: joint {j!r} must be a table ({{ parent = ..., offset = [x, y, z] }}), "
                             f"got {spec!r}")
        if keys is not None:
            check_keys(spec, keys, f"{where} [joints.{j}]")


def tree_from_table(joints: dict, where: str, allow_zero_bones: bool = False
                    ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Order a ``{name: {parent, offset}}`` table parents-first → (names, parents, offsets); refuses a
    missing parent, several roots, cycles and (unless allowed) zero-length bones, naming them."""
    check_joint_tables(joints, where)
    for j, spec in joints.items():
        parent = spec.get("parent")
        if parent is not None and not isinstance(parent, str):
            raise ValueError(f"{where}: joint {j!r}: parent must be a joint name, got {parent!r}")
        if parent is not None and parent not in joints:
            raise ValueError(f"{where}: joint {j!r} has parent {parent!r}, which is not a joint")
    roots = [j for j, s in joints.items() if s.get("parent") is None]
    if len(roots) != 1:
        raise ValueError(f"{where}: exactly one joint must have no parent (the root), found {roots}")
    order: list[str] = []
    placed: set[str] = set()
    pending = dict(joints)
    while pending:  # parents before children; whatever cannot be placed is part of a cycle
        ready = [j for j, s in pending.items() if s.get("parent") is None or s.get("parent") in placed]
        if not ready:
            raise ValueError(f"{where}: the parents of joints {sorted(pending)} form a cycle")
        for j in ready:
            order.append(j)
            placed.add(j)
            del pending[j]
    offsets = np.array([_numbers(joints[j].get("offset", [0.0, 0.0, 0.0]), 3, f"{where}: joint {j!r}", "offset")
                        for j in order]).reshape(len(order), 3)
    if not allow_zero_bones:
        for j, off in zip(order[1:], offsets[1:], strict=True):
            if np.linalg.norm(off) < 1e-6:
                raise ValueError(f"{where}: joint {j!r} has a zero-length bone (offset {off.tolist()})")
    parents = np.array([-1] + [order.index(joints[j]["parent"]) for j in order[1:]])
    return order, parents, offsets


def _twist(s: dict, axis, where: str) -> tuple[float | tuple[float, float] | None, tuple[float, float, float] | None]:
    """A 2dof joint's ``twist`` (σ in degrees, or [low, high] limits) and ``twist_axis`` (across its ``axis``),
    checked; None where not given."""
    twist = twist_axis = None
    if isinstance(s.get("twist"), list):
        twist = _degrees_range(s, "twist", where)
        if not -180 <= twist[0] < twist[1] <= 180:
            raise ValueError(f"{where}: twist limits must lie within [-180, 180] degrees, got {s['twist']!r}")
    elif "twist" in s:
        twist = s["twist"]
        if isinstance(twist, bool) or not isinstance(twist, int | float) or not 0 < twist <= 180:
            raise ValueError(f"{where}: twist must be a number of degrees in (0, 180] or [low, high] limits, got "
                             f"{twist!r}")
        twist = float(twist)
    if "twist_axis" in s:  # the twist measured about its part across ``axis``
        t = _numbers(s["twist_axis"], 3, where, "twist_axis")
        a = np.asarray(axis, float) / np.linalg.norm(axis)
        if np.linalg.norm(np.cross(t, a)) < 1e-3 * max(np.linalg.norm(t), 1e-9):
            raise ValueError(f"{where}: twist_axis must be a direction across its axis, got {s['twist_axis']!r}")
        twist_axis = tuple(float(v) for v in t)
    return twist, twist_axis


def load_skeleton(name: str = "body22") -> SkeletonSpec:
    """Load and check a skeleton preset (or TOML file)."""
    table, path = load_preset("skeletons", name)
    check_keys(table, {"name", "joints", "mappings", "vectors", "tips"}, str(path))
    joints = table.get("joints", {})
    check_joint_tables(joints, str(path), JOINT_KEYS)
    order, parents, offsets = tree_from_table(joints, str(path))
    specs = {}
    for j in order:
        s = joints[j]
        kind = s.get("type", "ball")
        if kind not in JOINT_TYPES:
            raise ValueError(f"{path}: joint {j!r}: type must be one of {', '.join(JOINT_TYPES)}, got {kind!r}")
        if kind in ("hinge", "2dof") and "axis" not in s:
            raise ValueError(f"{path}: {kind} joint {j!r} needs an axis")
        for key, what in (("spread", "spread limits are"), ("twist", "a twist is"), ("twist_axis", "a twist axis is")):
            if key in s and kind != "2dof":
                raise ValueError(f"{path}: joint {j!r}: {what} for 2dof joints, not {kind}")
        axis = limits = spread = None
        if "axis" in s:
            axis = _numbers(s["axis"], 3, f"{path}: joint {j!r}", "axis")
            if np.linalg.norm(axis) < 1e-9:
                raise ValueError(f"{path}: joint {j!r}: axis must not be zero, got {s['axis']!r}")
            axis = tuple(float(v) for v in axis)
        if "limits" in s:
            limits = _degrees_range(s, "limits", f"{path}: joint {j!r}")
        if "spread" in s:
            spread = _degrees_range(s, "spread", f"{path}: joint {j!r}")
        specs[j] = JointSpec(kind, axis, limits, spread, *_twist(s, axis, f"{path}: joint {j!r}"))
    mappings = table.get("mappings", {})
    for set_name, mapping in mappings.items():
        try:
            kps = get_keypoint_set(set_name)
        except ValueError as e:
            raise ValueError(f"{path}: [mappings.{set_name}]: {e}") from None
        for joint, weights in mapping.items():
            if joint not in joints:
                raise ValueError(f"{path}: [mappings.{set_name}] maps unknown joint {joint!r}")
            _check_weights(weights, kps, f"{path}: [mappings.{set_name}.{joint}]")
    vectors = table.get("vectors", {})
    for set_name, entries in vectors.items():
        if set_name not in mappings:
            raise ValueError(f"{path}: [vectors.{set_name}] but no [mappings.{set_name}]")
        kps = get_keypoint_set(set_name)
        for i, v in enumerate(entries):
            where = f"{path}: vectors.{set_name}[{i}]"
            check_keys(v, {"joint", "from", "to", "rest", "fallback"}, where)
            if v.get("joint") not in joints:
                raise ValueError(f"{where}: unknown joint {v.get('joint')!r}")
            _check_weights(v.get("from"), kps, where + " from")
            _check_weights(v.get("to"), kps, where + " to")
            if np.asarray(v.get("rest", [0, 0, 0]), float).shape != (3,) or np.linalg.norm(v["rest"]) < 1e-9:
                raise ValueError(f"{where}: rest must be a non-zero 3-vector")
    tips = {}
    for j, v in table.get("tips", {}).items():
        if j not in joints:
            raise ValueError(f"{path}: [tips] names unknown joint {j!r}")
        tips[j] = tuple(float(x) for x in _numbers(v, 3, f"{path}: [tips] {j!r}", "tip"))
    for j, sp in specs.items():  # a 2dof joint's twist is about its bone: to its child, its tip, or its twist_axis
        if sp.type == "2dof" and sp.twist_axis is None and j not in tips and not np.any(parents == order.index(j)):
            raise ValueError(f"{path}: 2dof joint {j!r} has no bone to twist about: give it a child, a [tips] entry "
                             "or a twist_axis")
    return SkeletonSpec(table.get("name", Path(path).stem), Skeleton(tuple(order), parents, offsets), specs,
                        mappings, vectors, tips)


def fingertip_sites(sk: Skeleton, preset: str = "body52") -> dict[int, np.ndarray]:
    """End segments for the leaf joints of ``sk`` that are ``preset``'s fingertip joints (its ``[tips]``):
    leaf index → the joint's own offset scaled by the preset's tip-to-segment ratio (finger tips lie along
    their last two segments at rest, so the ratio holds in any axes and units). {} for other skeletons."""
    names = sk.joint_names
    leaves = [j for j in range(1, len(names)) if not np.any(sk.parents == j)]
    if not any(names[j].endswith(("Thumb3", "Index3", "Middle3", "Ring3", "Pinky3")) for j in leaves):
        return {}
    spec = load_skeleton(preset)
    out = {}
    for j in leaves:
        if names[j] in spec.tips:
            ref = np.linalg.norm(spec.skeleton.offsets[spec.skeleton.index(names[j])])
            out[j] = sk.offsets[j] * (np.linalg.norm(spec.tips[names[j]]) / ref)
    return out


def flexion_spread_axes(spec: SkeletonSpec, joint: str) -> tuple[np.ndarray, np.ndarray]:
    """A hinge or 2-DoF joint's unit flexion axis (its ``axis``) and spread axis (bone × flexion axis, the bone
    going to its child, or to its tip for a fingertip joint; its ``twist_axis`` × flexion axis where it has one:
    an ankle, whose twist about the shin is what it holds, not about the foot) in its rest frame."""
    sk = spec.skeleton
    axis = np.asarray(spec.joints[joint].axis, float)
    axis /= np.linalg.norm(axis)
    if spec.joints[joint].twist_axis is not None:
        spread = np.cross(np.asarray(spec.joints[joint].twist_axis, float), axis)
        return axis, spread / np.linalg.norm(spread)
    kids = [c for c in range(len(sk.joint_names)) if sk.parents[c] == sk.index(joint)]
    bone = np.asarray(sk.offsets[kids[0]] if kids else spec.tips[joint], float)
    spread = np.cross(bone, axis)
    return axis, spread / np.linalg.norm(spread)

