"""Refine's cost follows the observations that exist: the lean pinhole projection (same values and Jacobians
as the distortion model's formulas), the observation blocks, a hand missing from many views costs nothing and
the refined hands stay near the truth, and the views-agree check reads the body alone."""

import numpy as np
import pytest
from test_hands_triangulate import hands_take

import mocap.optim.refine as refine_module
import mocap.optim.refine_obs as refine_obs
from mocap.geometry.camera import distort, project, project_rows
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.keypoint_sets import get_keypoint_set, joint_groups
from mocap.optim.refine import RefineConfig, refine_person
from mocap.optim.refine_obs import Observations
from mocap.stages import triangulate
from mocap.types import Camera


def camera(model="pinhole"):
    T = np.eye(4)
    T[:3, :3] = axis_angle_to_matrix(np.array([0.2, -0.1, 0.3]))
    T[:3, 3] = [0.2, -0.1, 2.5]
    K = np.array([[1000.0, 0.7, 960.0], [0.0, 990.0, 540.0], [0.0, 0.0, 1.0]])
    dist = np.array([-0.25, 0.08, 0.002, -0.001, -0.01]) if model == "pinhole" else np.array([0.05, -0.01, 0.002, 0.0])
    return Camera("cam", K, dist, T, (1920, 1080), model)


def test_pinhole_projection_and_jacobian_are_the_distortion_formulas():
    """The flat pinhole path against A · J_distort · d(x/z, y/z)/dXc · R written from :func:`distort`,
    on a batch shaped (T, J, 3), with a point behind the camera NaN in pixels and Jacobian."""
    cam = camera()
    X = np.random.default_rng(0).uniform(-0.8, 0.8, (7, 5, 3))
    X[3, 2] = cam.center - 1.5 * cam.R[2]  # behind the optical centre
    uv, J = project(cam, X, jacobian=True)
    Xc = X @ cam.R.T + cam.t
    xy = Xc[..., :2] / Xc[..., 2:]
    xyd, Jd = distort(xy, cam.dist, "pinhole")
    A = cam.K[:2, :2]
    N = np.zeros(X.shape[:-1] + (2, 3))
    N[..., 0, 0] = N[..., 1, 1] = 1 / Xc[..., 2]
    N[..., 0, 2], N[..., 1, 2] = -xy[..., 0] / Xc[..., 2], -xy[..., 1] / Xc[..., 2]
    expected = A @ Jd @ N @ cam.R
    ok = np.ones(X.shape[:-1], bool)
    ok[3, 2] = False
    assert np.allclose(uv[ok], (xyd @ A.T + cam.K[:2, 2])[ok], atol=1e-9)
    assert np.allclose(J[ok], expected[ok], rtol=1e-12, atol=1e-9)
    assert np.isnan(uv[3, 2]).all() and np.isnan(J[3, 2]).all()
    assert np.isfinite(uv[ok]).all() and np.isfinite(J[ok]).all()
    assert np.allclose(project(cam, X)[ok], uv[ok], atol=1e-12)


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_project_rows_is_project_coordinate_major(model):
    cam = camera(model)
    X = np.random.default_rng(1).uniform(-0.8, 0.8, (40, 3))
    uv, J = project(cam, X, jacobian=True)
    uv_rows, J_rows = project_rows(cam, X)
    assert uv_rows.shape == (2, 40) and J_rows.shape == (2, 3, 40)
    assert np.allclose(uv_rows, uv.T, atol=1e-12) and np.allclose(J_rows, J.transpose(1, 2, 0), atol=1e-12)
    with pytest.raises(ValueError, match=r"expected flat points \(n, 3\), got \(2, 20, 3\)"):
        project_rows(cam, X.reshape(2, 20, 3))


def test_observation_blocks_hold_only_what_was_observed():
    rng = np.random.default_rng(2)
    T, C, J = 9, 2, 4
    cams = [camera(), camera()]
    X = rng.uniform(-0.5, 0.5, (T, J, 3))
    mask = rng.random((T, C, J)) < 0.6
    uv = np.where(mask[..., None], rng.uniform(0, 1000, (T, C, J, 2)), 0.0)
    obs = Observations(uv, mask, chunk=4)
    assert sum(idx.size for _, idx, _ in obs.blocks) == mask.sum()
    r = obs.residuals(cams, X)
    full = np.stack([project(c, X) for c in cams], axis=1) - uv
    assert np.array_equal(np.isfinite(r[..., 0]), mask)
    assert np.allclose(r[mask], full[mask], atol=1e-9)
    w = np.where(mask & (rng.random(mask.shape) < 0.5), 1.0, 0.0)
    kept = obs.weighted(w)
    assert sum(b[1].size for b in kept) == (w > 0).sum()
    assert all(np.array_equal(b[2], b[1] % J) and (b[4] > 0).all() for b in kept)
    with pytest.raises(ValueError, match=r"does not match the mask"):
        Observations(uv[:, :, :2], mask, chunk=4)


