import numpy as np
import pytest

from mocap.io.bvh import read_bvh
from mocap.io.hdf5 import read_points3d
from mocap.session import Session
from mocap.synth import (
    CorruptionSpec,
    RigSpec,
    corrupt,
    keypoints_from_motion,
    load_marker_map,
    make_take,
    ring_rig,
    write_session,
)

CMU_SCALE = 0.056444


@pytest.fixture(scope="module")
def clip(shared_data):
    return shared_data / "bvh" / "cmu_01_01.bvh"


@pytest.mark.shared_data
def test_bvh_reader_reads_cmu_clip(clip):
    motion = read_bvh(clip, scale=CMU_SCALE)
    sk = motion.skeleton
    assert motion.n_frames == 2752 and abs(motion.fps - 120) < 0.01
    assert len(sk.joint_names) == 31 + 7  # 31 joints and 7 end sites
    assert sk.joint_names[0] == "Hips" and "LeftToeBase_end" in sk.joint_names
    _, pos = motion.fk()
    height = pos[0, sk.index("Head_end"), 1] - pos[0, sk.index("LeftToeBase"), 1]
    assert 1.4 < height < 1.9  # metres, Y up in the file
    span = np.linalg.norm(pos[0, sk.index("LeftHand")] - pos[0, sk.index("RightHand")])
    assert 1.3 < span < 1.9  # frame 0 is a T-pose: arm span ≈ height


@pytest.mark.shared_data
def test_keypoints_stand_upright_in_z_up_world(clip):
    mm = load_marker_map()
    motion = read_bvh(clip, scale=mm.scale)
    from mocap.synth import keypoints_from_motion

    kp = keypoints_from_motion(motion, mm)
    names = list(__import__("mocap.keypoint_sets", fromlist=["x"]).get_keypoint_set("blazepose33").joints)
    feet = kp[:, [names.index("left_heel"), names.index("right_heel")], 2]
    assert np.percentile(feet.min(axis=1), 50) < 0.1  # standing on the floor
    assert np.all(kp[:, names.index("nose"), 2] > kp[:, names.index("left_hip"), 2])
    # facing −Y at rest: the nose is in front (−Y) of the ears
    ears = kp[0, [names.index("left_ear"), names.index("right_ear")]].mean(0)
    heading = kp[0, names.index("nose")] - ears
    assert np.linalg.norm(heading[:2]) > 0.05
    # left is left: from the nose direction, the left ear is on the person's left
    left = np.cross([0, 0, 1.0], heading)  # up × forward = left
    assert np.dot(kp[0, names.index("left_ear")] - ears, left) > 0


@pytest.mark.shared_data
def test_ring_rig_sees_the_whole_motion(clip):
    take = make_take(clip, 500, rig_spec=RigSpec(n_cameras=6))
    uv = take.rig.project(take.truth)
    for c, cam in enumerate(take.rig):
        assert np.all(np.isfinite(uv[c]))
        assert np.all((uv[c] >= 0) & (uv[c] < cam.size)), cam.name
    centres = np.array([c.center for c in take.rig])
    assert np.allclose(np.diff(np.unwrap(np.arctan2(centres[:, 1], centres[:, 0]))), np.pi / 3, atol=0.5)


def test_an_arc_rig_puts_every_camera_on_one_side_looking_at_the_motion():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(200, 3)) * [0.5, 0.5, 0.4] + [1.0, -2.0, 1.0]
    rig = ring_rig(RigSpec(n_cameras=4, arc_deg=90.0, start_angle_deg=0.0), pts)
    target = (pts.min(0) + pts.max(0)) / 2
    az = np.degrees(np.unwrap([np.arctan2(*(c.center - target)[1::-1]) for c in rig]))
    assert np.allclose(az - az[0], [0, 30, 60, 90], atol=1e-9), az  # the ends included
    for cam in rig:
        assert np.all((cam.project(pts) >= 0) & (cam.project(pts) < cam.size)), cam.name
    ring = ring_rig(RigSpec(n_cameras=4, start_angle_deg=0.0), pts)
    az = np.degrees(np.unwrap([np.arctan2(*(c.center - target)[1::-1]) for c in ring]))
    assert np.allclose(az - az[0], [0, 90, 180, 270], atol=1e-9)  # a ring: as before


