"""BVH motion files. End sites become joints named ``<parent>_end`` with no channels (and back).

Rotations are read in the order the CHANNELS line lists them (``Zrotation Xrotation Yrotation``
→ ``Rz @ Rx @ Ry``). Positions stay in the file's units and axes; :func:`read_bvh` can scale
them. The root's world position is its position channels (its OFFSET when it has none).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mocap.geometry.rotations import euler_to_matrix, matrix_to_euler, matrix_to_quat, quat_continuous, quat_to_matrix
from mocap.io.atomic import atomic_write_text
from mocap.types import Motion, Skeleton


def read_bvh(path: str | Path, scale: float = 1.0) -> Motion:
    """Read a BVH file into a :class:`Motion` (positions multiplied by ``scale``)."""
    path = Path(path)
    try:
        tokens = path.read_text().split()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read BVH: {e}") from None
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    stack: list[int] = []
    i = 0

    def fail(msg: str):
        raise ValueError(f"{path}: not a valid BVH file: {msg} (token {i})")

    if not tokens or tokens[0] != "HIERARCHY":
        fail("missing HIERARCHY")
    i = 1
    pending: int | None = None
    while i < len(tokens) and tokens[i] != "MOTION":
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            names.append(tokens[i + 1])
            parents.append(stack[-1] if stack else -1)
            offsets.append([0.0, 0.0, 0.0])
            channels.append([])
            pending = len(names) - 1
            i += 2
        elif tok == "End" and tokens[i + 1] == "Site":
            if not stack:
                fail("End Site outside a joint")
            names.append(f"{names[stack[-1]]}_end")
            parents.append(stack[-1])
            offsets.append([0.0, 0.0, 0.0])
            channels.append([])
            pending = len(names) - 1
            i += 2
        elif tok == "{":
            if pending is None:
                fail("unexpected '{'")
            stack.append(pending)
            pending = None
            i += 1
        elif tok == "}":
            if not stack:
                fail("unbalanced '}'")
            stack.pop()
            i += 1
        elif tok == "OFFSET":
            offsets[stack[-1]] = [float(v) for v in tokens[i + 1 : i + 4]]
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            channels[stack[-1]] = tokens[i + 2 : i + 2 + n]
            i += 2 + n
        else:
            fail(f"unexpected {tok!r}")
    if i >= len(tokens) or not names:
        fail("missing MOTION section")
    try:
        n_frames = int(tokens[i + 2])
        frame_time = float(tokens[i + 5])
        values = np.asarray(tokens[i + 6 :], dtype=float)
    except (IndexError, ValueError):
        fail("malformed MOTION header")
    n_ch = sum(len(c) for c in channels)
    if values.size != n_frames * n_ch:
        fail(f"expected {n_frames} frames × {n_ch} channels = {n_frames * n_ch} values, got {values.size}")
    values = values.reshape(n_frames, n_ch)

    J = len(names)
    rot = np.zeros((n_frames, J, 4))
    rot[..., 0] = 1.0
    root = np.tile(np.asarray(offsets[0], float), (n_frames, 1))
    col = 0
    for j, chans in enumerate(channels):
        pos_axes = [c[0].upper() for c in chans if c.lower().endswith("position")]
        rot_axes = "".join(c[0].upper() for c in chans if c.lower().endswith("rotation"))
        if pos_axes and j != 0:
            raise ValueError(f"{path}: joint {names[j]!r} has position channels; only the root may")
        block = values[:, col : col + len(chans)]
        col += len(chans)
        if pos_axes:
            for k, c in enumerate(chans):
                if c.lower().endswith("position"):
                    root[:, "XYZ".index(c[0].upper())] = block[:, k]
        if rot_axes:
            if len(rot_axes) != 3:
                raise ValueError(f"{path}: joint {names[j]!r} needs 3 rotation channels, has {rot_axes!r}")
            angles = np.radians(np.stack([block[:, k] for k, c in enumerate(chans)
                                          if c.lower().endswith("rotation")], axis=1))
            rot[:, j] = quat_continuous(matrix_to_quat(euler_to_matrix(angles, rot_axes)))
    skeleton = Skeleton(tuple(names), np.array(parents), np.asarray(offsets) * scale)
    return Motion(skeleton, rot, root * scale, fps=1.0 / frame_time)


def _num(v: float, decimals: int) -> str:
    text = f"{v:.{decimals}f}"
    return "0." + "0" * decimals if text.lstrip("-").strip("0.") == "" else text


def write_bvh(motion: Motion, path: str | Path, order: str = "ZXY", decimals: int = 6) -> Path:
    """Write ``motion`` as BVH in its own axes and units (see :mod:`mocap.motion` to change them).

    The root has position and rotation channels, every other joint rotations only, in ``order``.
    Leaf joints named ``*_end`` are written as End Sites; other leaves get a zero End Site."""
    order = order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"BVH rotation order must be a permutation of XYZ, got {order!r}")
    sk = motion.skeleton
    J = len(sk.joint_names)
    children: list[list[int]] = [[] for _ in range(J)]
    for j in range(1, J):
        children[sk.parents[j]].append(j)
    end_site = [not children[j] and j > 0 and sk.joint_names[j].endswith("_end") for j in range(J)]
    rot = [f"{a}rotation" for a in order]
    lines = ["HIERARCHY"]
    channel_joints: list[int] = []

    def offset(j: int) -> str:
        return "OFFSET " + " ".join(_num(v, decimals) for v in sk.offsets[j])

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        if end_site[j]:
            lines.extend([f"{pad}End Site", f"{pad}{{", f"{pad}\t{offset(j)}", f"{pad}}}"])
            return
        kind = "ROOT" if j == 0 else "JOINT"
        lines.extend([f"{pad}{kind} {sk.joint_names[j]}", f"{pad}{{", f"{pad}\t{offset(j)}"])
        chans = (["Xposition", "Yposition", "Zposition"] if j == 0 else []) + rot
        lines.append(f"{pad}\tCHANNELS {len(chans)} " + " ".join(chans))
        channel_joints.append(j)
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET " + " ".join([_num(0, decimals)] * 3),
                          f"{pad}\t}}"])
        lines.append(f"{pad}}}")

    emit(0, 0)
    euler = np.degrees(matrix_to_euler(quat_to_matrix(motion.rotations[:, channel_joints]), order))
    values = np.concatenate([motion.root_positions, euler.reshape(motion.n_frames, -1)], axis=1)
    lines += ["MOTION", f"Frames: {motion.n_frames}", f"Frame Time: {1.0 / motion.fps:.7f}"]
    lines += [" ".join(_num(v, decimals) for v in row) for row in values]
    return atomic_write_text(Path(path), "\n".join(lines) + "\n")
