import numpy as np
import pytest
from conftest import toy_take

from mocap.config import config_from_dict
from mocap.keypoint_sets import get_keypoint_set
from mocap.optim.refine import RefineConfig, refine_person
from mocap.stages import refine, triangulate
from mocap.types import Keypoints2D, Points3D


def mpjpe(X, truth):
    return float(np.nanmean(np.linalg.norm(X - truth, axis=-1)))


def bone_std(X, bones):
    return np.mean([np.nanstd(np.linalg.norm(X[:, a] - X[:, b], axis=-1)) for a, b in bones])


@pytest.fixture(scope="module")
def take():
    return toy_take(frames=400, noise_px=2.0, outliers=0.05, dropouts=0.1, seed=3)


@pytest.fixture(scope="module")
def solved(take):
    rig, kp, truth, masks = take
    tri = triangulate.run(rig, kp)
    ref, summaries = refine.run(rig, kp, tri)
    return tri, ref, summaries


def test_refine_beats_triangulation_and_nears_the_oracle(take, solved, coco):
    rig, kp, truth, masks = take
    tri, ref, (summary,) = solved
    clean = kp.data.copy()
    clean[:, :, 0][masks["outlier"]] = np.nan
    kp_clean = Keypoints2D(clean, kp.camera_names, kp.keypoint_set, kp.fps)
    F, J = truth.shape[:2]
    start = Points3D(truth[:, None], np.zeros((F, 1, J)), np.ones((F, 1, J, len(rig)), bool), rig.names,
                     "coco17", kp.fps)
    oracle, _ = refine.run(rig, kp_clean, start, refine.Config(solver=RefineConfig(noise_px=2.0, loss="l2")))
    e_tri, e_ref, e_orc = (mpjpe(p.xyz[:, 0], truth) for p in (tri, ref, oracle))
    assert e_ref < 0.7 * e_tri
    assert e_ref < 1.15 * e_orc
    assert bone_std(ref.xyz[:, 0], coco.bones) < 0.5 * bone_std(tri.xyz[:, 0], coco.bones)
    assert np.all(np.isfinite(ref.xyz))
    assert summary.usable and summary.iterations > 0 and summary.final_cost < summary.initial_cost
    assert 1.6 < summary.noise_px < 2.4  # estimated from the residuals
    injected = int(masks["outlier"].sum())
    assert injected <= summary.rejected < 1.5 * injected


def test_refine_keeps_views_consistent_with_outliers(take, solved):
    rig, kp, truth, masks = take
    _, ref, _ = solved
    kept = np.moveaxis(ref.views[:, 0], 2, 1)  # (F, C, J)
    assert kept[masks["outlier"]].mean() < 0.02
    present = np.isfinite(kp.data[:, :, 0, :, 0]) & ~masks["outlier"]
    assert kept[present].mean() > 0.98
    assert np.nanmedian(ref.reproj_err) < 3.0


def test_long_gaps_become_nan_and_short_gaps_are_filled(take):
    rig, kp, truth, _ = take
    data = kp.data.copy()
    data[100:110, :, :, 5] = np.nan  # 10 frames unseen by every camera
    data[200:300, :, :, 9] = np.nan  # 100 frames
    kp2 = Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)
    pts, _ = refine.run(rig, kp2, triangulate.run(rig, kp2), refine.Config(solver=RefineConfig(max_gap_s=0.5)))
    X = pts.xyz[:, 0]
    assert np.all(np.isfinite(X[100:110, 5]))
    assert np.linalg.norm(X[100:110, 5] - truth[100:110, 5], axis=-1).max() < 0.05
    assert np.all(np.isnan(X[200:300, 9])) and np.all(np.isfinite(X[:200, 9]))
    assert not pts.views[200:300, 0, 9].any()


def test_persons_without_points_stay_empty(take):
    rig, kp, _, _ = take
    data = np.concatenate([kp.data, np.full_like(kp.data, np.nan)], axis=2)
    kp2 = Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)
    pts, summaries = refine.run(rig, kp2, triangulate.run(rig, kp2))
    assert len(summaries) == 1
    assert np.all(np.isnan(pts.xyz[:, 1])) and np.all(np.isfinite(pts.xyz[:, 0]))


def test_bad_configuration_and_shapes_are_reported(take):
    rig, kp, truth, _ = take
    with pytest.raises(ValueError, match="loss must be cauchy, huber or l2, got 'tukey'"):
        RefineConfig(loss="tukey")
    with pytest.raises(ValueError, match="accel_sigma must be positive"):
        RefineConfig(accel_sigma=0)
    with pytest.raises(ValueError, match="shapes disagree"):
        refine_person(rig, kp.xy[:, :, 0], kp.score[:, :, 0], truth[:10], [], kp.fps)


@pytest.mark.parametrize("loss", ["huber", "cauchy"])
def test_losses_and_fixed_noise(take, loss):
    rig, kp, truth, _ = take
    tri = triangulate.run(rig, kp)
    pts, (s,) = refine.run(rig, kp, tri, refine.Config(solver=RefineConfig(loss=loss, noise_px=2.0)))
    assert s.noise_px == 2.0
    assert mpjpe(pts.xyz[:, 0], truth) < 0.7 * mpjpe(tri.xyz[:, 0], truth)