def test_a_zoomed_rig_has_that_focal_length_and_loses_part_of_the_motion():
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(500, 3)) * [0.5, 0.5, 0.4] + [0.0, 0.0, 1.0]
    rig, zoomed = (ring_rig(RigSpec(n_cameras=3, zoom=z), pts) for z in (1.0, 2.0))
    for cam, cam2 in zip(rig, zoomed, strict=True):
        assert cam2.K[0, 0] == pytest.approx(2.0 * cam.K[0, 0])
        np.testing.assert_allclose(cam2.cam_from_world, cam.cam_from_world)
        inside = np.all((cam2.project(pts) >= 0) & (cam2.project(pts) < cam2.size), axis=1)
        assert 0.2 < inside.mean() < 0.98  # part of the motion leaves the image
    with pytest.raises(ValueError, match="zoom must be a positive number, got 0"):
        RigSpec(zoom=0)


@pytest.mark.shared_data
def test_corruption_matches_the_requested_rates(clip):
    take = make_take(clip, 1000, corruption=CorruptionSpec(noise_px=0.0, outliers=0.05, dropouts=0.1, swaps=0.1))
    m = take.masks
    assert 0.04 < m["outlier"].mean() < 0.06
    assert 0.08 < m["dropped"].mean() < 0.14
    assert 0.08 < m["swapped"].mean() < 0.14
    run_lengths = np.diff(np.flatnonzero(np.diff(m["dropped"][:, 0, 0].astype(int)) != 0))
    assert run_lengths.max() > 3  # dropouts come in runs
    data = take.keypoints.data[:, :, 0]
    clean = np.moveaxis(take.rig.project(take.truth), 0, 1)
    ok = np.isfinite(data[..., 0]) & ~m["outlier"] & ~m["swapped"][..., None]
    assert np.allclose(data[ok][:, :2], clean[ok], atol=1e-9)  # σ = 0: exact where not corrupted


@pytest.mark.shared_data
def test_noise_level(clip):
    mm = load_marker_map()
    pts = np.random.default_rng(0).uniform(-1, 1, (2000, 33, 3)) + [0, 0, 1]
    rig = ring_rig(RigSpec(), pts)
    uv = np.moveaxis(rig.project(pts), 0, 1)
    data, _ = corrupt(uv, rig, mm.keypoint_set, CorruptionSpec(noise_px=2.0, outliers=0, dropouts=0))
    err = data[:, :, 0, :, :2] - uv
    assert abs(np.nanstd(err) - 2.0) < 0.05


@pytest.mark.shared_data
def test_written_session_reloads(clip, tmp_path):
    take = make_take(clip, 60)
    root = write_session(take, tmp_path / "s")
    s = Session(root)
    kp = s.keypoints2d()
    assert kp.keypoint_set == "blazepose33" and kp.fps == 60.0 and kp.shape == (60, 4, 1, 33)
    assert np.allclose(kp.data, take.keypoints.data, atol=1e-4, equal_nan=True)
    assert np.allclose(read_points3d(root / "groundtruth" / "points3d.h5").xyz[:, 0], take.truth)
    fifty = make_take(clip, 10, fps=50.0)  # 120 fps → 50 fps: resampled, not refused
    assert fifty.truth.shape == (10, 33, 3) and np.all(np.isfinite(fifty.truth))


# --- clips from other naming schemes and frame rates -------------------------------------------

