"""Which takes can share a dataset: its ``/index`` stacks every take's points3d (F, K, 3) and rotations
(F, J, 4), so all takes hold one keypoint set and one skeleton. A take that differs from the dataset's
is refused with a message naming both (the build records it as failed and goes on with the others)."""

from __future__ import annotations

import json

import h5py
import numpy as np

INDEX_FIELDS = ("points3d", "rotations")


class TakeMismatchError(ValueError):
    """A take whose keypoint set or skeleton differs from the dataset's."""


def signature(shapes: dict[str, tuple[int, ...]], attrs) -> dict:
    """What must agree between takes: the per-frame shapes of the indexed fields, the keypoint set and the
    skeleton's joint names (when recorded)."""
    sig: dict = {name: tuple(int(n) for n in shapes[name][1:]) for name in INDEX_FIELDS if name in shapes}
    sig["keypoint_set"] = str(attrs.get("keypoint_set", "")) or None
    names = attrs.get("joint_names")
    sig["joint_names"] = tuple(json.loads(names)) if names else None
    return sig


def take_signature(data: dict) -> dict:
    """Signature of a take as computed (``{"arrays": ..., "attrs": ...}``)."""
    return signature({n: np.shape(data["arrays"][n]) for n in INDEX_FIELDS if n in data["arrays"]}, data["attrs"])


def group_signature(g: h5py.Group) -> dict:
    """Signature of a stored take (a dataset's ``/takes/<id>`` or a pending take file)."""
    return signature({n: g[n].shape for n in INDEX_FIELDS if n in g}, g.attrs)


def describe(sig: dict) -> str:
    kp = sig.get("points3d")
    rot = sig.get("rotations")
    return (f"keypoint set {sig.get('keypoint_set') or '(unnamed)'} "
            f"({kp[0] if kp else '?'} keypoints), skeleton of {rot[0] if rot else '?'} joints")


def mismatch(tid: str, sig: dict, ref_tid: str, ref: dict, out) -> str | None:
    """None when take ``tid`` can join a dataset whose takes are like ``ref_tid``; else why not."""
    differs = [what for n, what in (("keypoint_set", "keypoint set"), ("points3d", "keypoint count"),
                                    ("rotations", "skeleton joint count")) if sig.get(n) != ref.get(n)]
    if sig["joint_names"] is not None and ref["joint_names"] is not None and sig["joint_names"] != ref["joint_names"]:
        differs.append("skeleton joint names")
    if not differs:
        return None
    return (f"take {tid}: {describe(sig)}, but the dataset {out} holds {describe(ref)} (take {ref_tid}); "
            f"differs: {', '.join(differs)}. A dataset holds one keypoint set and one skeleton (its /index stacks "
            f"every take): build this take into another dataset (another --out file)")
