"""Ground truth from mocap clips: world keypoints, a virtual camera ring, corrupted detections.

World frame: metres, Z up; a source skeleton's rest pose faces −Y (its left is +X).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mocap.config_files import check_keys, load_preset
from mocap.io.bvh import read_bvh
from mocap.keypoint_sets import get_keypoint_set
from mocap.types import Camera, Keypoints2D, Motion, Rig

log = logging.getLogger(__name__)
_AXES = {"+x": (1, 0, 0), "-x": (-1, 0, 0), "+y": (0, 1, 0), "-y": (0, -1, 0), "+z": (0, 0, 1), "-z": (0, 0, -1)}


@dataclass(frozen=True)
class MarkerMap:
    """Keypoints as joints + offsets of a source skeleton. offsets: (K, 3) in the joint frame."""

    keypoint_set: str
    joints: tuple[str, ...]
    offsets: np.ndarray
    to_world: np.ndarray  # (3, 3) source axes → Z-up world
    scale: float


def load_marker_map(name: str = "cmu_blazepose33") -> MarkerMap:
    table, path = load_preset("synth", name)
    check_keys(table, {"keypoint_set", "scale", "rest_axes", "keypoints"}, str(path))
    kps = get_keypoint_set(table["keypoint_set"])
    axes = table["rest_axes"]
    try:
        M = np.array([_AXES[axes["left"]], _AXES[axes["forward"]], _AXES[axes["up"]]], float).T
    except KeyError as e:
        raise ValueError(f"{path}: rest_axes needs left/forward/up as one of {sorted(_AXES)}: {e}") from None
    if abs(np.linalg.det(M)) != 1:
        raise ValueError(f"{path}: rest_axes must be three different axes")
    world = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0]])  # left → +X, forward → −Y, up → +Z
    entries = table["keypoints"]
    missing = [k for k in kps.joints if k not in entries]
    unknown = [k for k in entries if k not in kps.joints]
    if missing or unknown:
        raise ValueError(f"{path}: keypoints missing {missing}, not in {kps.name}: {unknown}")
    joints, offsets = [], []
    for k in kps.joints:
        check_keys(entries[k], {"joint", "offset"}, f"{path} [keypoints.{k}]")
        joints.append(entries[k]["joint"])
        offsets.append(M @ np.asarray(entries[k].get("offset", [0.0, 0.0, 0.0]), float))
    return MarkerMap(kps.name, tuple(joints), np.array(offsets), world @ np.linalg.inv(M), float(table["scale"]))


def keypoints_from_motion(motion: Motion, mm: MarkerMap) -> np.ndarray:
    """World keypoints (F, K, 3) of a motion whose positions are already in metres."""
    names = motion.skeleton.joint_names
    missing = sorted(set(mm.joints) - set(names))
    if missing:
        raise ValueError(f"the marker map needs joints the motion does not have: {missing}; joints: {list(names)}")
    Rw, pw = motion.fk()
    idx = [names.index(j) for j in mm.joints]
    local = pw[:, idx] + np.einsum("fkij,kj->fki", Rw[:, idx], mm.offsets)
    return local @ mm.to_world.T


@dataclass(frozen=True)
class RigSpec:
    n_cameras: int = 4
    radius: float | None = None  # m; None: 3 m beyond the farthest point of the motion
    height: float = 1.8  # mean camera height (m)
    height_spread: float = 0.6  # cameras alternate between height ± spread/2
    size: tuple[int, int] = (1920, 1080)
    focal_px: float | None = None  # None: the whole motion fills 85% of every image
    dist: tuple[float, ...] = (-0.08, 0.02, 0.0005, -0.0005, 0.0)
    model: str = "pinhole"
    start_angle_deg: float = 30.0
    arc_deg: float = 360.0  # the cameras spread evenly over this arc (< 360: all on one side, ends included)
    zoom: float = 1.0  # with focal_px None: that framing's focal length × this (> 1: people leave the images' edges)

    def __post_init__(self) -> None:
        if not (self.zoom > 0 and np.isfinite(self.zoom)):
            raise ValueError(f"rig spec: zoom must be a positive number, got {self.zoom!r}")


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z])
    T[:3, 3] = -T[:3, :3] @ centre
    return T


def ring_rig(spec: RigSpec, points: np.ndarray) -> Rig:
    """A ring of cameras around the motion ``points`` (..., 3), all looking at its centre."""
    pts = points.reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    lo, hi = pts.min(0), pts.max(0)
    target = (lo + hi) / 2
    reach = np.max(np.linalg.norm(pts[:, :2] - target[:2], axis=1))
    radius = spec.radius or reach + 3.0
    W, H = spec.size
    poses = []
    for i in range(spec.n_cameras):
        step = spec.arc_deg / (spec.n_cameras if spec.arc_deg >= 360 else max(spec.n_cameras - 1, 1))
        a = np.radians(spec.start_angle_deg + step * i)
        h = spec.height + spec.height_spread * (0.5 if i % 2 else -0.5)
        centre = np.array([target[0] + radius * np.cos(a), target[1] + radius * np.sin(a), h])
        poses.append(_look_at(centre, target))
    focal = spec.focal_px
    if focal is None:
        sample = pts[:: max(1, len(pts) // 20000)]
        extent = []
        for T in poses:
            Xc = sample @ T[:3, :3].T + T[:3, 3]
            xy = np.abs(Xc[:, :2] / Xc[:, 2:])
            extent.append(min(0.85 * W / 2 / xy[:, 0].max(), 0.85 * H / 2 / xy[:, 1].max()))
        focal = float(min(extent)) * spec.zoom
    K = np.array([[focal, 0.0, (W - 1) / 2], [0.0, focal, (H - 1) / 2], [0.0, 0.0, 1.0]])
    return Rig(tuple(Camera(f"cam{i + 1:02d}", K, np.array(spec.dist, float), T, spec.size, spec.model)
                     for i, T in enumerate(poses)))


@dataclass(frozen=True)
class CorruptionSpec:
    noise_px: float = 2.0  # Gaussian σ per axis
    outliers: float = 0.05  # fraction of observations moved to a random place in the image
    dropouts: float = 0.10  # fraction of observations missing, in runs per camera and joint
    dropout_mean_frames: float = 10.0
    swaps: float = 0.0  # fraction of (frame, camera) with left and right exchanged, in runs
    swap_mean_frames: float = 5.0
    seed: int = 0
    hand_noise_px: float | None = None  # σ of the 42 hand keypoints of blazepose33_hands (None: noise_px)


def _runs(rng: np.random.Generator, n: int, fraction: float, mean_len: float) -> np.ndarray:
    """Boolean mask of length n covering about ``fraction`` of it with runs of random length."""
    mask = np.zeros(n, bool)
    if fraction <= 0:
        return mask
    target = fraction * n
    while mask.sum() < target:
        length = max(1, int(rng.exponential(mean_len)))
        start = rng.integers(0, n)
        mask[start : start + length] = True
    return mask


def corrupt(uv: np.ndarray, rig: Rig, keypoint_set: str, spec: CorruptionSpec) -> tuple[np.ndarray, dict]:
    """uv: (F, C, J, 2) exact projections (NaN where invisible) → data (F, C, 1, J, 3), masks."""
    rng = np.random.default_rng(spec.seed)
    F, C, J, _ = uv.shape
    sigma = np.full(J, spec.noise_px)
    if spec.hand_noise_px is not None and keypoint_set == "blazepose33_hands":
        sigma[33:] = spec.hand_noise_px
    obs = uv + rng.normal(0.0, 1.0, uv.shape) * sigma[None, None, :, None]
    swapped = np.zeros((F, C), bool)
    if spec.swaps > 0:
        perm = get_keypoint_set(keypoint_set).flip_permutation
        for c in range(C):
            swapped[:, c] = _runs(rng, F, spec.swaps, spec.swap_mean_frames)
            obs[swapped[:, c], c] = obs[swapped[:, c], c][:, perm]
    outlier = rng.random((F, C, J)) < spec.outliers
    sizes = np.array([cam.size for cam in rig.cameras], float)  # (C, 2)
    random_xy = rng.random((F, C, J, 2)) * sizes[None, :, None, :]
    obs = np.where(outlier[..., None], random_xy, obs)
    dropped = np.zeros((F, C, J), bool)
    for c in range(C):
        for j in range(J):
            dropped[:, c, j] = _runs(rng, F, spec.dropouts, spec.dropout_mean_frames)
    visible = np.all(np.isfinite(uv), axis=-1)
    inside = np.all((obs >= -0.5) & (obs <= sizes[None, :, None, :] - 0.5), axis=-1)
    present = visible & ~dropped & inside
    score = np.where(outlier, rng.uniform(0.3, 0.9, outlier.shape), rng.uniform(0.6, 1.0, outlier.shape))
    data = np.concatenate([obs, score[..., None]], axis=-1)
    data[~present] = np.nan
    masks = {"outlier": outlier & present, "dropped": dropped, "swapped": swapped, "visible": visible}
    return data[:, :, None], masks


@dataclass(frozen=True)
class SyntheticTake:
    rig: Rig
    keypoints: Keypoints2D
    truth: np.ndarray  # (F, J, 3) world keypoints of the single performer
    masks: dict = field(default_factory=dict)


def clip_points(motion: Motion, mm: MarkerMap, fps: float, n_frames: int | None = None, start: int = 0,
                where: str = "clip", hands: bool = False, seed: int = 0) -> np.ndarray:
    """World keypoints (F, K, 3) of a motion in metres from source frame ``start`` on, resampled to
    ``fps``, optionally looped back and forth to reach ``n_frames``. ``hands``: 42 hand keypoints with
    procedural finger motion follow (``blazepose33_hands``, see :func:`hands_on_body`)."""
    from mocap.synth.bvh_map import resample

    if n_frames is not None and n_frames < 1:
        raise ValueError(f"{where}: n_frames must be at least 1, got {n_frames}")
    if not 0 <= start < motion.n_frames:
        raise ValueError(f"{where}: start frame {start} is outside the clip's {motion.n_frames} frames")
    if start == 0:
        start = _reference_frames(motion, mm, where)
    motion = Motion(motion.skeleton, motion.rotations[start:], motion.root_positions[start:], motion.fps)
    if abs(motion.fps / fps - round(motion.fps / fps)) > 1e-3:
        log.info("%s: resampling %.3f fps to %g fps", where, motion.fps, fps)
    pts = keypoints_from_motion(resample(motion, fps), mm)
    if hands:
        from mocap.synth.fingers import finger_curls

        if mm.keypoint_set != "blazepose33":
            raise ValueError(f"{where}: hands need body keypoints in blazepose33, the marker map gives "
                             f"{mm.keypoint_set}")
        pts = np.concatenate([pts, hands_on_body(pts, finger_curls(len(pts), fps, seed))], axis=1)
    if n_frames is not None:
        if len(pts) == 1:
            pts = np.repeat(pts, n_frames, axis=0)
        while len(pts) < n_frames:  # ping-pong keeps the trajectory continuous
            pts = np.concatenate([pts, pts[::-1][1:]])
        pts = pts[:n_frames]
    return pts


MAX_JOINT_SPEED = 20.0  # m/s: faster than any joint of a performer (a pitcher's hand peaks near 15 m/s)


def _reference_frames(motion: Motion, mm: MarkerMap, where: str, most: int = 10) -> int:
    """How many leading frames are a reference pose the clip then jumps from (CMU clips start in a
    T-pose: a keypoint would move 0.6 m in 1/120 s), so the ground truth never contains a teleport."""
    n = min(most + 1, motion.n_frames)
    if n < 2:
        return 0
    head = Motion(motion.skeleton, motion.rotations[:n], motion.root_positions[:n], motion.fps)
    speed = np.linalg.norm(np.diff(keypoints_from_motion(head, mm), axis=0), axis=-1).max(axis=1) * motion.fps
    jumps = np.flatnonzero(speed > MAX_JOINT_SPEED)
    if not jumps.size:
        return 0
    skip = int(jumps[-1]) + 1
    log.info("%s: the first %d frame(s) are a reference pose (a joint then moves %.0f m/s); the take starts "
             "after them", where, skip, speed[jumps[-1]])
    return skip


def load_clip(bvh: str | Path, mm: MarkerMap | str = "auto", fps: float = 60.0, n_frames: int | None = None,
              start: int = 0) -> np.ndarray:
    """World keypoints of a BVH clip resampled to ``fps`` (see :func:`clip_points`); ``mm``: a marker
    map, a preset name, or ``"auto"`` (see :func:`mocap.synth.bvh_map.load_motion`)."""
    from mocap.motion import scale_motion
    from mocap.synth.bvh_map import load_motion, missing_joints

    if isinstance(mm, MarkerMap):
        motion = read_bvh(bvh)
        missing = missing_joints(motion.skeleton, mm)
        if missing:
            raise ValueError(f"{bvh}: the marker map needs joints the file does not have: {missing}; "
                             f"joints in the file: {list(motion.skeleton.joint_names)}")
        motion = scale_motion(motion, mm.scale)
    else:
        motion, mm = load_motion(bvh, mm)
    return clip_points(motion, mm, fps, n_frames, start, str(bvh))


def _frame(wrist: np.ndarray, index: np.ndarray, pinky: np.ndarray) -> np.ndarray:
    """(..., 3, 3) hand frames, columns: towards the fingers, across the palm (pinky → index), palm normal."""
    fwd = (index + pinky) / 2 - wrist
    fwd = fwd / np.linalg.norm(fwd, axis=-1, keepdims=True)
    across = index - pinky
    across = across - np.sum(across * fwd, axis=-1, keepdims=True) * fwd
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    return np.stack([fwd, across, np.cross(fwd, across)], axis=-1)


def hands_on_body(body: np.ndarray, curls: dict[str, np.ndarray], skeleton: str = "body52") -> np.ndarray:
    """(F, 42, 3) hand keypoints for BlazePose-33 body keypoints (F, 33, 3): the fingers of ``skeleton`` moved by
    ``curls`` (:func:`mocap.synth.fingers.finger_curls`) on a resting body, each hand then carried rigidly
    onto the body's wrist, turned so its wrist → index / pinky knuckles frame matches the body's wrist →
    index / pinky keypoints (which the body's hand orientation comes from)."""
    from mocap.skeletons import load_skeleton
    from mocap.synth.fingers import add_fingers, hand_keypoints
    from mocap.types import Motion

    F = len(body)
    sk22 = load_skeleton("body22").skeleton
    rest = Motion(sk22, np.tile([1.0, 0.0, 0.0, 0.0], (F, len(sk22.joint_names), 1)), np.zeros((F, 3)), 60.0)
    local = hand_keypoints(add_fingers(rest, curls, skeleton), skeleton)  # (F, 42, 3), hands at rest
    out = np.empty_like(local)
    for s, (w, p, i) in enumerate(((15, 17, 19), (16, 18, 20))):
        hand = local[:, 21 * s: 21 * s + 21]
        # the knuckles do not move with the fingers: the rest frame is the first frame's
        R_rest = _frame(hand[0, 0], hand[0, 5], hand[0, 17])
        R_body = _frame(body[:, w], body[:, i], body[:, p])  # (F, 3, 3)
        R = R_body @ R_rest.T
        out[:, 21 * s: 21 * s + 21] = body[:, w, None] + np.einsum("fij,fkj->fki", R, hand - hand[:, :1])
    return out


def make_take(bvh: str | Path, n_frames: int | None = None, fps: float = 60.0, rig_spec: RigSpec = RigSpec(),
              corruption: CorruptionSpec = CorruptionSpec(), marker_map: str = "auto",
              hands: bool = False) -> SyntheticTake:
    """A synthetic take from any BVH clip (CMU, Mixamo or other joint names, any frame rate). ``hands``:
    keypoint set ``blazepose33_hands``, with procedural finger motion (grasps, spreads, counting, fists)."""
    from mocap.synth.bvh_map import load_motion

    motion, mm = load_motion(bvh, marker_map)
    truth = clip_points(motion, mm, fps, n_frames, 0, str(bvh), hands=hands, seed=corruption.seed)
    keypoint_set = "blazepose33_hands" if hands else mm.keypoint_set
    rig = ring_rig(rig_spec, truth)
    uv = np.moveaxis(rig.project(truth), 0, 1)  # (F, C, J, 2)
    data, masks = corrupt(uv, rig, keypoint_set, corruption)
    kp = Keypoints2D(data, rig.names, keypoint_set, fps)
    log.info("synthetic take: %d frames, %d cameras, %d keypoints", *truth.shape[:1], len(rig), truth.shape[1])
    return SyntheticTake(rig, kp, truth, masks)


def write_session(take: SyntheticTake, root: str | Path, json_2d: bool = True) -> Path:
    """Write a session folder: rig, 2D keypoints (OpenPose JSON or HDF5), ground truth."""
    import tomli_w

    from mocap.io.hdf5 import write_keypoints2d, write_points3d
    from mocap.io.openpose import write_openpose
    from mocap.io.rig_files import write_rig
    from mocap.types import Points3D

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    kp = take.keypoints
    (root / "session.toml").write_text(tomli_w.dumps(
        {"fps": kp.fps, "keypoint_set": kp.keypoint_set, "description": "synthetic take (mocap.synth)"}))
    write_rig(take.rig, root / "calibration" / "rig.toml")
    if json_2d:
        write_openpose(kp, root / "pose2d")
    else:
        write_keypoints2d(kp, root / "pose2d.h5")
    F, J, _ = take.truth.shape
    gt = Points3D(take.truth[:, None], np.zeros((F, 1, J)), np.ones((F, 1, J, len(take.rig)), bool),
                  take.rig.names, kp.keypoint_set, kp.fps, {"source": "ground truth"})
    write_points3d(gt, root / "groundtruth" / "points3d.h5")
    return root