def mixamo_motion(frames=100, fps=50.0, prefix="mixamorig:", names=None):
    """A Mixamo-like skeleton (Y up, centimetres, T-pose facing +Z, its left at +X) moving smoothly."""
    from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_quat
    from mocap.types import Motion, Skeleton

    rows = [("Hips", None, (0, 100, 0)), ("Spine", "Hips", (0, 10, 0)), ("Spine1", "Spine", (0, 10, 0)),
            ("Spine2", "Spine1", (0, 10, 0)), ("Neck", "Spine2", (0, 15, 0)), ("Head", "Neck", (0, 10, 0)),
            ("HeadTop_End", "Head", (0, 18, 0))]
    for side, x in (("Left", 1), ("Right", -1)):
        rows += [(f"{side}Shoulder", "Spine2", (5 * x, 10, 0)), (f"{side}Arm", f"{side}Shoulder", (12 * x, 0, 0)),
                 (f"{side}ForeArm", f"{side}Arm", (28 * x, 0, 0)), (f"{side}Hand", f"{side}ForeArm", (25 * x, 0, 0)),
                 (f"{side}HandIndex1", f"{side}Hand", (8 * x, 0, 0))]
    for side, x in (("Left", 1), ("Right", -1)):
        rows += [(f"{side}UpLeg", "Hips", (9 * x, -5, 0)), (f"{side}Leg", f"{side}UpLeg", (0, -42, 0)),
                 (f"{side}Foot", f"{side}Leg", (0, -42, 0)), (f"{side}ToeBase", f"{side}Foot", (0, -8, 12)),
                 (f"{side}Toe_End", f"{side}ToeBase", (0, 0, 6))]
    base = [r[0] for r in rows]
    rename = names or (lambda n: prefix + n)
    J = len(rows)
    parents = [-1] + [base.index(r[1]) for r in rows[1:]]
    rng = np.random.default_rng(3)
    t = np.arange(frames)[:, None] / fps
    aa = 0.4 * np.sin(t * rng.uniform(1, 4, (1, J * 3)) + rng.uniform(0, 6, (1, J * 3))).reshape(frames, J, 3)
    root = np.concatenate([40 * np.sin(t), 100 + 3 * np.sin(5 * t), 60 * t], axis=1)
    sk = Skeleton(tuple(rename(n) for n in base), np.array(parents), np.array([r[2] for r in rows], float))
    return Motion(sk, matrix_to_quat(axis_angle_to_matrix(aa)), root, fps)


def _bones(truth, pairs):
    from mocap.keypoint_sets import get_keypoint_set

    names = get_keypoint_set("blazepose33").joints
    return np.stack([np.linalg.norm(truth[:, names.index(a)] - truth[:, names.index(b)], axis=-1) for a, b in pairs],
                    axis=1)


LIMBS = [("left_shoulder", "left_elbow"), ("right_elbow", "right_wrist"), ("left_hip", "left_knee"),
         ("right_knee", "right_ankle"), ("left_wrist", "left_index")]


@pytest.mark.parametrize("prefix", ["mixamorig:", ""])
def test_mixamo_clip_makes_a_sensible_take(tmp_path, prefix):
    from mocap.io.bvh import write_bvh
    from mocap.keypoint_sets import get_keypoint_set

    path = write_bvh(mixamo_motion(prefix=prefix), tmp_path / "mixamo.bvh")
    take = make_take(path, 80, fps=50.0)
    truth = take.truth
    assert truth.shape == (80, 33, 3) and np.all(np.isfinite(truth))
    bones = _bones(truth, LIMBS)
    assert np.ptp(bones, axis=0).max() < 1e-9  # rigid bones
    assert np.allclose(bones[0, :4], [0.28, 0.25, 0.42, 0.42], atol=1e-6)  # centimetres became metres
    names = get_keypoint_set("blazepose33").joints
    assert np.all(truth[:, names.index("nose"), 2] > truth[:, names.index("left_hip"), 2] + 0.3)  # Z up
    rest = mixamo_motion(frames=1, prefix=prefix)
    rest = type(rest)(rest.skeleton, np.tile([1.0, 0, 0, 0], (1, len(rest.skeleton.joint_names), 1)),
                      rest.root_positions, 50.0)
    from mocap.synth.bvh_map import load_motion

    _, mm = load_motion(path)
    kp = keypoints_from_motion(rest_in_metres(rest, mm.scale), mm)[0]
    assert kp[names.index("left_shoulder"), 0] > kp[names.index("right_shoulder"), 0]  # its left is +X
    ears = kp[[names.index("left_ear"), names.index("right_ear")]].mean(0)
    assert kp[names.index("nose"), 1] < ears[1]  # it faces −Y


