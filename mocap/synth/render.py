"""``mocap synth render``: rendered multi-view takes with ground truth, laid out like a real capture.

A BVH clip is carried onto the pipeline's body22 skeleton (``configs/rigs/cmu.toml``), played by a
realistic character in Blender (bpy, a child process: :mod:`blender_addon.synth_render`) and
rendered by N cameras of a ring (Cycles CPU). Lens distortion is applied afterwards with OpenCV
remapping, so the rig's Brown-Conrady model is exact. A calibration take (a ChArUco board moving
through the volume) is rendered too. Written: ``videos/``, ``calibration/board/`` and
``calibration/board.toml`` (no rig: ``mocap run`` calibrates), ``groundtruth/`` (true rig, every rig
joint in the world per frame, its 2D projections and per-camera visibility, and
``points3d.h5`` holding the evaluated keypoints). With ``hands``, the character's finger bones play
procedural finger motion (:mod:`mocap.synth.fingers`) and the ground truth holds the 42 hand keypoints too
(keypoint set ``blazepose33_hands``; fingertips placed beyond the last finger joints, see :func:`_fingertips`).

With ``people`` > 1 (:func:`people_motions`) copies of the character play later segments of the clip
(``person_offset_s`` apart), side by side ``spacing`` metres apart across their direction of travel,
every second one turned round, so that they pass near each other. The ground truth then has a persons
axis: ``points3d.h5`` (F, P, K, 3) and ``rig_joints.npz`` ``positions`` (F, P, B, 3), ``uv`` (F, P, C, B, 2),
``visible`` (F, P, C, B) (a joint hidden by another person is not visible); one person keeps the layout
(F, B, 3), (F, C, B, 2), (F, C, B).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from mocap.config_files import load_preset
from mocap.geometry.camera import undistort
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.io.bvh import read_bvh
from mocap.io.capture import write_capture
from mocap.motion import change_axes
from mocap.retarget import load_target_rig, retarget
from mocap.skeletons import load_skeleton
from mocap.synth.groundtruth import RigSpec, _look_at, load_marker_map, ring_rig
from mocap.types import Camera, Motion, Rig

log = logging.getLogger(__name__)


FRAMES = ("body", "upper")


def framed_points(motion: Motion, frame: str) -> np.ndarray:
    """(F, N, 3) world points every camera keeps in view: every joint of ``motion`` (body22/body52 names) for
    "body"; for "upper" the hips and every joint above them plus a point 15 cm above the head joint (the top
    of the head): a close-range take where the hands fill more of the image, the legs cut by its lower edge."""
    names = motion.skeleton.joint_names
    p = motion.fk()[1]
    if frame == "body":
        return p
    keep = [i for i, n in enumerate(names) if not any(s in n for s in ("Leg", "Foot", "Toe"))]
    top = p[:, names.index("Head")] + np.array([0.0, 0.0, 0.15])
    return np.concatenate([p[:, keep], top[:, None]], axis=1)


@dataclass(frozen=True)
class RenderSpec:
    bvh: str
    blend: str = ""  # default: the shared realistic human
    character: str = "makehuman"  # configs/synth/<name>.toml: armature, bone map, evaluated joints
    start_s: float = 0.0
    seconds: float = 2.5
    fps: float = 30.0
    cameras: int = 4
    radius: float = 3.0
    height: float = 1.4
    height_spread: float = 0.5
    size: tuple[int, int] = (640, 480)
    dist: tuple[float, ...] = (-0.12, 0.03, 0.0005, -0.0005, 0.0)
    samples: int = 12
    board: str = "charuco_a0"
    board_frames: int = 40
    seed: int = 0
    hands: bool = False  # procedural finger motion (mocap.synth.fingers) on the character's finger bones
    people: int = 1  # copies of the character, each playing its own segment of the clip
    spacing: float = 1.2  # metres between neighbouring people, across their direction of travel
    person_offset_s: float = 4.0  # person k plays the clip from start_s + k * person_offset_s
    frame: str = "body"  # what the cameras keep in view: "body" (every joint) or "upper" (hips up, hands included)

    def __post_init__(self) -> None:
        if int(self.people) != self.people or self.people < 1:
            raise ValueError(f"people: expected a whole number ≥ 1, got {self.people!r}")
        if self.people > 1 and not 0.3 <= self.spacing <= 5.0:
            raise ValueError(f"spacing: expected 0.3-5 m between people, got {self.spacing}")
        if self.frame not in FRAMES:
            raise ValueError(f"frame: expected one of {', '.join(FRAMES)}, got {self.frame!r}")


def body_motion_from_bvh(spec: RenderSpec) -> Motion:
    """The clip on body22 (Z up, metres, facing -Y at rest), cut, resampled and centred."""
    mm = load_marker_map()
    clip = read_bvh(spec.bvh, scale=mm.scale)
    stride = clip.fps / spec.fps
    if abs(stride - round(stride)) > 1e-3 or round(stride) < 1:
        raise ValueError(f"{spec.bvh}: {clip.fps:.3f} fps cannot be resampled to {spec.fps} fps by a whole stride")
    first = int(round(spec.start_s * clip.fps))
    n = int(round(spec.seconds * spec.fps))
    idx = first + np.arange(n) * int(round(stride))
    if idx[-1] >= clip.n_frames:
        raise ValueError(f"{spec.bvh}: {clip.n_frames / clip.fps:.2f} s long; {spec.start_s}+{spec.seconds} s asked")
    clip = Motion(clip.skeleton, clip.rotations[idx], clip.root_positions[idx], spec.fps)
    cmu = load_target_rig("cmu")
    body_from_cmu = {s: t for t, s in cmu.source.items() if t in clip.skeleton.joint_names}
    m = retarget(change_axes(clip, mm.to_world), load_skeleton("body22").skeleton, body_from_cmu)
    root = m.root_positions.copy()
    root[:, :2] -= root[:, :2].mean(axis=0)
    _, p = Motion(m.skeleton, m.rotations, root, m.fps).fk()
    root[:, 2] += 0.03 - np.percentile(p[..., 2].min(axis=1), 2)  # toes (joint centres) 3 cm above the floor
    return Motion(m.skeleton, m.rotations, root, m.fps)


def people_motions(spec: RenderSpec) -> list[Motion]:
    """One motion per person: person k plays the clip from ``start_s + k * person_offset_s``, every second
    person turned by 180° about the vertical, and each shifted across the first person's direction of
    travel (``spacing`` between neighbours, centred), so that people walking pass each other at about
    ``spacing``."""
    from dataclasses import replace

    from mocap.geometry.rotations import matrix_to_quat, quat_to_matrix

    motions = [body_motion_from_bvh(replace(spec, start_s=spec.start_s + k * spec.person_offset_s))
               for k in range(spec.people)]
    if spec.people == 1:
        return motions
    travel = motions[0].root_positions[-1, :2] - motions[0].root_positions[0, :2]
    d = travel / np.linalg.norm(travel) if np.linalg.norm(travel) > 0.2 else np.array([0.0, 1.0])
    across = np.array([-d[1], d[0], 0.0])
    out = []
    for k, m in enumerate(motions):
        Rz = np.diag([-1.0, -1.0, 1.0]) if k % 2 else np.eye(3)
        rot = m.rotations.copy()
        rot[:, 0] = matrix_to_quat(Rz @ quat_to_matrix(rot[:, 0]))
        root = m.root_positions @ Rz.T + (k - (spec.people - 1) / 2) * spec.spacing * across
        out.append(Motion(m.skeleton, rot, root, m.fps))
    return out


def render_size(cam: Camera) -> tuple[tuple[int, int], np.ndarray]:
    """A pinhole render (size, K) that covers every pixel of the distorted image."""
    w, h = cam.size
    u, v = np.meshgrid(np.linspace(0, w - 1, 64), np.linspace(0, h - 1, 48))
    edge = np.stack([u, v], -1).reshape(-1, 2)
    n = undistort((edge - cam.K[:2, 2]) / np.diag(cam.K)[:2], cam.dist, cam.model)
    p = n * np.diag(cam.K)[:2] + cam.K[:2, 2]
    lo = np.floor(p.min(axis=0)) - 2
    hi = np.ceil(p.max(axis=0)) + 2
    K = cam.K.copy()
    K[:2, 2] -= lo
    return (int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1), K


def distort_maps(cam: Camera, K_render: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps: each output (distorted) pixel → where the pinhole render saw it."""
    w, h = cam.size
    u, v = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
    n = undistort((np.stack([u, v], -1) - cam.K[:2, 2]) / np.diag(cam.K)[:2], cam.dist, cam.model)
    p = n * np.diag(K_render)[:2] + K_render[:2, 2]
    return p[..., 0].astype(np.float32), p[..., 1].astype(np.float32)


