"""FBX written natively (numpy and :mod:`mocap.io.fbx_binary`, no Blender): an armature with its animation.

The scene, as Mixamo's files hold one: a root ``Null`` named "Armature" with one ``LimbNode`` model (and its
``NodeAttribute``) per joint, parented as the skeleton; each joint's ``Lcl Translation`` is its offset and its rest
rotation the identity (the T-pose of :class:`mocap.types.Motion`). One animation stack and layer; per joint an
``R`` curve node (and ``T`` on the root, and ``S`` there where the person is not: scaled to 0 over the frames
before the motion's first fitted frame and after its last) with three curves keyed on every frame: times in FBX
ticks (46,186,158,000 per second), frame 1 of the motion at time 0 (as the BVH and glTF files start), values in
degrees (Euler XYZ, the models' ``RotationOrder`` 0: R = Rz Ry Rx), each angle continuous over time (no ±180° jump
for a reader to interpolate across). Axes and units as the BVH export: the world turned to Y up (``up="y"``:
forward −Z) or kept Z up (forward Y), lengths in the unit asked, which ``UnitScaleFactor`` (centimetres per unit)
names. The bytes depend only on the motion and options, but for the
``CreationTimeStamp`` (the time of writing).
"""

from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path

import numpy as np

from mocap import __version__
from mocap.geometry.rotations import matrix_to_euler, quat_to_matrix
from mocap.io import blender
from mocap.io.atomic import atomic_write
from mocap.io.exporters import FBX_WRITERS, Options, register
from mocap.io.fbx_binary import CREATION_TIME, FILE_ID, Int64, Node, Raw, encode
from mocap.motion import Z_UP_TO_Y_UP, absent_frames, fill_gaps
from mocap.retarget import UNITS
from mocap.types import Motion

log = logging.getLogger(__name__)
VERSION = 7400
KTIME = 46186158000  # FBX ticks per second (FBX 7)
CREATOR = f"mocap {__version__} FBX writer"
# FBX TimeMode of the standard frame rates; any other rate is 14 (custom) with CustomFrameRate
TIME_MODES = ((120.0, 1), (100.0, 2), (60.0, 3), (50.0, 4), (48.0, 5), (30.0, 6), (30 / 1.001, 9), (25.0, 10),
              (24.0, 11), (24 / 1.001, 13), (96.0, 15), (72.0, 16), (60 / 1.001, 17), (120 / 1.001, 18))
# (axis, sign) of up, front and coordinate axes: Y up with −Z forward, or Z up with Y forward (Blender's world)
AXES = {"y": ((1, 1), (2, 1), (0, 1)), "z": ((2, 1), (1, -1), (0, 1))}
KEY_FLAGS = 0x4 | 0x100  # linear interpolation, auto tangents
STEP_FLAGS = 0x2  # constant interpolation: the root's scale, 0 where the person is not, 1 where they are
KEY_DATA = np.array([0.0, 0.0, 9.419963346924634e-30, 0.0], np.float32)  # slopes, default weights (0x0F3F halves)
TAKE = "Take 001"


def _p(props: Node, name: str, ptype: str, label: str, flags: str, *values) -> None:
    """One ``P`` record of a Properties70 block."""
    props.add("P", name, ptype, label, flags, *values)


def _check(motion: Motion, units: str, up: str) -> None:
    if units not in UNITS:
        raise ValueError(f"fbx: units must be one of {', '.join(UNITS)}, got {units!r}")
    if up not in AXES:
        raise ValueError(f"fbx: up must be 'y' or 'z', got {up!r}")
    fps = float(motion.fps)
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fbx: the frame rate must be positive and finite, got {motion.fps}")
    if motion.n_frames == 0:
        raise ValueError("fbx: the motion has no frames")
    names = motion.skeleton.joint_names
    if len(set(names)) != len(names) or not all(names) or any("\x00" in n for n in names):
        raise ValueError(f"fbx: joint names must be unique, not empty and without NUL characters, got {list(names)}")
    for what, a in (("rotations", motion.rotations), ("root positions", motion.root_positions[:, None]),
                    ("offsets", motion.skeleton.offsets[None])):
        bad = ~np.isfinite(a).all(axis=-1)
        if bad.any():
            f, j = np.argwhere(bad)[0]
            where = f"joint {names[j]!r}" + ("" if what == "offsets" else f" at frame {f + 1}")
            raise ValueError(f"fbx: {bad.sum()} non-finite {what} ({where} first); fill the gaps first "
                             "(the export stage interpolates them)")
    norms = np.linalg.norm(motion.rotations, axis=-1)
    if (norms < 1e-9).any():
        f, j = np.argwhere(norms < 1e-9)[0]
        raise ValueError(f"fbx: a zero quaternion is no rotation (joint {names[j]!r} at frame {f + 1})")


