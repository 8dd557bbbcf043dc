"""Rendered takes of several people (``mocap synth render --people N``) and their from-pixels scoring."""

import numpy as np
import pytest

from mocap.bench.people_e2e import match_people


def _truth(F=40, K=12, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.3, (K, 3))
    t = np.linspace(0, 1, F)[:, None, None]
    a = base + np.array([0.6, 0, 1]) + t * np.array([0, 1.0, 0])
    b = base + np.array([-0.6, 0, 1]) - t * np.array([0, 1.0, 0])
    return np.stack([a, b], axis=1)  # (F, 2, K, 3)


def test_match_people_finds_each_person_behind_shuffled_slots_and_bias():
    rng = np.random.default_rng(1)
    truth = _truth()
    F, _, K, _ = truth.shape
    bias = rng.normal(0, 0.02, (K, 3))  # a detector's joint centres sit at a constant offset
    X = np.full((F, 3, K, 3), np.nan)
    X[:, 2] = truth[:, 0] + bias + rng.normal(0, 0.005, (F, K, 3))  # person 0 is slot 2
    X[:, 0] = truth[:, 1] + bias + rng.normal(0, 0.005, (F, K, 3))  # person 1 is slot 0
    X[:5, 1] = truth[:5, 0] + np.array([3.0, 3.0, 0.0])  # a short-lived track far from anyone
    X[10:14, 0] = np.nan  # person 1 lost for four frames
    X[20, 0, : K // 2 + 1] = np.nan  # and too few keypoints in one more
    r = match_people(X, truth)
    p0, p1 = r["people"]
    assert (p0["reconstructed"], p1["reconstructed"]) == (2, 0)
    assert p0["frames"] == 1.0 and p1["frames"] == pytest.approx((F - 5) / F)
    assert r["both_frames"] == pytest.approx((F - 5) / F)
    assert p0["swapped_frames"] == 0 and p1["swapped_frames"] == 0
    assert p0["mpjpe_raw_mm"] > 2 * p0["mpjpe_bias_corrected_mm"]
    assert 4 < p0["mpjpe_bias_corrected_mm"] < 14 and 4 < p1["mpjpe_bias_corrected_mm"] < 14


def test_match_people_counts_swapped_identities_and_missing_people():
    truth = _truth(F=30)
    X = truth.copy()
    X[15:] = truth[15:, ::-1]  # the two tracks exchange people half-way
    r = match_people(X, truth)
    assert sum(p["swapped_frames"] for p in r["people"]) == 30  # 15 frames wrong for each true person
    assert r["both_frames"] == pytest.approx(0.5)  # the matched track is far from its person after the swap
    one = match_people(truth[:, :1], truth)  # one reconstructed person for two true ones
    assert [p["reconstructed"] for p in one["people"]] == [0, -1] and one["both_frames"] == 0.0


def test_render_spec_rejects_bad_people():
    from mocap.synth.render import RenderSpec

    with pytest.raises(ValueError, match="people: expected a whole number ≥ 1, got 0"):
        RenderSpec("x.bvh", people=0)
    with pytest.raises(ValueError, match="spacing: expected 0.3-5 m between people, got 0.1"):
        RenderSpec("x.bvh", people=2, spacing=0.1)


@pytest.mark.shared_data
def test_people_motions_side_by_side_turned_round(shared_data):
    from mocap.synth.render import RenderSpec, people_motions

    spec = RenderSpec(str(shared_data / "bvh" / "cmu_01_01.bvh"), start_s=2.0, seconds=4.0, fps=30.0, people=2,
                      spacing=1.2)
    m = people_motions(spec)
    solo = people_motions(RenderSpec(spec.bvh, start_s=2.0, seconds=4.0, fps=30.0))
    assert len(m) == 2 and len(solo) == 1
    np.testing.assert_allclose(m[0].fk()[1] - m[0].root_positions[:, None],
                               solo[0].fk()[1] - solo[0].root_positions[:, None], atol=1e-9)
    r0, r1 = m[0].root_positions[:, :2], m[1].root_positions[:, :2]
    gap = np.linalg.norm(r0 - r1, axis=1)
    assert 0.3 < gap.min() < 1.5  # they pass near each other, never through each other
    # person 1 is turned round: its hips point the other way from a body that plays the same segment alone
    _, j1 = m[1].fk()
    alone = people_motions(RenderSpec(spec.bvh, start_s=6.0, seconds=4.0, fps=30.0))[0]
    _, ja = alone.fk()
    sk = m[1].skeleton
    hips = sk.index("LeftUpLeg"), sk.index("RightUpLeg")
    d1, da = j1[:, hips[0], :2] - j1[:, hips[1], :2], ja[:, hips[0], :2] - ja[:, hips[1], :2]
    np.testing.assert_allclose(d1, -da, atol=1e-6)


@pytest.mark.slow
@pytest.mark.shared_data
def test_render_two_people(shared_data, tmp_path):
    pytest.importorskip("bpy")
    from mocap.io.hdf5 import read_points3d
    from mocap.io.rig_files import read_rig
    from mocap.io.video import read_frames
    from mocap.synth.render import RenderSpec, render_session

    spec = RenderSpec(str(shared_data / "bvh" / "cmu_01_03.bvh"), start_s=2.0, seconds=0.04, fps=30.0, cameras=2,
                      size=(320, 240), samples=2, people=2)
    out = render_session(spec, tmp_path / "take", parts=("take",))
    rig = read_rig(out / "calibration" / "rig.toml")  # no board take: the true rig
    gt = np.load(out / "groundtruth" / "rig_joints.npz")
    names = list(gt["names"])
    B = len(names)
    assert gt["positions"].shape == (1, 2, B, 3) and gt["uv"].shape == (1, 2, 2, B, 2)
    assert gt["visible"].shape == (1, 2, 2, B)
    X = read_points3d(out / "groundtruth" / "points3d.h5").xyz
    assert X.shape[:2] == (1, 2)
    hips = gt["positions"][0, :, names.index("root")]
    assert 0.6 < np.linalg.norm(hips[0, :2] - hips[1, :2]) < 2.0
    frame = next(iter(read_frames(out / "videos" / f"{rig[0].name}.mp4")))[1].astype(float)
    corner = frame[:8, :8].reshape(-1, 3).mean(0)
    for p in range(2):  # each person's torso is drawn where the truth projects it
        u, v = gt["uv"][0, p, 0, names.index("spine03")].astype(int)
        assert np.abs(frame[v - 2:v + 3, u - 2:u + 3].reshape(-1, 3).mean(0) - corner).max() > 25