def board_poses(n: int, rng: np.random.Generator, cameras: Rig, centre_height: float = 1.1) -> np.ndarray:
    """(n, 4, 4) world_from_board: the board moves around the volume, turned in turn towards each pair of
    neighbouring cameras of the ring (halfway between them, tilted up to 15°), so that every camera
    sees it from several angles and always together with a neighbour (what extrinsics need)."""
    out = np.zeros((n, 4, 4))
    centres = np.array([c.center for c in cameras])
    order = np.argsort(np.arctan2(centres[:, 1], centres[:, 0]))  # around the ring
    for i in range(n):
        a, b = centres[order[i % len(order)]], centres[order[(i + 1) % len(order)]]
        pos = np.array([*rng.uniform(-0.5, 0.5, 2), centre_height + rng.uniform(-0.3, 0.3)])
        normal = (a - pos) / np.linalg.norm(a - pos) + (b - pos) / np.linalg.norm(b - pos)
        normal[2] *= 0.3
        normal /= np.linalg.norm(normal)
        T = _look_at(pos, pos - normal)  # camera-like frame looking away from the target: z = -normal
        R = T[:3, :3].T @ np.diag([1.0, -1.0, -1.0])  # columns: x right, y up, z towards the target
        tilt = rng.uniform(-np.radians(15), np.radians(15), 2)
        R = R @ axis_angle_to_matrix(np.array([tilt[0], tilt[1], rng.uniform(-0.3, 0.3)]))
        out[i, :3, :3], out[i, :3, 3], out[i, 3, 3] = R, pos, 1.0
    return out