def rest_in_metres(motion, scale):
    from mocap.motion import scale_motion

    return scale_motion(motion, scale)


def test_generic_names_are_mapped(tmp_path):
    from mocap.io.bvh import write_bvh

    unreal = {"Hips": "pelvis", "Spine": "spine_01", "Head": "head", "LeftArm": "upperarm_l", "RightArm": "upperarm_r",
              "LeftForeArm": "lowerarm_l", "RightForeArm": "lowerarm_r", "LeftHand": "hand_l", "RightHand": "hand_r",
              "LeftUpLeg": "thigh_l", "RightUpLeg": "thigh_r", "LeftLeg": "calf_l", "RightLeg": "calf_r",
              "LeftFoot": "foot_l", "RightFoot": "foot_r", "LeftToeBase": "ball_l", "RightToeBase": "ball_r"}
    blender = {"LeftArm": "DEF-upper_arm.L", "LeftForeArm": "DEF-forearm.L", "LeftHand": "DEF-hand.L",
               "LeftUpLeg": "DEF-thigh.L", "LeftLeg": "DEF-shin.L", "LeftFoot": "DEF-foot.L"}
    blender |= {k.replace("Left", "Right"): v.replace(".L", ".R") for k, v in blender.items()}
    for table in (unreal, blender):
        path = write_bvh(mixamo_motion(names=lambda n, t=table: t.get(n, n)), tmp_path / "g.bvh")
        truth = make_take(path, 30, fps=50.0).truth
        assert np.ptp(_bones(truth, LIMBS), axis=0).max() < 1e-9


def test_unmappable_joints_are_listed(tmp_path):
    from mocap.io.bvh import write_bvh

    odd = {"LeftForeArm": "Bone.007", "RightLeg": "Bone.012"}
    path = write_bvh(mixamo_motion(names=lambda n: odd.get(n, n)), tmp_path / "odd.bvh")
    with pytest.raises(ValueError, match=r"odd\.bvh: cannot map the BVH joints to keypoints: no joint found for "
                                         r"left_forearm \(forearm/lowerarm\), right_shin .*joints in the file: .*"
                                         r"'Bone\.007'"):
        make_take(path, 10)
    with pytest.raises(ValueError, match=r"odd\.bvh: marker map 'cmu_blazepose33' needs joints .*'LThumb_end'"):
        make_take(path, 10, marker_map="cmu_blazepose33")


def test_50_fps_clip_is_resampled_to_60(tmp_path):
    from mocap.io.bvh import write_bvh
    from mocap.synth.groundtruth import load_clip

    path = write_bvh(mixamo_motion(frames=101, fps=50.0), tmp_path / "fifty.bvh")
    native = load_clip(path, "auto", fps=50.0)
    sixty = load_clip(path, "auto", fps=60.0)
    assert native.shape[0] == 101 and sixty.shape[0] == 121  # both span 2 s
    assert np.allclose(sixty[::6], native[::5], atol=1e-6)  # coincident times: every 0.1 s
    assert np.ptp(_bones(sixty, LIMBS), axis=0).max() < 1e-9  # slerp keeps bones rigid
    mid = (native[:-1] + native[1:]) / 2  # between samples: close to the chord of the native frames
    step = np.abs(np.diff(native, axis=0)).max()
    assert np.abs(sixty[3::6] - mid[2::5]).max() < step
    assert make_take(path, 200, fps=60.0).keypoints.fps == 60.0