def test_short_bones_vary_by_a_share_of_their_length_not_by_a_centimetre(take, solved):
    """σ_bone = min(bone_sigma, bone_share · L): a 10 cm bone held to 1 cm varied by ~10 % before; now
    its spread, relative to its length, is as small as a long bone's, and the points stay as accurate."""
    rig, kp, truth, _ = take
    tri, ref, _ = solved
    loose, _ = refine.run(rig, kp, tri, refine.Config(solver=RefineConfig(bone_share=1.0)))  # absolute 1 cm only
    from mocap.keypoint_sets import get_keypoint_set

    bones = get_keypoint_set(kp.keypoint_set).bones
    L = np.array([np.nanmedian(np.linalg.norm(truth[:, a] - truth[:, b], axis=-1)) for a, b in bones])
    short = [bone for bone, length in zip(bones, L, strict=True) if length < 0.2]
    assert short, "the toy take has no short bone"

    def cv(X):
        return np.mean([np.nanstd(d := np.linalg.norm(X[:, a] - X[:, b], axis=-1)) / np.nanmean(d) for a, b in short])

    assert cv(ref.xyz[:, 0]) < 0.9 * cv(loose.xyz[:, 0])  # 0.81 measured on this take (coco17: face, hips)
    assert mpjpe(ref.xyz[:, 0], truth) <= 1.02 * mpjpe(loose.xyz[:, 0], truth)


@pytest.mark.parametrize("fps, gap_s, filled", [(120.0, 0.4, True), (25.0, 0.8, False)])
def test_the_longest_gap_filled_is_in_seconds_whatever_the_frame_rate(fps, gap_s, filled):
    """refine.max_gap_s (0.5 s): 0.4 s unseen at 120 fps (48 frames) is bridged, 0.8 s at 25 fps (20 frames) is
    not; a limit in frames (30) did the opposite at both rates."""
    rig, kp, truth, _ = toy_take(frames=int(3 * fps), noise_px=1.0, outliers=0.0, dropouts=0.0, seed=5, fps=fps)
    a, n = int(fps), int(round(gap_s * fps))
    data = kp.data.copy()
    data[a:a + n, :, :, 9] = np.nan  # the left wrist unseen by every camera
    kp2 = Keypoints2D(data, kp.camera_names, kp.keypoint_set, fps)
    X = refine.run(rig, kp2, triangulate.run(rig, kp2))[0].xyz[:, 0]
    assert np.isfinite(X[:a, 9]).all() and np.isfinite(X[a + n:, 9]).all()
    assert np.isfinite(X[a:a + n, 9]).all() if filled else np.isnan(X[a:a + n, 9]).all()


def test_a_renamed_setting_says_what_replaced_it():
    with pytest.raises(ValueError, match=r"'max_gap_frames' was renamed: refine.max_gap_s, in seconds"):
        config_from_dict(refine.Config, {"max_gap_frames": 30}, "refine")


def test_exact_detections_stay_exact():
    """Noise-free keypoints (a synthetic take with --noise-px 0): σ was estimated 0, every observation weighed
    infinitely and its zero residual became NaN (dropped): refine pulled the exact points 10 mm away (max 25 mm),
    "NOT usable: RMS 3.6 px is large against σ 0.0 px"."""
    rig, kp, truth, _ = toy_take(frames=120, noise_px=0.0, outliers=0.0, dropouts=0.0)
    pts, (s,) = refine.run(rig, kp, triangulate.run(rig, kp))
    assert s.usable, s
    assert np.nanmax(np.linalg.norm(pts.xyz[:, 0] - truth, axis=-1)) < 1e-4


def test_a_person_seen_in_part_of_the_take_is_solved_over_that_part_only(take, monkeypatch):
    """A person seen in frames 150-230 of 400: the solver is given those 80 frames, not the 400 (the frames
    outside hold nothing to measure: a person seen for 2 s of a 100 s take took 25-44 s a solve); NaN outside, and
    within millimetres of the whole take's solve (whose empty frames' bone terms pulled on the edges a little)."""
    import mocap.optim.refine as refine_module

    rig, kp, truth, _ = take
    data = kp.data.copy()
    data[:150] = np.nan
    data[230:] = np.nan
    kp2 = Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)
    tri = triangulate.run(rig, kp2)
    sizes = []
    real = refine_module._Problem

    def spy(rig_, uv, *a, **k):
        sizes.append(len(uv))
        return real(rig_, uv, *a, **k)

    monkeypatch.setattr(refine_module, "_Problem", spy)
    w = triangulate.observation_weights(kp2, 0.0)[:, :, 0]
    bones = get_keypoint_set(kp.keypoint_set).bones
    X, err, views, s = refine_person(rig, kp2.xy[:, :, 0], w, tri.xyz[:, 0], bones, kp.fps)
    assert sizes and set(sizes) == {80} and s.usable
    assert np.all(np.isnan(X[:150])) and np.all(np.isnan(X[230:])) and not views[:150].any()
    assert np.all(np.isfinite(X[150:230]))
    monkeypatch.setattr(refine_module, "on_span", lambda *a: None)  # the whole take, as before
    whole = refine_person(rig, kp2.xy[:, :, 0], w, tri.xyz[:, 0], bones, kp.fps)[0]
    assert set(sizes) == {80, 400} and np.array_equal(np.isnan(X), np.isnan(whole))
    assert np.nanmax(np.linalg.norm(X - whole, axis=-1)) < 0.01
    e, e_whole = (mpjpe(Y[150:230], truth[150:230]) for Y in (X, whole))
    assert e < 1.03 * e_whole and e < 0.7 * mpjpe(tri.xyz[150:230, 0], truth[150:230])