def _board(name: str) -> tuple[dict, np.ndarray]:
    """The board preset's table and its image (the same pattern OpenCV detects)."""
    table, _ = load_preset("boards", name)
    if table.get("type") != "charuco":
        raise ValueError(f"board {name!r}: rendered calibration takes need a ChArUco board")
    board = cv2.aruco.CharucoBoard((table["squares_x"], table["squares_y"]), table["square_size"],
                                   table["marker_size"], cv2.aruco.getPredefinedDictionary(
                                       getattr(cv2.aruco, table["dictionary"])))
    board.setLegacyPattern(bool(table.get("legacy", False)))
    px = 120
    img = board.generateImage((table["squares_x"] * px, table["squares_y"] * px), marginSize=0, borderBits=1)
    return table, img


def _blender(job: dict, work: Path) -> None:
    import time

    path = work / f"job_{job['kind']}.json"
    path.write_text(json.dumps(job))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "blender_addon.synth_render", str(path)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError(f"rendering failed: {r.stderr.strip()[-2000:]}")
    n = job["frames"] * len(job["cameras"])
    log.info("rendered the %s take: %d images in %.1f s (%.2f s each)", job["kind"], n, time.perf_counter() - t0,
             (time.perf_counter() - t0) / n)


def _videos(rig: Rig, K_render: dict, frames_dir: Path, out_dir: Path, fps: float) -> None:
    from mocap.detect.overlay import OverlayWriter

    for cam in rig:
        mx, my = distort_maps(cam, K_render[cam.name])
        writer = OverlayWriter(out_dir / f"{cam.name}.mp4", fps, cam.size)
        ok = False
        try:
            for png in sorted((frames_dir / cam.name).glob("*.png")):
                img = cv2.imread(str(png))
                writer.write(cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
            ok = True
        finally:
            writer.close(ok)


def render_session(spec: RenderSpec, out: str | Path, keep_frames: bool = False,
                   parts: tuple[str, ...] = ("take", "board")) -> Path:
    """Render a synthetic session into ``out``: the take, the calibration board take, or both (a part
    rendered alone reuses the rig in ``out/groundtruth``)."""
    import tomli_w

    from mocap.data import shared_data_dir
    from mocap.io.hdf5 import write_points3d
    from mocap.io.rig_files import write_rig
    from mocap.keypoint_sets import get_keypoint_set
    from mocap.types import Points3D

    out = Path(out)
    blend = spec.blend or str((shared_data_dir() or Path("missing")) / "human" / "morse_human_rig.blend")
    if not Path(blend).is_file():
        raise FileNotFoundError(f"character file {blend} not found (the shared data folder has it)")
    character, cpath = load_preset("synth", spec.character)
    motions = people_motions(spec)
    if spec.hands:  # the character's fingers follow body52's, curled by procedural gestures
        from mocap.synth.fingers import add_fingers, finger_curls

        motions = [add_fingers(m, finger_curls(m.n_frames, spec.fps, spec.seed + k)) for k, m in enumerate(motions)]
    motion = motions[0]
    joints = np.concatenate([framed_points(m, spec.frame) for m in motions], axis=1)
    rig = ring_rig(RigSpec(n_cameras=spec.cameras, radius=spec.radius, height=spec.height,
                           height_spread=spec.height_spread, size=spec.size, dist=spec.dist), joints.reshape(-1, 3))
    if "take" not in parts:
        from mocap.io.rig_files import read_rig

        rig = read_rig(out / "groundtruth" / "rig.toml")
    sizes = {c.name: render_size(c) for c in rig}
    rsize = (max(s[0][0] for s in sizes.values()), max(s[0][1] for s in sizes.values()))
    K_render = {}
    for c in rig:  # one render size for all cameras: centre each camera's extra margin
        (w, h), K = sizes[c.name]
        K = K.copy()
        K[0, 2] += (rsize[0] - w) / 2
        K[1, 2] += (rsize[1] - h) / 2
        K_render[c.name] = K
    cams = [{"name": c.name, "K": K_render[c.name].tolist(), "size": list(rsize),
             "cam_from_world": c.cam_from_world.tolist()} for c in rig]
    base = {"blend": blend, "armature": character["armature"], "facing": character.get("facing", "-y"),
            "remove": character.get("remove", []), "cameras": cams, "render_size": list(rsize),
            "samples": spec.samples, "floor": [0.35, 0.33, 0.3]}
    with tempfile.TemporaryDirectory(prefix="mocap_render_") as tmp:
        work = Path(tmp) if not keep_frames else out / ".render"
        work.mkdir(parents=True, exist_ok=True)
        table, img = _board(spec.board)
        if "board" in parts:
            cv2.imwrite(str(work / "board.png"), img)
            size_m = [table["squares_x"] * table["square_size"], table["squares_y"] * table["square_size"]]
            poses = board_poses(spec.board_frames, np.random.default_rng(spec.seed), rig)
            _blender(base | {"kind": "board", "floor": None, "frames": spec.board_frames, "out": str(work / "board"),
                             "board": {"image": str(work / "board.png"), "size_m": size_m, "poses": poses.tolist()}},
                     work)
            _videos(rig, K_render, work / "board", out / "calibration" / "board", spec.fps)
            (out / "calibration" / "board.toml").write_text(tomli_w.dumps(table))
        if "take" not in parts:
            return out
        paths = [work / f"motion{k}.npz" for k in range(len(motions))]
        for path, m in zip(paths, motions, strict=True):
            write_capture(path, m)
        log.info("rendering %d frames × %d cameras at %dx%d (render %dx%d), %d people", motion.n_frames, len(rig),
                 *spec.size, *rsize, len(motions))
        _blender(base | {"kind": "take", "motions": [str(p) for p in paths], "bone_map": character["retarget"],
                         "frames": motion.n_frames, "out": str(work / "take")}, work)
        _videos(rig, K_render, work / "take", out / "videos", spec.fps)
        gt = np.load(work / "take" / "groundtruth.npz")
        names, heads, visible = list(gt["names"]), gt["heads"], gt["visible"]  # (F, P, B, 3), (F, P, C, B)
        tails = gt["tails"]
    if "board" not in parts:  # no calibration take: the session carries the true rig
        write_rig(rig, out / "calibration" / "rig.toml")
    kp_set = "blazepose33_hands" if spec.hands else "blazepose33"
    meta = {"fps": spec.fps, "keypoint_set": kp_set,
            "description": f"rendered synthetic take ({Path(spec.bvh).name})"}
    (out / "session.toml").write_text(tomli_w.dumps(meta))
    gdir = out / "groundtruth"
    write_rig(rig, gdir / "rig.toml")
    P = heads.shape[1]
    uv = np.stack([np.moveaxis(rig.project(heads[:, p]), 0, 1) for p in range(P)], axis=1)  # (F, P, C, B, 2)
    one = P == 1  # one person: the layout without a persons axis
    np.savez_compressed(gdir / "rig_joints.npz", names=np.array(names, dtype=str),
                        positions=heads[:, 0] if one else heads, uv=uv[:, 0] if one else uv,
                        visible=visible[:, 0] if one else visible, fps=spec.fps)
    kps = get_keypoint_set(kp_set)
    X = np.full((motion.n_frames, P, len(kps.joints), 3), np.nan)
    for kp_name, bone in character["evaluate"].items() | (character.get("evaluate_hands", {}).items() if spec.hands
                                                           else set()):
        X[:, :, kps.index(kp_name)] = heads[:, :, names.index(bone)]
    if spec.hands:
        for p in range(P):
            _fingertips(X[:, p], kps, {b: tails[:, p, names.index(b)] - heads[:, p, names.index(b)] for b in
                                       character.get("evaluate_hands", {}).values()},
                        character.get("evaluate_hands", {}))
    write_points3d(Points3D(X, np.zeros(X.shape[:3]), np.ones(X.shape[:3] + (len(rig),), bool), rig.names,
                            kp_set, spec.fps, {"source": "rendered ground truth", "character": str(cpath)}),
                   gdir / "points3d.h5")
    (gdir / "render.json").write_text(json.dumps(asdict(spec), indent=1))
    return out


def _fingertips(X: np.ndarray, kps, axes: dict[str, np.ndarray], bones: dict[str, str]) -> None:
    """In place: each fingertip of ``X`` (F, K, 3) beyond its finger's last joint, along that joint's bone
    (``axes``: bone → (F, 3) head-to-tail), as far as body52's fingertip lies beyond its last joint relative
    to the segment before it (the character's last finger bones are only a few mm long)."""
    spec = load_skeleton("body52")
    for side in ("left", "right"):
        for finger, (a, b) in {"thumb": ("mcp", "ip"), "index": ("pip", "dip"), "middle": ("pip", "dip"),
                               "ring": ("pip", "dip"), "pinky": ("pip", "dip")}.items():
            joint = f"{side.capitalize()}Hand{finger.capitalize()}3"
            ratio = np.linalg.norm(spec.tips[joint]) / np.linalg.norm(spec.skeleton.offsets[spec.skeleton.index(joint)])
            pa, pb = X[:, kps.index(f"{side}_{finger}_{a}")], X[:, kps.index(f"{side}_{finger}_{b}")]
            d = axes[bones[f"{side}_{finger}_{b}"]]
            d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
            X[:, kps.index(f"{side}_{finger}_tip")] = pb + ratio * np.linalg.norm(pb - pa, axis=1, keepdims=True) * d