def continuous_euler_deg(R: np.ndarray) -> np.ndarray:
    """(F, J, 3, 3) rotations → (F, J, 3) XYZ Euler angles in degrees (R = Rz Ry Rx), continuous over the
    frames: of the two angle triples of each rotation, (x, y, z) and (x + 180, 180 − y, z + 180), the one
    nearest the previous frame's, each angle moved by whole turns to the previous one. At gimbal lock
    (y = ±90°, where the rotation fixes only z ∓ x and :func:`matrix_to_euler` sets x = 0) x keeps the
    previous frame's value (at the first frame: the next unlocked frame's) and z takes the rest."""
    zyx = matrix_to_euler(R, "ZYX")
    a = zyx[..., ::-1].copy()  # x, y, z with y in [−90°, 90°]
    lock = np.abs(np.cos(a[..., 1])) < 1e-9  # matrix_to_euler's gimbal lock: x = 0, z carries z ∓ x
    if lock[0].any():  # the first frame: x of the joint's first unlocked frame (0 if none)
        first = np.argmax(~lock, axis=0)
        _hold_x(a[0], lock[0], a[first, np.arange(a.shape[1]), 0])
    b = a + np.array([np.pi, 0.0, np.pi])
    b[..., 1] = np.pi - a[..., 1]
    turn = 2 * np.pi
    out = np.empty_like(a)
    out[0] = a[0]
    for f in range(1, len(a)):
        prev = out[f - 1]
        if lock[f].any():
            _hold_x(a[f], lock[f], prev[:, 0])
        ca = a[f] + turn * np.round((prev - a[f]) / turn)
        cb = b[f] + turn * np.round((prev - b[f]) / turn)
        nearer = np.abs(cb - prev).sum(-1) < np.abs(ca - prev).sum(-1)
        out[f] = np.where((nearer & ~lock[f])[:, None], cb, ca)
    return np.degrees(out)


def _hold_x(xyz: np.ndarray, lock: np.ndarray, x: np.ndarray) -> None:
    """Joints ``lock`` of one frame's (J, 3) angles at gimbal lock (x = 0): x set to ``x`` (J,), z moved so
    that the rotation stays (Rz(z) Ry(±90°) Rx(x) depends on z ∓ x only)."""
    xyz[lock, 2] += np.sign(xyz[lock, 1]) * x[lock]
    xyz[lock, 0] = x[lock]


def _time_mode(fps: float) -> tuple[int, float]:
    """The FBX TimeMode of ``fps`` and its exact rate: the nearest standard rate within 1e-4 of it (the NTSC
    rates, 30000/1001 …, are 1e-3 from the integer ones, so a looser match would name 29.97 fps 30), else
    14 (custom) at ``fps``."""
    rate, mode = min(TIME_MODES, key=lambda rm: abs(fps - rm[0]))
    return (mode, rate) if abs(fps - rate) < 1e-4 * rate else (14, fps)


class _Ids:
    """Object ids: consecutive from a fixed start (the same for the same motion)."""

    def __init__(self):
        self.next = 1_000_000

    def __call__(self) -> Int64:
        self.next += 1
        return Int64(self.next)


