"""Keypoint sets (BlazePose 33, COCO 17, Halpe 26, ...) read from ``configs/keypoints``."""

from __future__ import annotations

from functools import cache

import numpy as np

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
    check_keys(table, {"name", "joints", "limbs", "bones", "loose_bones", "body", "head"}, str(path))
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
    for kind in ("limbs", "bones", "loose_bones"):
        value = table.get(kind, [])
        if not isinstance(value, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(n, str) for n in p) for p in value):
            raise ValueError(f"{path}: {kind} must be a list of [joint, joint] name pairs, got {value!r}")

    def idx(pair: list[str], kind: str) -> tuple[int, int]:
        for n in pair:
            if n not in joints:
                raise ValueError(f"{path}: {kind} names unknown joint {n!r}")
        return joints.index(pair[0]), joints.index(pair[1])

    head = table.get("head", [])
    if not isinstance(head, list) or not all(isinstance(n, str) and n in joints for n in head):
        raise ValueError(f"{path}: head must be a list of this set's joint names, got {head!r}")
    body = table.get("body")
    if body is not None:
        base = get_keypoint_set(body).joints if isinstance(body, str) and body != set_name else None
        if base is None or joints[: len(base)] != base:
            raise ValueError(f"{path}: body must name a keypoint set whose joints begin this set's, got {body!r}")
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
        loose_bones=tuple(idx(p, "loose_bones") for p in table.get("loose_bones", [])),
        head=tuple(joints.index(n) for n in head),
    )


def keypoint_set_for_count(n_joints: int) -> str:
    """Guess the keypoint set from the number of joints (for files that do not name it)."""
    for name in preset_names("keypoints"):
        if len(get_keypoint_set(name).joints) == n_joints:
            return name
    raise ValueError(f"no known keypoint set has {n_joints} joints; known: "
                     f"{ {n: len(get_keypoint_set(n).joints) for n in preset_names('keypoints')} }")


HAND_POINTS = ("hand_wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
               "index_mcp", "index_pip", "index_dip", "index_tip", "middle_mcp", "middle_pip", "middle_dip",
               "middle_tip", "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
               "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip")


def hand_joints(ks: KeypointSet) -> np.ndarray:
    """(J,) bool: the set's hand keypoints (``left_index_tip``, ...: a side then a MediaPipe hand-point name)."""
    names = {f"{side}_{p}" for side in ("left", "right") for p in HAND_POINTS}
    return np.array([n in names for n in ks.joints], bool)


def joint_groups(ks: KeypointSet) -> np.ndarray | None:
    """(J,) noise groups for refine: 0 the body, 1 the hands (small in the image: their own 2D noise level,
    measured); None for a set without hands (one group, as before hands existed)."""
    hands = hand_joints(ks)
    return hands.astype(int) if hands.any() else None


def body_keypoint_set(name: str) -> str | None:
    """The body-only set a set extends (``blazepose33`` for ``blazepose33_hands``: its first joints, in the
    same order), from the set's ``body`` key; None when it declares none. A skeleton mapped onto the body set
    places the same joints from the larger one (the names are the same)."""
    from mocap.config_files import load_preset

    table, _ = load_preset("keypoints", name)
    get_keypoint_set(name)  # checked
    return table.get("body")
