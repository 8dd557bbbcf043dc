"""Keypoint sets (BlazePose 33, COCO 17, Halpe 26, ...) read from ``configs/keypoints``."""

from __future__ import annotations

from functools import cache

from mocap.config_files import check_keys, load_preset, preset_names
from mocap.types import KeypointSet


def mirror_name(name: str) -> str:
    """``left_knee`` ↔ ``right_knee``, ``mouth_left`` ↔ ``mouth_right``; others unchanged."""
    swapped = name.replace("left", "\0").replace("right", "left").replace("\0", "right")
    return swapped


@cache
def get_keypoint_set(name: str) -> KeypointSet:
    """Load a keypoint set by preset name (``blazepose33``) or TOML path."""
    if name not in preset_names("keypoints") and not name.endswith(".toml"):
        raise ValueError(f"unknown keypoint set {name!r}: expected one of {preset_names('keypoints')}")
    table, path = load_preset("keypoints", name)
    check_keys(table, {"name", "joints", "limbs", "bones"}, str(path))
    set_name = table.get("name", path.stem)
    if not isinstance(set_name, str) or not set_name:
        raise ValueError(f"{path}: name must be a non-empty string, got {set_name!r}")
    raw = table.get("joints")
    if not isinstance(raw, list) or not raw or not all(isinstance(n, str) and n for n in raw):
        raise ValueError(f"{path}: joints must be a non-empty list of joint names (strings), got {raw!r}")
    joints = tuple(raw)
    repeated = sorted({n for n in joints if joints.count(n) > 1})
    if repeated:
        raise ValueError(f"{path}: joint names repeat: {repeated}")
    for kind in ("limbs", "bones"):
        value = table.get(kind, [])
        if not isinstance(value, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(n, str) for n in p) for p in value):
            raise ValueError(f"{path}: {kind} must be a list of [joint, joint] name pairs, got {value!r}")

    def idx(pair: list[str], kind: str) -> tuple[int, int]:
        for n in pair:
            if n not in joints:
                raise ValueError(f"{path}: {kind} names unknown joint {n!r}")
        return joints.index(pair[0]), joints.index(pair[1])

    pairs = []
    for i, n in enumerate(joints):
        m = mirror_name(n)
        if m != n and m in joints and i < joints.index(m):
            pairs.append((i, joints.index(m)))
    return KeypointSet(
        name=set_name,
        joints=joints,
        pairs=tuple(pairs),
        limbs=tuple(idx(p, "limbs") for p in table.get("limbs", [])),
        bones=tuple(idx(p, "bones") for p in table.get("bones", [])),
    )


def keypoint_set_for_count(n_joints: int) -> str:
    """Guess the keypoint set from the number of joints (for files that do not name it)."""
    for name in preset_names("keypoints"):
        if len(get_keypoint_set(name).joints) == n_joints:
            return name
    raise ValueError(f"no known keypoint set has {n_joints} joints; known: "
                     f"{ {n: len(get_keypoint_set(n).joints) for n in preset_names('keypoints')} }")