def test_resample_slerp_matches_known_rotation():
    from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_quat
    from mocap.synth.bvh_map import resample
    from mocap.types import Motion, Skeleton

    angles = np.linspace(0, 1.5, 4)  # 1 rad/s about Z at 2 fps
    q = matrix_to_quat(axis_angle_to_matrix(np.stack([0 * angles, 0 * angles, angles], 1)))[:, None]
    m = Motion(Skeleton(("a",), np.array([-1]), np.zeros((1, 3))), q, np.stack([angles, 0 * angles, 0 * angles], 1),
               2.0)
    r = resample(m, 3.0)
    assert r.n_frames == 5 and r.fps == 3.0
    expect = matrix_to_quat(axis_angle_to_matrix(np.array([0, 0, 1.0]) * (np.arange(5) / 3)[:, None]))
    assert np.allclose(r.rotations[:, 0], expect, atol=1e-12)
    assert np.allclose(r.root_positions[:, 0], np.arange(5) / 3)


def test_frames_zero_and_empty_clips_fail_fast(tmp_path):
    import signal

    from mocap.io.bvh import write_bvh
    from mocap.synth.groundtruth import clip_points, load_clip

    def stop(*_):
        raise TimeoutError("hung")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(60)
    try:
        path = write_bvh(mixamo_motion(frames=3), tmp_path / "m.bvh")
        zero = tmp_path / "zero.bvh"
        text = path.read_text()
        zero.write_text(text[: text.index("Frames:")] + "Frames: 0\nFrame Time: 0.02\n")
        with pytest.raises(ValueError, match=r"zero\.bvh: line \d+: .*Frames: 0: the file holds no motion"):
            make_take(zero, 100)
        one = load_clip(path, "auto", fps=50.0, n_frames=7, start=2)  # a single frame is held
        assert one.shape[0] == 7 and np.allclose(one, one[0])
        from mocap.synth.bvh_map import load_motion

        motion, mm = load_motion(path)
        with pytest.raises(ValueError, match="start frame 3 is outside the clip's 3 frames"):
            clip_points(motion, mm, 50.0, 10, start=3)
        with pytest.raises(ValueError, match="n_frames must be at least 1, got 0"):
            clip_points(motion, mm, 50.0, 0)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.shared_data
def test_cmu_clip_renamed_to_mixamo_matches_the_cmu_map(clip, tmp_path):
    """The generic map of a CMU clip whose joints carry Mixamo names puts the limb joints where the
    CMU preset does (same joints; units and rest axes measured instead of given)."""
    from mocap.keypoint_sets import get_keypoint_set

    text = clip.read_text()
    renamed = tmp_path / "mixamo_cmu.bvh"
    renamed.write_text(text.replace("ROOT ", "ROOT mixamorig:").replace("JOINT ", "JOINT mixamorig:"))
    cmu = make_take(clip, 240, fps=60.0).truth
    mixamo = make_take(renamed, 240, fps=60.0).truth
    names = get_keypoint_set("blazepose33").joints
    limbs = [names.index(f"{s}_{p}") for s in ("left", "right")
             for p in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")]
    assert np.abs(mixamo[:, limbs] - cmu[:, limbs]).max() < 0.05  # metres: only the rest axes differ slightly
    assert np.nanmedian(np.linalg.norm(mixamo - cmu, axis=-1)) < 0.05


def test_a_leading_reference_pose_is_not_part_of_the_take(shared_data):
    """CMU clips start in a T-pose and jump to the motion: the ground truth must not contain that
    teleport (a 0.6 m jump in one frame made every benchmark's maximum error a 0.7 m artefact)."""
    from mocap.synth.groundtruth import MAX_JOINT_SPEED, load_clip

    pts = load_clip(shared_data / "bvh" / "cmu_01_01.bvh", fps=60.0, n_frames=120)
    speed = np.linalg.norm(np.diff(pts, axis=0), axis=-1).max() * 60.0
    assert speed < MAX_JOINT_SPEED
