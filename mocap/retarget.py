"""Retargeting a motion onto another skeleton (game rigs given as data in ``configs/rigs``), and
foot locking.

Both skeletons have a T-pose rest in the project's world frame (metres, Z up, facing −Y) with every
rest rotation the identity. Each mapped target joint t follows a source joint s: its world rotation is
G_t = G_s · A_t, where A_t turns the target's rest bone directions onto the source's (Kabsch over the
directions to mapped children; the identity when both rests agree), so bones point the same way.
Unmapped target joints keep their parent's orientation. The root moves by the source root's path,
scaled by the ratio of hip heights (leg length).

Fingers: the preset rigs map their finger bones to body52's finger joints. A motion without fingers
(body22) leaves them at the hand's orientation, and a rig without finger bones gets the body only; each
case says so in one warning.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

import numpy as np

from mocap.config_files import check_keys, load_preset, preset_path
from mocap.filters import runs
from mocap.fit.bones import rest_positions
from mocap.geometry.align import kabsch
from mocap.geometry.rotations import rotation_between
from mocap.geometry.upright import floor_height
from mocap.motion import motion_from_world
from mocap.skeletons import check_joint_tables, tree_from_table
from mocap.types import Motion, Skeleton

log = logging.getLogger(__name__)
UNITS = {"m": 1.0, "cm": 100.0, "cmu": 1 / 0.056444}
FINGER = re.compile(r"^(Left|Right)Hand(Thumb|Index|Middle|Ring|Pinky)\d$")  # body52's finger joints


def is_finger(joint: str) -> bool:
    return FINGER.match(joint) is not None


@dataclass(frozen=True)
class TargetRig:
    name: str
    skeleton: Skeleton
    source: dict[str, str]  # target joint → source joint
    units: str = "m"  # preferred export unit: m | cm | cmu
    up: str = "z"  # preferred export up axis: z | y

    @property
    def unit_scale(self) -> float:
        return UNITS[self.units]


_RIGS: dict[tuple, TargetRig] = {}  # loaded rigs by file, file content and source joints (a run loads one ~13 times)


def load_target_rig(name: str, source_joints: tuple[str, ...] | list[str] | None = None) -> TargetRig:
    """A target rig preset (``mixamo``, ``ue5``, ``unity``, ``cmu``) or a TOML file. With
    ``source_joints`` (the joints of the skeleton it will play, e.g. the fitted motion's), every
    ``source`` must be one of them, finger joints excepted (:func:`retarget` skips those the motion lacks).
    Loaded once per file content; each call gets its own ``source`` table (the skeleton's arrays are read-only)."""
    path = preset_path("rigs", name)
    key = (str(path.resolve()), path.read_bytes(), None if source_joints is None else tuple(source_joints))
    if key not in _RIGS:
        _RIGS[key] = _load_target_rig(name, source_joints)
    rig = _RIGS[key]
    return replace(rig, source=dict(rig.source))


def _load_target_rig(name: str, source_joints: tuple[str, ...] | list[str] | None) -> TargetRig:
    table, path = load_preset("rigs", name)
    check_keys(table, {"name", "units", "up", "joints"}, str(path))
    joints = table.get("joints", {})
    check_joint_tables(joints, str(path), {"parent", "offset", "source"})
    order, parents, offsets = tree_from_table(joints, str(path), allow_zero_bones=True)
    for j in order:
        src = joints[j].get("source")
        if src is not None and (not isinstance(src, str) or (source_joints is not None and src not in source_joints
                                                              and not is_finger(src))):
            raise ValueError(f"{path}: joint {j!r}: source {src!r} is not a joint of the skeleton it plays "
                             f"(expected one of {list(source_joints or [])})")
    units, up = table.get("units", "m"), table.get("up", "z")
    if units not in UNITS or up not in ("y", "z"):
        raise ValueError(f"{path}: units must be one of {sorted(UNITS)} and up 'y' or 'z', got {units!r}, {up!r}")
    source = {j: joints[j]["source"] for j in order if "source" in joints[j]}
    from mocap.session import safe_name

    name = safe_name(table.get("name", path.stem), "rig name", path)  # it names motion/<name>.npz and exports
    return TargetRig(name, Skeleton(tuple(order), parents, offsets), source, units, up)


def _aim_vectors(sk: Skeleton, j: int, mapped: set[int]) -> list[int]:
    """The first mapped joint down each branch below j."""
    out = []
    for c in np.flatnonzero(sk.parents == j):
        out += [int(c)] if int(c) in mapped else _aim_vectors(sk, int(c), mapped)
    return out


def rest_alignment(source: Skeleton, target: Skeleton, source_of: dict[str, str]) -> dict[int, np.ndarray]:
    """A_t (3×3) for every mapped target joint: turns its rest bone directions onto the source's.
    The directions go to the first mapped joint down each branch (past joints that sit at the same
    place in either rest pose)."""
    tmap = {target.index(t): source.index(s) for t, s in source_of.items()}
    rt, rs = rest_positions(target), rest_positions(source)
    out = {}
    for t, s in tmap.items():
        pairs = []
        todo = _aim_vectors(target, t, set(tmap))
        while todo:
            a = todo.pop(0)
            u, v = rt[a] - rt[t], rs[tmap[a]] - rs[s]
            if min(np.linalg.norm(u), np.linalg.norm(v)) < 1e-6:
                todo += _aim_vectors(target, a, set(tmap))
                continue
            pairs.append((u / np.linalg.norm(u), v / np.linalg.norm(v)))
        if not pairs:
            out[t] = np.eye(3)
        elif len(pairs) == 1:
            out[t] = rotation_between(pairs[0][0], pairs[0][1])
        else:
            q, o = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
            out[t] = kabsch(q, o[None], np.ones((1, len(pairs))))[0]
    return out


def hip_height(sk: Skeleton) -> float:
    """Height of the root above the lowest joint at rest (a leg length)."""
    p = rest_positions(sk)
    return float(p[0, 2] - p[:, 2].min())


def retarget(motion: Motion, target: Skeleton, source_of: dict[str, str], scale_root: bool = True) -> Motion:
    """``motion`` played by ``target``; ``source_of`` maps target joint names to source joint names."""
    src = motion.skeleton
    absent = sorted({s for s in source_of.values() if s not in src.joint_names and is_finger(s)})
    if absent:
        log.info("retarget: the motion has no fingers (%d finger joints of the target's map missing, e.g. %s): "
                    "the target's finger bones keep the hand's orientation", len(absent), absent[0])
        source_of = {t: s for t, s in source_of.items() if s not in absent}
    elif any(is_finger(s) for s in src.joint_names) and not any(is_finger(s) for s in source_of.values()):
        log.warning("retarget: the target has no finger bones: the body is retargeted, the motion's fingers are "
                    "skipped")
    missing = [s for s in source_of.values() if s not in src.joint_names]
    if missing:
        raise ValueError(f"retarget: the source skeleton has no joints {missing}")
    unknown = [t for t in source_of if t not in target.joint_names]
    if unknown:
        raise ValueError(f"retarget: the target skeleton has no joints {unknown}")
    root_name = target.joint_names[0]
    if root_name not in source_of:
        raise ValueError(f"retarget: the target's root {root_name!r} must follow a source joint")
    A = rest_alignment(src, target, source_of)
    Gs, ps = motion.fk()
    F, J = motion.n_frames, len(target.joint_names)
    G = np.empty((F, J, 3, 3))
    for t in range(J):
        name = target.joint_names[t]
        if name in source_of:
            G[:, t] = Gs[:, src.index(source_of[name])] @ A[t]
        else:
            G[:, t] = G[:, target.parents[t]]
    scale = hip_height(target) / hip_height(src) if scale_root else 1.0
    root = ps[:, src.index(source_of[root_name])]
    return motion_from_world(target, G, scaled_path(root, ps, scale) if scale != 1.0 else root, motion.fps)


def scaled_path(root: np.ndarray, joints: np.ndarray, scale: float) -> np.ndarray:
    """The root's path (F, 3) for a body ``scale`` × the source's (joints (F, J, 3), Z up): its height above the
    floor (the source's lowest joint, 2nd percentile over the take) and its travel from its first position
    scaled, the floor and that position kept. Scaled about the world's origin, a floor above or below it made
    the target float or sink by (scale − 1) × its height, and two people of different sizes changed places."""
    floor = floor_height(joints) or 0.0
    seen = np.flatnonzero(np.isfinite(root).all(axis=-1))
    start = root[seen[0]] if seen.size else np.zeros(3)
    out = np.array(root, float, copy=True)
    out[:, :2] = start[:2] + (root[:, :2] - start[:2]) * scale
    out[:, 2] = floor + (root[:, 2] - floor) * scale
    return out


def retarget_to_rig(motion: Motion, rig: TargetRig, foot_lock_cfg: FootLock | None = None) -> Motion:
    """Retarget a body22 / body52 motion onto a preset rig, then lock planted feet (unless ``foot_lock_cfg`` is
    None)."""
    out = retarget(motion, rig.skeleton, rig.source)
    if foot_lock_cfg is not None:
        by_source = {s: t for t, s in rig.source.items()}
        legs = []
        for side in ("Left", "Right"):
            chain = [by_source.get(f"{side}{n}") for n in ("UpLeg", "Leg", "Foot", "ToeBase")]
            if None in chain[:3]:
                log.warning("rig %s: no %s leg mapped, its foot is not locked", rig.name, side.lower())
                continue
            legs.append(tuple(rig.skeleton.index(c) if c else -1 for c in chain))
        out, _ = foot_lock(out, legs, foot_lock_cfg)
    return out


@dataclass(frozen=True)
class FootLock:
    height_m: float = 0.04  # a foot within this of its lowest height (robust) may be planted
    speed_m_s: float = 0.3  # ... and moving slower than this
    min_duration_s: float = 0.08
    blend_s: float = 0.1  # ease in and out of a lock


FLOOR_CELL_M = 0.25  # the floor under a foot: its lowest height in each cell of this size it crossed ...
FLOOR_SPAN_M = 1.0  # ... a plane through them where the foot travels this far or more (else one height)


def floor_heights(pos: np.ndarray) -> np.ndarray:
    """(F,) the floor's height under a foot point (F, 3), Z up: a plane through the point's lowest height in each
    ``FLOOR_CELL_M`` cell of the floor it crossed (cells above the plane by more than three median deviations,
    where the foot only passed in the air, left out), where it travels ``FLOOR_SPAN_M`` or more; else its 2nd
    percentile height. A world a few degrees off level (a calibration's) put one height over a 3.5 m walk
    10–20 cm off the floor at one end: 3° took the contacts of CMU 01_01 from 72 % of the frames to 23 %."""
    ok = np.isfinite(pos).all(axis=-1)
    flat = np.full(len(pos), np.nanpercentile(pos[:, 2], 2) if ok.any() else np.nan)
    if not ok.any() or np.ptp(pos[ok, :2], axis=0).max() < FLOOR_SPAN_M:
        return flat
    p = pos[ok]
    cells, inverse = np.unique(np.floor(p[:, :2] / FLOOR_CELL_M).astype(np.int64), axis=0, return_inverse=True)
    order = np.lexsort((p[:, 2], inverse.ravel()))  # by cell, lowest first
    first = np.unique(inverse.ravel()[order], return_index=True)[1]
    low = p[order[first]]  # (cells, 3): the lowest sample of each cell
    if len(low) < 3:
        return flat
    centre = low[:, :2].mean(axis=0)
    A = np.column_stack([low[:, :2] - centre, np.ones(len(low))])
    keep = np.ones(len(low), bool)
    for _ in range(3):
        coef = np.linalg.lstsq(A[keep], low[keep, 2], rcond=None)[0]
        r = low[:, 2] - A @ coef
        mad = np.median(np.abs(r[keep] - np.median(r[keep])))
        keep = r <= np.median(r[keep]) + 3 * max(mad, 1e-3)
    out = flat.copy()
    out[ok] = np.column_stack([pos[ok, :2] - centre, np.ones(ok.sum())]) @ coef
    return out


def foot_contacts(pos: np.ndarray, fps: float, cfg: FootLock = FootLock()) -> np.ndarray:
    """(F,) bool: a foot point (F, 3) is planted (near the floor under it, :func:`floor_heights`, and slow)."""
    floor = floor_heights(pos)
    speed = np.zeros(len(pos))
    speed[1:] = np.linalg.norm(np.diff(pos[:, :2], axis=0), axis=1) * fps
    c = (pos[:, 2] < floor + cfg.height_m) & (speed < cfg.speed_m_s)
    # drop contacts shorter than min_duration
    n = max(int(round(cfg.min_duration_s * fps)), 1)
    out = np.zeros_like(c)
    f = 0
    while f < len(c):
        if c[f]:
            e = f
            while e < len(c) and c[e]:
                e += 1
            if e - f >= n:
                out[f:e] = True
            f = e
        else:
            f += 1
    return out


def foot_lock(motion: Motion, legs: list[tuple[int, int, int, int]], cfg: FootLock = FootLock()
              ) -> tuple[Motion, dict[str, float]]:
    """Hold each planted foot still. The ankle of every contact is pinned where it landed (easing back
    onto its own path over ``blend_s`` after lift-off); the hip–knee–ankle chain is solved analytically
    (the knee stays in its bend plane, the foot keeps its world orientation). legs: (hip, knee, ankle,
    toe or -1) joint indices. Returns the motion and, per ankle, the mean horizontal slide during
    contacts after (``name``) and before (``name before``), in mm per frame."""
    sk = motion.skeleton
    G, p = motion.fk()
    G = G.copy()
    stats = {}
    nb = max(int(round(cfg.blend_s * motion.fps)), 1)
    for hip, knee, ankle, toe in legs:
        point = p[:, toe] if toe >= 0 else p[:, ankle]
        contact = foot_contacts(point, motion.fps, cfg)
        target = p[:, ankle].copy()
        weight = np.zeros(motion.n_frames)
        for a, b in runs(contact):
            # pinned where it landed; after lift-off the foot eases back onto its own path
            end = min(b + nb, motion.n_frames)
            target[a:end] = p[a, ankle]
            weight[a:b] = 1.0
            weight[b:end] = np.maximum(weight[b:end], 1.0 - np.arange(1, end - b + 1) / (nb + 1))
        goal = p[:, ankle] + weight[:, None] * (target - p[:, ankle])
        before = _slide(p[:, ankle], contact)
        l1 = np.linalg.norm(sk.offsets[knee])
        l2 = np.linalg.norm(sk.offsets[ankle])
        h, k, an = p[:, hip], p[:, knee], p[:, ankle]
        d_vec = goal - h
        d = np.clip(np.linalg.norm(d_vec, axis=1), abs(l1 - l2) + 1e-4, l1 + l2 - 1e-4)
        e = d_vec / np.maximum(np.linalg.norm(d_vec, axis=1, keepdims=True), 1e-9)
        pole = (k - h) - np.sum((k - h) * e, axis=1, keepdims=True) * e
        pole = pole / np.maximum(np.linalg.norm(pole, axis=1, keepdims=True), 1e-9)
        cos_a = np.clip((l1**2 + d**2 - l2**2) / (2 * l1 * d), -1, 1)
        k_new = h + l1 * (cos_a[:, None] * e + np.sqrt(1 - cos_a**2)[:, None] * pole)
        R1 = rotation_between(k - h, k_new - h)
        R2 = rotation_between(np.einsum("fij,fj->fi", R1, an - k), h + e * d[:, None] - k_new)
        foot_world = G[:, ankle].copy()
        sub = [j for j in range(len(sk.joint_names)) if sk.is_below(j, hip)]
        G[:, hip] = R1 @ G[:, hip]
        for j in sub:
            if j == ankle or sk.is_below(j, ankle):
                continue
            G[:, j] = (R2 @ R1 @ G[:, j]) if sk.is_below(j, knee) or j == knee else R1 @ G[:, j]
        G[:, ankle] = foot_world
        locked = motion_from_world(sk, G, motion.root_positions, motion.fps)
        _, p = locked.fk()
        stats[sk.joint_names[ankle]] = (before, _slide(p[:, ankle], contact))
    out = motion_from_world(sk, G, motion.root_positions, motion.fps)
    for name, (b, a) in stats.items():
        log.info("foot lock %s: slide during contact %.2f → %.2f mm/frame", name, b, a)
    return out, {k: v[1] for k, v in stats.items()} | {k + " before": v[0] for k, v in stats.items()}


def _slide(pos: np.ndarray, contact: np.ndarray) -> float:
    both = contact[1:] & contact[:-1]
    if not both.any():
        return 0.0
    return float(np.linalg.norm(np.diff(pos[:, :2], axis=0), axis=1)[both].mean() * 1000)
