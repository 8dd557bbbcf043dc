"""Core data types: frozen dataclasses whose docstrings give array shapes.

Conventions (see :mod:`mocap`): metres, right-handed world with Z up, OpenCV camera frames,
pixel centre of the top-left pixel at (0, 0), quaternions wxyz, NaN for missing data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mocap.geometry.camera import DIST_SIZES
from mocap.geometry.camera import project as project_points
from mocap.geometry.rotations import quat_to_matrix


def _array(value, shape: tuple[int | None, ...], what: str, dtype=float) -> np.ndarray:
    a = np.asarray(value, dtype=dtype)
    ok = a.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, a.shape, strict=True))
    if not ok:
        expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{what}: expected shape {expected}, got {a.shape}")
    a = a.copy()
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Camera:
    """A calibrated camera.

    K: (3, 3) intrinsics. dist: (5,) ``k1, k2, p1, p2, k3`` for ``model="pinhole"`` or (4,)
    ``k1..k4`` for ``model="fisheye"``. cam_from_world: (4, 4) rigid transform, world → camera.
    size: (width, height) in pixels.
    """

    name: str
    K: np.ndarray
    dist: np.ndarray
    cam_from_world: np.ndarray
    size: tuple[int, int]
    model: str = "pinhole"

    def __post_init__(self) -> None:
        what = f"camera {self.name!r}"
        if self.model not in DIST_SIZES:
            raise ValueError(f"{what}: unknown model {self.model!r}, expected one of {sorted(DIST_SIZES)}")
        K = _array(self.K, (3, 3), f"{what}: K")
        fx, fy = K[0, 0], K[1, 1]
        if not (np.isfinite(fx) and np.isfinite(fy) and fx > 0 and fy > 0):
            raise ValueError(f"{what}: focal length must be positive and finite, got fx={fx}, fy={fy}")
        if not np.all(np.isfinite(K)):
            raise ValueError(f"{what}: K contains NaN or infinity: {K.tolist()}")
        dist = np.asarray(self.dist, float).ravel()
        n = DIST_SIZES[self.model]
        if dist.size < n:  # shorter lists (k1, k2 only) are padded with zeros, as OpenCV does
            dist = np.concatenate([dist, np.zeros(n - dist.size)])
        if dist.size != n or not np.all(np.isfinite(dist)):
            raise ValueError(f"{what}: {self.model} distortion needs {n} finite coefficients, got {dist.tolist()}")
        T = np.asarray(self.cam_from_world, float)
        if T.shape == (3, 4):
            T = np.vstack([T, [0, 0, 0, 1]])
        T = _array(T, (4, 4), f"{what}: cam_from_world")
        R = T[:3, :3]
        if not np.all(np.isfinite(T)) or not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
            raise ValueError(f"{what}: cam_from_world rotation is not a proper rotation matrix: {R.tolist()}")
        size = tuple(int(v) for v in self.size)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"{what}: image size must be (width, height) > 0, got {self.size}")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "dist", _array(dist, (n,), f"{what}: dist"))
        object.__setattr__(self, "cam_from_world", T)
        object.__setattr__(self, "size", size)

    @property
    def R(self) -> np.ndarray:
        """(3, 3) world → camera rotation."""
        return self.cam_from_world[:3, :3]

    @property
    def t(self) -> np.ndarray:
        """(3,) world → camera translation."""
        return self.cam_from_world[:3, 3]

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in world coordinates."""
        return -self.R.T @ self.t

    @property
    def P(self) -> np.ndarray:
        """(3, 4) pinhole projection matrix ``K [R | t]`` (ignores distortion)."""
        return self.K @ self.cam_from_world[:3]

    def project(self, X: np.ndarray) -> np.ndarray:
        """World points (..., 3) → pixels (..., 2), NaN behind the camera."""
        return project_points(self, X)

    def with_pose(self, cam_from_world: np.ndarray) -> Camera:
        return Camera(self.name, self.K, self.dist, cam_from_world, self.size, self.model)