@pytest.fixture(scope="module")
def take_missing_hands():
    """A synthetic take with hands in which a hand is missing from two views in three (whole hands, in runs
    of frames, as a hand detector misses them)."""
    from mocap.bench.hands import drop_hands

    rig, kp, truth = hands_take(frames=120, cameras=6)
    return rig, type(kp)(drop_hands(kp.data, 0.67, seed=3), kp.camera_names, kp.keypoint_set, kp.fps), truth


def _count_points(monkeypatch, module, name: str) -> list[int]:
    """Replace ``module.name(cam, points)`` by itself recording how many points each call gets."""
    sizes, real = [], getattr(module, name)

    def counting(cam, pts):
        sizes.append(len(pts))
        return real(cam, pts)

    monkeypatch.setattr(module, name, counting)
    return sizes


def test_a_hand_missing_from_a_view_costs_nothing(take_missing_hands, monkeypatch):
    """Every projection with a Jacobian is of an observation of the pass: the first linearisation of each part
    (the body, the hands: :mod:`mocap.optim.refine_parts`) projects exactly the observations there are (missing
    hands not at all), and the refined fingers stay near the truth."""
    rig, kp, truth = take_missing_hands
    sizes = _count_points(monkeypatch, refine_obs, "project_rows")
    first = {}  # problem → the points its first linearisation projected
    real_linearize = refine_module._Problem.linearize

    def spy(self, X):
        before = len(sizes)
        out = real_linearize(self, X)
        first.setdefault(id(self), sum(sizes[before:]))
        return out

    monkeypatch.setattr(refine_module._Problem, "linearize", spy)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    tri = triangulate.run(rig, kp)
    ks = get_keypoint_set(kp.keypoint_set)
    X, _, _, summary = refine_person(rig, kp.xy[:, :, 0], w, tri.xyz[:, 0], ks.bones, kp.fps, RefineConfig(),
                                     joint_groups(ks))
    hands_seen = (w[..., 33:] > 0).mean()
    assert hands_seen < 0.4  # the take misses most hands
    assert len(first) == 2 and sum(first.values()) == (w > 0).sum()  # the body, the hands
    assert summary.usable, summary.message
    err = np.linalg.norm(X[1:, 33:] - truth[1:, 33:], axis=-1) * 1000
    assert np.nanmedian(err) < 6.0, np.nanmedian(err)


def test_views_agree_check_reads_the_body_alone(take_missing_hands, monkeypatch):
    import mocap.optim.refine_summary as summary_module

    rig, kp, _ = take_missing_hands
    seen = []
    real = summary_module.detection_noise

    def spy(uv, w, proj):
        seen.append(uv.shape[2])
        return real(uv, w, proj)

    monkeypatch.setattr(summary_module, "detection_noise", spy)
    ks = get_keypoint_set(kp.keypoint_set)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    tri = triangulate.run(rig, kp)
    refine_person(rig, kp.xy[:, :, 0], w, tri.xyz[:, 0], ks.bones, kp.fps, RefineConfig(), joint_groups(ks))
    refine_person(rig, kp.xy[:, :, 0, :33], w[..., :33], tri.xyz[:, 0, :33], get_keypoint_set("blazepose33").bones,
                  kp.fps, RefineConfig())
    assert seen == [33, 33]


def test_triangulation_skips_points_with_too_few_views(take_missing_hands, monkeypatch):
    """Points seen in fewer than min_views views come back NaN without being undistorted or solved; the others
    are exactly what they are when triangulated alone."""
    import mocap.geometry.triangulation as tri_module
    from mocap.geometry.triangulation import triangulate as triangulate_points

    rig, kp, _ = take_missing_hands
    C = len(rig)
    uv = np.moveaxis(kp.xy[:, :, 0], 1, 2).reshape(-1, C, 2)
    w = np.moveaxis(triangulate.observation_weights(kp, 0.2)[:, :, 0], 1, 2).reshape(-1, C)
    sizes = _count_points(monkeypatch, tri_module, "pixels_to_normalised")
    X, err, views = triangulate_points(rig, uv, w, min_views=3, max_reproj_px=15.0)
    enough = (w > 0).sum(axis=1) >= 3
    assert 0.2 < enough.mean() < 0.9
    assert sum(sizes) == (w[enough] > 0).sum()
    assert np.isnan(X[~enough]).all() and np.isnan(err[~enough]).all() and not views[~enough].any()
    X_alone, err_alone, views_alone = triangulate_points(rig, uv[enough], w[enough], min_views=3, max_reproj_px=15.0)
    assert np.array_equal(np.isnan(X[enough]), np.isnan(X_alone)) and np.array_equal(views[enough], views_alone)
    assert np.allclose(X[enough], X_alone, equal_nan=True) and np.allclose(err[enough], err_alone, equal_nan=True)


