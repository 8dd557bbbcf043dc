import numpy as np
import pytest

from mocap.io.bvh import read_bvh
from mocap.io.hdf5 import read_points3d
from mocap.session import Session
from mocap.synth import CorruptionSpec, RigSpec, corrupt, load_marker_map, make_take, ring_rig, write_session

pytestmark = pytest.mark.shared_data
CMU_SCALE = 0.056444


@pytest.fixture(scope="module")
def clip(shared_data):
    return shared_data / "bvh" / "cmu_01_01.bvh"


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


def test_ring_rig_sees_the_whole_motion(clip):
    take = make_take(clip, 500, rig_spec=RigSpec(n_cameras=6))
    uv = take.rig.project(take.truth)
    for c, cam in enumerate(take.rig):
        assert np.all(np.isfinite(uv[c]))
        assert np.all((uv[c] >= 0) & (uv[c] < cam.size)), cam.name
    centres = np.array([c.center for c in take.rig])
    assert np.allclose(np.diff(np.unwrap(np.arctan2(centres[:, 1], centres[:, 0]))), np.pi / 3, atol=0.5)


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


def test_noise_level(clip):
    mm = load_marker_map()
    pts = np.random.default_rng(0).uniform(-1, 1, (2000, 33, 3)) + [0, 0, 1]
    rig = ring_rig(RigSpec(), pts)
    uv = np.moveaxis(rig.project(pts), 0, 1)
    data, _ = corrupt(uv, rig, mm.keypoint_set, CorruptionSpec(noise_px=2.0, outliers=0, dropouts=0))
    err = data[:, :, 0, :, :2] - uv
    assert abs(np.nanstd(err) - 2.0) < 0.05


def test_written_session_reloads(clip, tmp_path):
    take = make_take(clip, 60)
    root = write_session(take, tmp_path / "s")
    s = Session(root)
    kp = s.keypoints2d()
    assert kp.keypoint_set == "blazepose33" and kp.fps == 60.0 and kp.shape == (60, 4, 1, 33)
    assert np.allclose(kp.data, take.keypoints.data, atol=1e-4, equal_nan=True)
    assert np.allclose(read_points3d(root / "groundtruth" / "points3d.h5").xyz[:, 0], take.truth)
    with pytest.raises(ValueError, match="integer frame stride"):
        make_take(clip, 10, fps=50.0)