@dataclass(frozen=True, eq=False)
class Rig:
    """An ordered set of cameras with unique names."""

    cameras: tuple[Camera, ...]

    def __post_init__(self) -> None:
        cams = tuple(self.cameras)
        if not cams:
            raise ValueError("a rig needs at least one camera")
        names = [c.name for c in cams]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"camera names must be unique, repeated: {dup}")
        object.__setattr__(self, "cameras", cams)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self):
        return iter(self.cameras)

    def __getitem__(self, key: int | str) -> Camera:
        if isinstance(key, str):
            try:
                return self.cameras[self.names.index(key)]
            except ValueError:
                raise KeyError(f"no camera named {key!r} in rig {list(self.names)}") from None
        return self.cameras[key]

    def subset(self, names: list[str] | tuple[str, ...]) -> Rig:
        return Rig(tuple(self[n] for n in names))

    def project(self, X: np.ndarray) -> np.ndarray:
        """World points (..., 3) → pixels (C, ..., 2)."""
        return np.stack([c.project(X) for c in self.cameras])


@dataclass(frozen=True, eq=False)
class KeypointSet:
    """Names and topology of a 2D keypoint detector's output.

    joints: J names. pairs: (left, right) index pairs. limbs: index pairs drawn as a skeleton.
    bones: index pairs whose length is constant on a human body (used as constraints). loose_bones: index pairs
    whose length varies a little (the torso bends and twists, the head turns on the neck), held more loosely.
    head: the indices of the keypoints on the skull (one rigid body: :mod:`mocap.fit.head`).
    """

    name: str
    joints: tuple[str, ...]
    pairs: tuple[tuple[int, int], ...] = ()
    limbs: tuple[tuple[int, int], ...] = ()
    bones: tuple[tuple[int, int], ...] = ()
    loose_bones: tuple[tuple[int, int], ...] = ()
    head: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        J = len(self.joints)
        if any(not 0 <= k < J for k in self.head) or len(set(self.head)) != len(self.head):
            raise ValueError(f"keypoint set {self.name!r}: head {self.head} are not distinct joints")
        for kind in ("pairs", "limbs", "bones", "loose_bones"):
            for a, b in getattr(self, kind):
                if not (0 <= a < J and 0 <= b < J) or a == b:
                    raise ValueError(f"keypoint set {self.name!r}: {kind} entry ({a}, {b}) is not a pair of joints")

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(f"keypoint set {self.name!r} has no joint {joint!r}") from None

    @property
    def flip_permutation(self) -> np.ndarray:
        """(J,) index of each joint's mirror image (itself when unpaired)."""
        perm = np.arange(len(self.joints))
        for a, b in self.pairs:
            perm[a], perm[b] = b, a
        return perm