def test_bench_drops_whole_hands_in_runs_and_checks_the_share():
    from mocap.bench.hands import HandsBenchConfig, drop_hands

    data = np.random.default_rng(4).random((200, 4, 1, 75, 3))
    out = drop_hands(data, 0.5, seed=1)
    assert np.array_equal(out[..., :33, :], data[..., :33, :])
    for side in (0, 1):
        hand = np.isnan(out[:, :, 0, 33 + 21 * side: 54 + 21 * side, 0])  # (F, C, 21)
        assert (hand.all(axis=2) | ~hand.any(axis=2)).all()  # a hand goes as a whole
        gone = hand.all(axis=2)
        assert 0.3 < gone.mean() < 0.7
        assert (gone.reshape(20, 10, 4).all(axis=1) | ~gone.reshape(20, 10, 4).any(axis=1)).all()  # in runs of 10
    assert np.array_equal(drop_hands(data, 0.0), data)
    with pytest.raises(ValueError, match=r"hand_missing must be in \[0, 1\), got 1.2"):
        HandsBenchConfig("clip.bvh", hand_missing=1.2)


def test_converged_joints_stop_paying_in_the_final_pass(take_missing_hands, monkeypatch):
    """With hands missing from most views a hand's final pass is slow to converge: its converged joints
    (:data:`FREEZE_STEP_M`), or all of them once a step did what the quadratic model predicted
    (:data:`MODEL_AGREEMENT`), are held (their observations no longer projected), and the result is that of the
    full solve."""
    rig, kp, truth = take_missing_hands
    ks = get_keypoint_set(kp.keypoint_set)
    w = triangulate.observation_weights(kp, 0.2)[:, :, 0]
    tri = triangulate.run(rig, kp)
    frozen = []
    real_linearize = refine_module._Problem.linearize

    def spy(self, X):
        frozen.append(int(self.frozen.sum()))
        return real_linearize(self, X)

    monkeypatch.setattr(refine_module._Problem, "linearize", spy)

    def solve():
        return refine_person(rig, kp.xy[:, :, 0], w, tri.xyz[:, 0], ks.bones, kp.fps, RefineConfig(),
                             joint_groups(ks))

    X, _, _, s = solve()
    assert max(frozen) > 10 and s.usable
    frozen.clear()
    monkeypatch.setattr(refine_module, "FREEZE_STEP_M", 0.0)  # nothing is ever held
    monkeypatch.setattr(refine_module, "MODEL_AGREEMENT", -1.0)
    X_full, _, _, s_full = solve()
    assert max(frozen) == 0
    assert abs(s.final_cost - s_full.final_cost) < 1e-3 * s_full.final_cost
    e, e_full = (np.nanmean(np.linalg.norm(x[1:] - truth[1:], axis=-1)) * 1000 for x in (X, X_full))
    assert e < e_full + 0.05, (e, e_full)  # no less accurate (here 2.64 against 2.76 mm)
    moved = np.linalg.norm(X - X_full, axis=-1)
    assert np.nanmax(moved[:, :33]) == 0.0  # the body is its own problem: never held, the same solve
    # a hand point seen by one view is held by its bones and the time prior alone: the full solve still moves
    # some of those (here 99 % within 7.6 mm, the last 14 mm; 4.8 and 11 mm when the finger bones' lengths were
    # medians over every frame that saw both ends rather than over those that triangulate them), no nearer the
    # truth (above)
    assert np.nanmedian(moved) < 1e-4 and np.nanpercentile(moved, 99) < 0.01


def test_normal_terms_are_the_sum_over_observations_whatever_the_blocks_order():
    """Each block scatters its terms over its own span of points (not all T·J of them: that was quadratic in
    the frames): the result is the plain sum over observations of wᵢ·Jᵀr and wᵢ·JᵀJ, also for a block whose
    indices are not sorted and blocks that share points (two cameras)."""
    rng = np.random.default_rng(3)
    cams = [camera(), camera("fisheye")]
    T, J = 40, 6
    X = rng.uniform(-0.5, 0.5, (T, J, 3))
    Xf = X.reshape(-1, 3)
    blocks = []
    for c, sl in ((0, slice(0, 120)), (0, slice(120, 240)), (1, slice(30, 200))):
        idx = rng.permutation(np.arange(T * J)[sl])[: 80]
        uv = project(cams[c], Xf[idx]) + rng.normal(0, 2, (len(idx), 2))
        blocks.append((c, idx, idx % J, uv, rng.uniform(0.5, 1.5, len(idx))))
    inv_var = rng.uniform(0.2, 1.0, (2, J))
    got = refine_obs.normal_terms(cams, blocks, X, inv_var, "l2", 1.0)
    want = np.zeros((9, T * J))
    for c, idx, joints, uv, w in blocks:
        p, Jp = project(cams[c], Xf[idx], jacobian=True)  # (m, 2), (m, 2, 3)
        W = (w * inv_var[c][joints])[:, None, None]
        g = np.einsum("mki,mk->mi", W * Jp, p - uv)
        H = np.einsum("mki,mkj->mij", W * Jp, Jp)
        np.add.at(want[:3].T, idx, g)
        for e, (i, k) in enumerate(refine_obs.LOWER):
            np.add.at(want[3 + e], idx, H[:, i, k])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
