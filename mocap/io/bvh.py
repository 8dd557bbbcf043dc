"""BVH motion files. End sites become joints named ``<parent>_end`` with no channels (and back: a leaf joint
named so is written as its parent's End Site; a leaf named otherwise as a joint, with an End Site of its own
unless a joint already holds the name the reader would give that End Site).

Rotations are read in the order the CHANNELS line lists them (``Zrotation Xrotation Yrotation``
→ ``Rz @ Rx @ Ry``). Positions stay in the file's units and axes; :func:`read_bvh` can scale
them. The root's world position is its position channels (its OFFSET when it has none); another joint's position
channels (Blender's and Unreal's exporters write them) are its offset, read from the first frame.

The reader accepts what Blender's importer accepts (CRLF or CR line endings, tabs, a byte-order
mark, more data rows than ``Frames:`` announces: the extras are ignored with a warning) and refuses
anything else with a ``ValueError`` naming the file and the line.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from mocap.geometry.rotations import euler_to_matrix, matrix_to_euler, matrix_to_quat, quat_continuous, quat_to_matrix
from mocap.io.atomic import atomic_write_text
from mocap.types import Motion, Skeleton

log = logging.getLogger(__name__)
_CHANNELS = {f"{a}{kind}" for a in "xyz" for kind in ("position", "rotation")}


class _Tokens:
    """Whitespace-separated tokens of the hierarchy, each with its 1-based line number."""

    def __init__(self, path: Path, lines: list[str]):
        self.path = path
        self.items = [(tok, n + 1) for n, line in enumerate(lines) for tok in line.split()]
        self.i = 0

    def fail(self, msg: str, line: int | None = None):
        if line is None:
            line = self.items[min(self.i, len(self.items) - 1)][1] if self.items else 1
        raise ValueError(f"{self.path}: line {line}: not a valid BVH file: {msg}")

    def peek(self) -> str | None:
        return self.items[self.i][0] if self.i < len(self.items) else None

    def take(self, what: str) -> tuple[str, int]:
        if self.i >= len(self.items):
            last = self.items[-1] if self.items else ("", 1)
            self.fail(f"file ends after {last[0]!r} where {what} was expected (truncated file?)", last[1])
        self.i += 1
        return self.items[self.i - 1]

    def number(self, what: str, kind=float):
        tok, line = self.take(what)
        try:
            value = kind(tok)
        except ValueError:
            self.fail(f"{what} must be {'an integer' if kind is int else 'a number'}, got {tok!r}", line)
        if not math.isfinite(value):
            self.fail(f"{what} must be finite, got {tok!r}", line)
        return value


def _decode(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such BVH file") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read BVH: {e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if "\0" in text:
        raise ValueError(f"{path}: not a BVH file (binary data)")
    return text.splitlines()


def _header_end(lines: list[str]) -> int:
    """Number of lines up to and including ``Frame Time:`` (all of them when it is not found)."""
    motion = next((k for k, ln in enumerate(lines) if ln.split()[:1] == ["MOTION"]), None)
    if motion is None:
        return len(lines)
    for k in range(motion + 1, min(motion + 4, len(lines))):
        if lines[k].lstrip().startswith("Frame") and "Time" in lines[k]:
            return k + 1
    return min(motion + 3, len(lines))


def _hierarchy(tk: _Tokens):
    """Parse HIERARCHY … up to MOTION → names, parents, offsets, channels (index of MOTION token)."""
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    stack: list[int] = []
    opened: list[int] = []  # line of each open '{'
    pending: int | None = None
    tok, line = tk.take("HIERARCHY")
    if tok != "HIERARCHY":
        tk.fail(f"expected HIERARCHY, got {tok!r}", line)
    while tk.peek() != "MOTION":
        tok, line = tk.take("a joint, '}' or MOTION")
        if tok in ("ROOT", "JOINT"):
            name, _ = tk.take(f"a joint name after {tok}")
            if tok == "ROOT" and (stack or names):
                tk.fail("only one ROOT is supported, and it must come first", line)
            if tok == "JOINT" and not stack:
                tk.fail(f"JOINT {name!r} outside any joint's braces", line)
            if name in names:
                tk.fail(f"joint name {name!r} is used twice", line)
            parent = stack[-1] if stack else -1
        elif tok == "End":
            site, _ = tk.take("'Site' after 'End'")
            if site != "Site":
                tk.fail(f"expected 'End Site', got 'End {site}'", line)
            if not stack:
                tk.fail("End Site outside a joint", line)
            name, parent = f"{names[stack[-1]]}_end", stack[-1]
            k = 2
            while name in names:  # a second End Site in one joint: not two joints of one name
                name, k = f"{names[stack[-1]]}_end{k}", k + 1
        elif tok == "{":
            if pending is None:
                tk.fail("unexpected '{'", line)
            stack.append(pending)
            opened.append(line)
            pending = None
            continue
        elif tok == "}":
            if not stack or pending is not None:
                tk.fail("unbalanced '}'", line)
            stack.pop()
            opened.pop()
            continue
        elif tok in ("OFFSET", "CHANNELS"):
            if not stack or pending is not None:
                tk.fail(f"{tok} outside a joint's braces", line)
            j = stack[-1]
            if tok == "OFFSET":
                offsets[j] = [tk.number(f"OFFSET value of {names[j]!r}") for _ in range(3)]
            else:
                n = tk.number(f"CHANNELS count of {names[j]!r}", int)
                if not 0 <= n <= 6:
                    tk.fail(f"joint {names[j]!r}: CHANNELS count must be 0 to 6, got {n}", line)
                chans = [tk.take(f"{n} channel names for {names[j]!r}")[0] for _ in range(n)]
                bad = [c for c in chans if c.lower() not in _CHANNELS]
                if bad:
                    tk.fail(f"joint {names[j]!r}: unknown channel {bad[0]!r} (expected X/Y/Z position/rotation)",
                            line)
                channels[j] = chans
            continue
        else:
            tk.fail(f"unexpected {tok!r}", line)
        if pending is not None:
            tk.fail(f"{tok} before the '{{' of {names[pending]!r}", line)
        names.append(name)
        parents.append(parent)
        offsets.append([0.0, 0.0, 0.0])
        channels.append([])
        pending = len(names) - 1
    if pending is not None or stack:
        j = pending if pending is not None else stack[-1]
        where = f"opened on line {opened[-1]}" if pending is None else "never opened"
        tk.fail(f"MOTION inside the braces of {names[j]!r} ({where}): the hierarchy is truncated")
    if not names:
        tk.fail("no ROOT joint before MOTION")
    return names, parents, offsets, channels


def _motion_header(tk: _Tokens) -> tuple[int, float, int]:
    """MOTION / Frames: N / Frame Time: dt → (N, dt, line of Frame Time)."""
    tk.take("MOTION")
    tok, line = tk.take("'Frames:'")
    if tok == "Frames:":
        n = tk.number("Frames", int)
    elif tok.startswith("Frames:"):
        tk.i -= 1
        tk.items[tk.i] = (tok[7:], line)
        n = tk.number("Frames", int)
    else:
        tk.fail(f"expected 'Frames:' after MOTION, got {tok!r}", line)
    if n <= 0:
        tk.fail(f"Frames: {n}: the file holds no motion", line)
    tok, line = tk.take("'Frame Time:'")
    tok2, _ = tk.take("'Frame Time:'")
    if tok != "Frame" or not tok2.startswith("Time:"):
        tk.fail(f"expected 'Frame Time:', got {tok!r}", line)
    if tok2 != "Time:":
        tk.i -= 1
        tk.items[tk.i] = (tok2[5:], line)
    dt = tk.number("Frame Time", float)
    if dt <= 0:
        tk.fail(f"Frame Time must be positive (seconds per frame), got {dt:g}", line)
    return n, dt, line


def _values(path: Path, lines: list[str], first: int, n_frames: int, n_ch: int) -> np.ndarray:
    """Data rows from line index ``first`` on → (n_frames, n_ch); line numbers in errors are 1-based."""
    rows = [(k + 1, ln.split()) for k, ln in enumerate(lines[first:], start=first) if ln.strip()]
    if len(rows) < n_frames:
        raise ValueError(f"{path}: Frames: says {n_frames} but the file has {len(rows)} data rows "
                         f"(truncated file?)")
    if len(rows) > n_frames:
        log.warning("%s: %d data rows after the %d that Frames: announces (from line %d); ignored",
                    path, len(rows) - n_frames, n_frames, rows[n_frames][0])
        rows = rows[:n_frames]
    for line, row in rows:
        if len(row) != n_ch:
            raise ValueError(f"{path}: line {line}: expected {n_ch} values (one per channel), got {len(row)}")
    try:
        values = np.array([row for _, row in rows], dtype=float)
    except ValueError:
        for line, row in rows:
            for v in row:
                try:
                    float(v)
                except ValueError:
                    raise ValueError(f"{path}: line {line}: value {v!r} is not a number") from None
        raise
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{path}: line {rows[r][0]}: value {rows[r][1][c]!r} is not a finite number")
    return values.reshape(n_frames, n_ch)


def read_bvh(path: str | Path, scale: float = 1.0) -> Motion:
    """Read a BVH file into a :class:`Motion` (positions multiplied by ``scale``)."""
    path = Path(path)
    lines = _decode(path)
    tk = _Tokens(path, lines[: _header_end(lines)])
    if not tk.items:
        raise ValueError(f"{path}: empty file, not a BVH file")
    names, parents, offsets, channels = _hierarchy(tk)
    n_frames, frame_time, header_line = _motion_header(tk)
    n_ch = sum(len(c) for c in channels)
    if n_ch == 0:
        raise ValueError(f"{path}: no joint has CHANNELS: the file holds no motion")
    # the data rows start on the line after Frame Time (a value left on that line is not allowed)
    if tk.i < len(tk.items) and tk.items[tk.i][1] == header_line:
        tk.fail(f"unexpected {tk.items[tk.i][0]!r} after the Frame Time value", header_line)
    values = _values(path, lines, header_line, n_frames, n_ch)

    J = len(names)
    rot = np.zeros((n_frames, J, 4))
    rot[..., 0] = 1.0
    root = np.tile(np.asarray(offsets[0], float), (n_frames, 1))
    col = 0
    for j, chans in enumerate(channels):
        pos_axes = [c[0].upper() for c in chans if c.lower().endswith("position")]
        rot_axes = "".join(c[0].upper() for c in chans if c.lower().endswith("rotation"))
        block = values[:, col : col + len(chans)]
        col += len(chans)
        if pos_axes and j != 0:  # Blender's and Unreal's exporters write them on joints: a bone length (kept fixed)
            _joint_positions(path, names[j], chans, block, offsets[j])
        elif pos_axes:
            for k, c in enumerate(chans):
                if c.lower().endswith("position"):
                    root[:, "XYZ".index(c[0].upper())] = block[:, k]
        if rot_axes:
            if len(rot_axes) != 3 or len(set(rot_axes)) != 3:
                raise ValueError(f"{path}: joint {names[j]!r} needs 3 different rotation channels, has {rot_axes!r}")
            angles = np.radians(np.stack([block[:, k] for k, c in enumerate(chans)
                                          if c.lower().endswith("rotation")], axis=1))
            rot[:, j] = quat_continuous(matrix_to_quat(euler_to_matrix(angles, rot_axes)))
    skeleton = Skeleton(tuple(names), np.array(parents), np.asarray(offsets) * scale)
    return Motion(skeleton, rot, root * scale, fps=1.0 / frame_time)


def _joint_positions(path: Path, name: str, chans: list[str], block: np.ndarray, offset: list) -> None:
    """A joint's position channels (not the root's): its offset from its parent in every frame, which Blender's
    and Unreal's BVH exporters write for every joint. The skeleton's bones keep one length: the first frame's
    values become the offset (``offset``, changed in place), with a warning when they move over the take."""
    for k, c in enumerate(chans):
        if c.lower().endswith("position"):
            axis = "XYZ".index(c[0].upper())
            moved = float(np.ptp(block[:, k])) if len(block) else 0.0
            if len(block):
                offset[axis] = float(block[0, k])
            if moved > 1e-3 * max(1.0, float(np.max(np.abs(block[:, k])))):
                log.warning("%s: joint %r moves along %s by %.4g over the take (a stretching bone): held at its "
                            "first frame's offset", path, name, c, moved)


def _num(v: float, decimals: int) -> str:
    text = f"{v:.{decimals}f}"
    return "0." + "0" * decimals if text.lstrip("-").strip("0.") == "" else text


def _rows(values: np.ndarray, decimals: int) -> list[str]:
    """The motion lines: each value as :func:`_num` writes it, a row formatted at once (a value that rounds
    to a negative zero is written as a zero, as :func:`_num` does)."""
    if decimals <= 0:
        return [" ".join(_num(v, decimals) for v in row) for row in values]
    fmt = " ".join([f"%.{decimals}f"] * values.shape[1])
    negative_zero, zero = "-0." + "0" * decimals, "0." + "0" * decimals
    out = []
    for row in values.tolist():
        text = fmt % tuple(row)
        # each field has exactly `decimals` digits after its point, so this matches whole fields only
        out.append(text.replace(negative_zero, zero) if negative_zero in text else text)
    return out


def bvh_names(names: tuple[str, ...]) -> list[str]:
    """Joint names as a BVH file can hold them: one word each (a name is the rest of its ``JOINT`` line's first
    token; 3ds Max's ``Bip01 L Thigh`` became a file no reader takes), whitespace as ``_``; a clash refused."""
    out = ["_".join(n.split()) for n in names]
    changed = [n for n, o in zip(names, out, strict=True) if n != o]
    if changed:
        log.warning("BVH: %d joint names hold spaces, written with _ instead (e.g. %r → %r)", len(changed),
                    changed[0], "_".join(changed[0].split()))
        clash = sorted({o for o in out if out.count(o) > 1})
        if clash:
            raise ValueError(f"BVH: joint names {clash} would repeat once their spaces are written as _")
    return out


def write_bvh(motion: Motion, path: str | Path, order: str = "ZXY", decimals: int = 6,
              end_sites: dict[int, np.ndarray] | None = None) -> Path:
    """Write ``motion`` as BVH in its own axes and units (see :mod:`mocap.motion` to change them).

    The root has position and rotation channels, every other joint rotations only, in ``order``.
    A leaf joint named ``<parent>_end`` is written as its parent's End Site (as :func:`read_bvh` names them);
    other leaves as joints with the End Site ``end_sites`` gives them (leaf joint index → offset:
    fingertips), else a zero one, none when a joint is already named ``<leaf>_end``."""
    order = order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"BVH rotation order must be a permutation of XYZ, got {order!r}")
    sk = motion.skeleton
    J = len(sk.joint_names)
    names = bvh_names(sk.joint_names)
    children: list[list[int]] = [[] for _ in range(J)]
    for j in range(1, J):
        children[sk.parents[j]].append(j)
    # an End Site is read back as the joint "<parent>_end": only a leaf of that name is written as one (a leaf
    # "Tip_end" under "Hand" came back as "Hand_end"; two under one joint as two joints "Hand_end")
    end_site = [not children[j] and j > 0 and names[j] == f"{names[sk.parents[j]]}_end" for j in range(J)]
    taken = set(names)
    no_site = [j for j in range(J) if not children[j] and not end_site[j] and f"{names[j]}_end" in taken]
    if no_site:  # its End Site would come back as a second joint of that name: the file would be refused
        log.warning("BVH: leaf joint(s) %s written without an End Site: a joint is already named %r",
                    [names[j] for j in no_site], f"{names[no_site[0]]}_end")
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
        lines.extend([f"{pad}{kind} {names[j]}", f"{pad}{{", f"{pad}\t{offset(j)}"])
        chans = (["Xposition", "Yposition", "Zposition"] if j == 0 else []) + rot
        lines.append(f"{pad}\tCHANNELS {len(chans)} " + " ".join(chans))
        channel_joints.append(j)
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j] and j not in no_site:
            tip = (end_sites or {}).get(j)
            site = [_num(0, decimals)] * 3 if tip is None else [_num(v, decimals) for v in tip]
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET " + " ".join(site), f"{pad}\t}}"])
        lines.append(f"{pad}}}")

    emit(0, 0)
    euler = np.degrees(matrix_to_euler(quat_to_matrix(motion.rotations[:, channel_joints]), order))
    values = np.concatenate([motion.root_positions, euler.reshape(motion.n_frames, -1)], axis=1)
    lines += ["MOTION", f"Frames: {motion.n_frames}", f"Frame Time: {1.0 / motion.fps:.9f}"]
    lines += _rows(values, decimals)
    return atomic_write_text(Path(path), "\n".join(lines) + "\n")