@dataclass(frozen=True, eq=False)
class Keypoints2D:
    """2D detections. data: (F, C, P, J, 3) with [x, y, score] in pixels; NaN where missing."""

    data: np.ndarray
    camera_names: tuple[str, ...]
    keypoint_set: str
    fps: float

    def __post_init__(self) -> None:
        d = np.asarray(self.data, dtype=float)
        if d.ndim != 5 or d.shape[-1] != 3:
            raise ValueError(f"2D keypoints: expected shape (frames, cameras, persons, joints, 3), got {d.shape}")
        names = tuple(self.camera_names)
        if len(names) != d.shape[1]:
            raise ValueError(f"2D keypoints: {d.shape[1]} cameras in the data but {len(names)} camera names {names}")
        if not (self.fps > 0):
            raise ValueError(f"2D keypoints: fps must be positive, got {self.fps}")
        object.__setattr__(self, "data", d)
        object.__setattr__(self, "camera_names", names)

    @property
    def xy(self) -> np.ndarray:
        return self.data[..., :2]

    @property
    def score(self) -> np.ndarray:
        return self.data[..., 2]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(frames, cameras, persons, joints)."""
        return self.data.shape[:4]


@dataclass(frozen=True, eq=False)
class Points3D:
    """3D joints. xyz: (F, P, J, 3) metres, NaN where unknown. reproj_err: (F, P, J) mean pixel
    error over the views used. views: (F, P, J, C) bool, the cameras that support each point."""

    xyz: np.ndarray
    reproj_err: np.ndarray
    views: np.ndarray
    camera_names: tuple[str, ...]
    keypoint_set: str
    fps: float
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        xyz = np.asarray(self.xyz, float)
        if xyz.ndim != 4 or xyz.shape[-1] != 3:
            raise ValueError(f"3D points: expected shape (frames, persons, joints, 3), got {xyz.shape}")
        F, P, J, _ = xyz.shape
        err = _array(self.reproj_err, (F, P, J), "3D points: reproj_err")
        views = _array(self.views, (F, P, J, len(self.camera_names)), "3D points: views", dtype=bool)
        object.__setattr__(self, "xyz", xyz)
        object.__setattr__(self, "reproj_err", err)
        object.__setattr__(self, "views", views)
        object.__setattr__(self, "camera_names", tuple(self.camera_names))


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A kinematic tree. parents: (J,) parent index, -1 for the root; every parent precedes its
    children. offsets: (J, 3) rest-pose offset of each joint from its parent, in the parent frame."""

    joint_names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        J = len(self.joint_names)
        parents = _array(self.parents, (J,), "skeleton parents", dtype=int)
        offsets = _array(self.offsets, (J, 3), "skeleton offsets")
        if J == 0 or parents[0] != -1 or np.any(parents[1:] < 0):
            raise ValueError("skeleton: joint 0 must be the only root (parent -1)")
        bad = [self.joint_names[i] for i in range(1, J) if parents[i] >= i]
        if bad:
            raise ValueError(f"skeleton: parents must precede their children; out of order: {bad}")
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "offsets", offsets)

    def index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"skeleton has no joint {name!r}") from None

    def is_below(self, j: int, ancestor: int) -> bool:
        """Whether joint ``j`` is a descendant of ``ancestor`` (not the joint itself)."""
        k = self.parents[j]
        while k >= 0:
            if k == ancestor:
                return True
            k = self.parents[k]
        return False


@dataclass(frozen=True, eq=False)
class Motion:
    """Animation of a skeleton. rotations: (F, J, 4) local quaternions wxyz (joint frame relative
    to its parent). root_positions: (F, 3) root joint position in the world."""

    skeleton: Skeleton
    rotations: np.ndarray
    root_positions: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        J = len(self.skeleton.joint_names)
        rot = np.asarray(self.rotations, float)
        if rot.ndim != 3 or rot.shape[1:] != (J, 4):
            raise ValueError(f"motion rotations: expected shape (frames, {J}, 4), got {rot.shape}")
        root = _array(self.root_positions, (rot.shape[0], 3), "motion root_positions")
        object.__setattr__(self, "rotations", rot)
        object.__setattr__(self, "root_positions", root)

    @property
    def n_frames(self) -> int:
        return self.rotations.shape[0]

    def fk(self) -> tuple[np.ndarray, np.ndarray]:
        """Forward kinematics: world rotations (F, J, 3, 3) and positions (F, J, 3)."""
        return forward_kinematics(self.skeleton, quat_to_matrix(self.rotations), self.root_positions)


def forward_kinematics(sk: Skeleton, local: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local rotation matrices (F, J, 3, 3) and root positions (F, 3) → world rotations (F, J, 3, 3)
    and world positions (F, J, 3), parents first."""
    F, J = local.shape[:2]
    Rw = np.empty_like(local)
    pw = np.empty((F, J, 3))
    for j in range(J):
        p = sk.parents[j]
        if p < 0:
            Rw[:, j], pw[:, j] = local[:, j], root
        else:
            Rw[:, j] = Rw[:, p] @ local[:, j]
            pw[:, j] = pw[:, p] + Rw[:, p] @ sk.offsets[j]
    return Rw, pw