def _header(now: datetime.datetime) -> list[Node]:
    ext = Node("FBXHeaderExtension")
    ext.add("FBXHeaderVersion", 1003)
    ext.add("FBXVersion", VERSION)
    ext.add("EncryptionType", 0)
    stamp = ext.add("CreationTimeStamp")
    for key, value in (("Version", 1000), ("Year", now.year), ("Month", now.month), ("Day", now.day),
                       ("Hour", now.hour), ("Minute", now.minute), ("Second", now.second),
                       ("Millisecond", now.microsecond // 1000)):
        stamp.add(key, value)
    ext.add("Creator", CREATOR)
    info = ext.add("SceneInfo", "GlobalInfo\x00\x01SceneInfo", "UserData")
    info.add("Type", "UserData")
    info.add("Version", 100)
    meta = info.add("MetaData")
    meta.add("Version", 100)
    for key in ("Title", "Subject", "Author", "Keywords", "Revision", "Comment"):
        meta.add(key, "")
    props = info.add("Properties70")
    for key in ("Original", "LastSaved"):
        _p(props, key, "Compound", "", "")
        _p(props, f"{key}|ApplicationVendor", "KString", "", "", "mocap")
        _p(props, f"{key}|ApplicationName", "KString", "", "", "mocap")
        _p(props, f"{key}|ApplicationVersion", "KString", "", "", __version__)
    return [ext, Node("FileId", Raw(FILE_ID)), Node("CreationTime", CREATION_TIME), Node("Creator", CREATOR)]


def _global_settings(up: str, unit_cm: float, mode: int, rate: float, stop: int) -> Node:
    node = Node("GlobalSettings")
    node.add("Version", 1000)
    props = node.add("Properties70")
    (ua, us), (fa, fs), (ca, cs) = AXES[up]
    for key, value in (("UpAxis", ua), ("UpAxisSign", us), ("FrontAxis", fa), ("FrontAxisSign", fs),
                       ("CoordAxis", ca), ("CoordAxisSign", cs), ("OriginalUpAxis", ua), ("OriginalUpAxisSign", us)):
        _p(props, key, "int", "Integer", "", value)
    _p(props, "UnitScaleFactor", "double", "Number", "", unit_cm)
    _p(props, "OriginalUnitScaleFactor", "double", "Number", "", unit_cm)
    _p(props, "AmbientColor", "ColorRGB", "Color", "", 0.0, 0.0, 0.0)
    _p(props, "DefaultCamera", "KString", "", "", "Producer Perspective")
    _p(props, "TimeMode", "enum", "", "", mode)
    _p(props, "TimeSpanStart", "KTime", "Time", "", Int64(0))
    _p(props, "TimeSpanStop", "KTime", "Time", "", Int64(stop))
    _p(props, "CustomFrameRate", "double", "Number", "", float(rate))
    return node


def _model(ids: _Ids, name: str, kind: str, translation, size: float) -> tuple[Node, Node]:
    """A Model (Null or LimbNode) at rest (``translation``, no rotation) and its NodeAttribute."""
    attr = Node("NodeAttribute", ids(), f"{name}\x00\x01NodeAttribute", kind)
    if kind == "LimbNode":
        _p(attr.add("Properties70"), "Size", "double", "Number", "", size)
        attr.add("TypeFlags", "Skeleton")
    else:
        attr.add("TypeFlags", "Null")
    model = Node("Model", ids(), f"{name}\x00\x01Model", kind)
    model.add("Version", 232)
    props = model.add("Properties70")
    _p(props, "RotationOrder", "enum", "", "", 0)  # XYZ
    _p(props, "RotationActive", "bool", "", "", 1)
    _p(props, "InheritType", "enum", "", "", 1)
    _p(props, "DefaultAttributeIndex", "int", "Integer", "", 0)
    _p(props, "Lcl Translation", "Lcl Translation", "", "A", *(float(v) for v in translation))
    _p(props, "Lcl Rotation", "Lcl Rotation", "", "A", 0.0, 0.0, 0.0)
    _p(props, "Lcl Scaling", "Lcl Scaling", "", "A", 1.0, 1.0, 1.0)
    model.add("Shading", True)
    model.add("Culling", "CullingOff")
    return model, attr


def _curves(ids: _Ids, prop: str, values: np.ndarray, times: np.ndarray, layer: Int64, model: Int64,
            objects: Node, links: list, flags: int = KEY_FLAGS) -> None:
    """A curve node ``prop`` ("R", "T" or "S") of ``model`` with one curve per column of ``values`` (F, 3)."""
    target = {"R": "Lcl Rotation", "T": "Lcl Translation", "S": "Lcl Scaling"}[prop]
    node_id = ids()
    cnode = objects.add("AnimationCurveNode", node_id, f"{prop}\x00\x01AnimCurveNode", "")
    props = cnode.add("Properties70")
    links += [("OO", node_id, layer), ("OP", node_id, model, target)]
    refcount = np.array([len(times)], np.int32)
    for axis, column in zip("XYZ", values.T, strict=True):
        column = column.astype(np.float32)
        _p(props, f"d|{axis}", "Number", "", "A", float(column[0]))
        curve_id = ids()
        curve = objects.add("AnimationCurve", curve_id, "\x00\x01AnimCurve", "")
        curve.add("Default", float(column[0]))
        curve.add("KeyVer", 4008)
        curve.add("KeyTime", times)
        curve.add("KeyValueFloat", column)
        curve.add("KeyAttrFlags", np.array([flags], np.int32))
        curve.add("KeyAttrDataFloat", KEY_DATA)
        curve.add("KeyAttrRefCount", refcount)
        links.append(("OP", curve_id, node_id, f"d|{axis}"))


def fbx_nodes(motion: Motion, units: str = "m", up: str = "y", now: datetime.datetime | None = None,
              hidden: np.ndarray | None = None) -> list[Node]:
    """The top-level nodes of the FBX file of ``motion`` (checked: finite, named joints, a frame rate);
    ``hidden`` (F,) bool: frames where the person is not, the root joint scaled to 0 there (an ``S`` curve node,
    constant interpolation; none when no frame is hidden)."""
    _check(motion, units, up)
    scale = UNITS[units]
    M = Z_UP_TO_Y_UP if up == "y" else np.eye(3)  # the world seen in the file's axes (as motion.change_axes)
    sk, F, fps = motion.skeleton, motion.n_frames, float(motion.fps)
    R = quat_to_matrix(motion.rotations / np.linalg.norm(motion.rotations, axis=-1, keepdims=True))
    # float32, as the file keeps them: numpy's vectorised arctan2 / arcsin may differ in the last bit of a
    # float64 from run to run (their SIMD and scalar paths split an array by its memory alignment)
    angles = continuous_euler_deg(M @ R @ M.T if up == "y" else R).astype(np.float32)
    offsets, root = sk.offsets @ M.T * scale, motion.root_positions @ M.T * scale
    mode, rate = _time_mode(fps)  # keys on the frames of the rate the file declares
    times = np.round(np.arange(F) * (KTIME / rate)).astype(np.int64)
    stop = int(times[-1])
    ids = _Ids()
    nodes = _header(now or datetime.datetime.now(datetime.UTC))
    nodes.append(_global_settings(up, 100.0 / scale, mode, rate, stop))
    docs = Node("Documents")
    docs.add("Count", 1)
    doc = docs.add("Document", ids(), "Scene", "Scene")
    dprops = doc.add("Properties70")
    _p(dprops, "SourceObject", "object", "", "")
    _p(dprops, "ActiveAnimStackName", "KString", "", "", TAKE)
    doc.add("RootNode", Int64(0))
    nodes += [docs, Node("References")]

    objects, links = Node("Objects"), []
    arm, arm_attr = _model(ids, "Armature", "Null", (0.0, 0.0, 0.0), 0.0)
    objects.children += [arm_attr, arm]
    links += [("OO", arm.props[0], Int64(0)), ("OO", arm_attr.props[0], arm.props[0])]
    lengths = np.linalg.norm(offsets, axis=-1)
    size = float(np.median(lengths[1:])) if len(lengths) > 1 else 1.0
    model_ids = []
    for j, name in enumerate(sk.joint_names):
        model, attr = _model(ids, name, "LimbNode", offsets[j], size)
        objects.children += [attr, model]
        parent = arm.props[0] if sk.parents[j] < 0 else model_ids[sk.parents[j]]
        links += [("OO", model.props[0], parent), ("OO", attr.props[0], model.props[0])]
        model_ids.append(model.props[0])
    stack_id, layer_id = ids(), ids()
    stack = objects.add("AnimationStack", stack_id, f"{TAKE}\x00\x01AnimStack", "")
    sprops = stack.add("Properties70")
    for key in ("LocalStart", "ReferenceStart"):
        _p(sprops, key, "KTime", "Time", "", Int64(0))
    for key in ("LocalStop", "ReferenceStop"):
        _p(sprops, key, "KTime", "Time", "", Int64(stop))
    objects.add("AnimationLayer", layer_id, "BaseLayer\x00\x01AnimLayer", "")
    links.append(("OO", layer_id, stack_id))
    _curves(ids, "T", root, times, layer_id, model_ids[0], objects, links)
    if hidden is not None and np.any(hidden):
        if np.shape(hidden) != (F,):
            raise ValueError(f"fbx: hidden should have shape ({F},), one per frame, got {np.shape(hidden)}")
        size = np.repeat(np.where(hidden, 0.0, 1.0)[:, None], 3, axis=1)
        _curves(ids, "S", size, times, layer_id, model_ids[0], objects, links, STEP_FLAGS)
    for j in range(len(sk.joint_names)):
        _curves(ids, "R", angles[:, j], times, layer_id, model_ids[j], objects, links)

    counts: dict[str, int] = {}
    for node in objects.children:
        counts[node.name] = counts.get(node.name, 0) + 1
    defs = Node("Definitions")
    defs.add("Version", 100)
    defs.add("Count", 1 + sum(counts.values()))
    defs.add("ObjectType", "GlobalSettings").add("Count", 1)
    for kind, n in counts.items():
        defs.add("ObjectType", kind).add("Count", n)
    connections = Node("Connections")
    for link in links:
        connections.add("C", *link)
    takes = Node("Takes")
    takes.add("Current", TAKE)
    take = takes.add("Take", TAKE)
    take.add("FileName", TAKE.replace(" ", "_") + ".tak")
    take.add("LocalTime", Int64(0), Int64(stop))
    take.add("ReferenceTime", Int64(0), Int64(stop))
    return nodes + [defs, objects, connections, takes]


def write_fbx(motion: Motion, path: Path, units: str = "m", up: str = "y") -> Path:
    """``motion`` as a binary FBX file at ``path`` (written atomically); see the module's description. NaN
    frames between fitted ones are interpolated; those before the first fitted frame and after the last (the
    person not there) are hidden: the root scaled to 0 (:func:`mocap.motion.absent_frames`)."""
    t0 = time.perf_counter()
    hidden = absent_frames(motion)
    if hidden.any() and not hidden.all():
        motion = fill_gaps(motion)[0]
    data = encode(fbx_nodes(motion, units, up, hidden=hidden if not hidden.all() else None), VERSION)
    atomic_write(Path(path), lambda part: part.write_bytes(data))
    log.debug("%s: %d frames, %d joints, %.1f kB in %.3f s", Path(path).name, motion.n_frames,
              len(motion.skeleton.joint_names), len(data) / 1024, time.perf_counter() - t0)
    return Path(path)


@register("fbx", ".fbx", "armature with its animation on every frame, no leaf bones (written natively; "
          "export.fbx_writer=blender: Blender's FBX exporter)", blender.write_many,
          batched=lambda opt: opt.fbx_writer == "blender", takes_absent=True)
def fbx(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    if opt.fbx_writer not in FBX_WRITERS:
        raise ValueError(f"fbx: fbx_writer must be one of {', '.join(FBX_WRITERS)}, got {opt.fbx_writer!r}")
    if opt.fbx_writer == "blender":
        return blender.blender_export(motion, path, opt.up, opt.units)
    return write_fbx(motion, path, opt.units, opt.up)
