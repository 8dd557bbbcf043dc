"""The batched forms that replaced per-joint and per-bone Python loops in refine and the fit (issue 16's cost
target): each gives what the loop it replaced gave, on small random problems."""

import numpy as np
import pytest
from scipy.linalg import solveh_banded

from mocap.filters import bridged
from mocap.fit.bones import _path, measured_pairs
from mocap.fit.ik import IKProblem, initial_pose
from mocap.fit.ikstep import Blocks, damped_step
from mocap.fit.smooth import smooth_trajectories
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.optim.banded import Couplings, acceleration_prior, bone_scatter, column_median
from mocap.skeletons import load_skeleton
from mocap.types import Skeleton, forward_kinematics


def test_column_median_is_each_columns_median_of_its_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 6))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 4] = np.nan  # no value: NaN
    x[:, 5] = np.nan
    x[3, 5] = 2.5  # one value
    got = column_median(x)
    want = [np.median(c[np.isfinite(c)]) if np.isfinite(c).any() else np.nan for c in x.T]
    assert np.allclose(got, want, equal_nan=True)
    assert np.isnan(column_median(np.zeros((0, 3)))).all()


def test_couplings_apply_as_the_loop_over_bones_did():
    rng = np.random.default_rng(1)
    J, T = 7, 11
    a, b = np.array([0, 1, 1, 4, 5]), np.array([1, 2, 3, 5, 6])
    B = rng.normal(size=(len(a), T, 3))
    V = rng.normal(size=(J, T, 3))
    y = rng.normal(size=(J, T, 3))
    want = y.copy()
    for i in range(len(a)):
        want[a[i]] -= B[i] * np.sum(B[i] * V[b[i]], axis=-1, keepdims=True)
        want[b[i]] -= B[i] * np.sum(B[i] * V[a[i]], axis=-1, keepdims=True)
    for scatter in (None, bone_scatter(a, b, J)):
        got = y.copy()
        Couplings(a, b, B, scatter).subtract(V, got)
        assert np.allclose(got, want)
    triples = list(Couplings(a, b, B))
    assert [(x, z) for x, z, _ in triples] == list(zip(a.tolist(), b.tolist(), strict=True))
    assert np.array_equal(triples[2][2], B[2])
    with pytest.raises(ValueError, match=r"expected n, n and \(n, T, 3\)"):
        Couplings(a, b[:3], B)


def _pairs_by_paths(sk: Skeleton, mapped: np.ndarray) -> list[tuple[int, int]]:
    """Every pair's tree path checked on its own (what measured_pairs did before the walk)."""
    out = []
    for a in range(len(mapped)):
        for b in range(a + 1, len(mapped)):
            if mapped[a] and mapped[b]:
                up_a, up_b = _path(sk, a, b)
                common = int(sk.parents[up_a[-1]]) if up_a else a
                inner = (set(up_a[1:]) | set(up_b[1:]) | {common}) - {a, b}
                if not any(mapped[i] for i in inner):
                    out.append((a, b))
    return out


@pytest.mark.parametrize("preset", ["body22", "body52"])
def test_measured_pairs_walk_finds_the_pairs_with_unmapped_paths(preset):
    sk = load_skeleton(preset).skeleton
    rng = np.random.default_rng(2)
    for _ in range(30):
        mapped = rng.random(len(sk.joint_names)) < rng.uniform(0.2, 0.9)
        assert measured_pairs(sk, mapped) == _pairs_by_paths(sk, mapped)


def test_smoothing_points_together_equals_each_point_alone():
    rng = np.random.default_rng(3)
    F, K, fps = 80, 6, 60.0
    y = np.cumsum(rng.normal(scale=0.01, size=(F, K, 3)), axis=0)
    y[10:14, 1] = np.nan  # points 1 and 2 share a gap pattern, 3 has its own, 4 is seen once, 5 never
    y[10:14, 2] = np.nan
    y[40:70, 3] = np.nan
    y[1:, 4] = np.nan
    y[:, 5] = np.nan
    out = smooth_trajectories(y, fps, 0.01, 15.0, max_gap_s=0.25)
    prior = acceleration_prior(F, fps, 15.0) * 0.01**2
    for k in range(K):
        seen = np.isfinite(y[:, k]).all(axis=1)
        want = np.full((F, 3), np.nan)
        if seen.sum() < 2:
            want[seen] = y[seen, k]
        else:
            ab = prior.copy()
            ab[0] += seen
            x = solveh_banded(ab, np.where(seen[:, None], y[:, k], 0.0), lower=True)
            keep = bridged(seen, 15)
            want[keep] = x[keep]
        assert np.allclose(out[:, k], want, equal_nan=True, atol=1e-12), k


def test_block_step_equals_the_dense_step():
    """Two independent column blocks (rows touching only their block, a row touching none): the same step."""
    rng = np.random.default_rng(4)
    F, n = 5, 7
    cols = [[0, 2, 3], [1, 4, 5, 6]]
    rows = [[0, 1, 2, 3], [4, 5, 6, 7, 8]]
    Jd = np.zeros((F, 10, n))
    for r, c in zip(rows, cols, strict=True):
        Jd[:, np.array(r)[:, None], np.array(c)] = rng.normal(size=(F, len(r), len(c)))
    rd = rng.normal(size=(F, 10))  # row 9 touches no column
    P = rng.normal(size=(F, 2, 3, 3))  # priors on columns (0, 2, 3) and (4, 5, 6)
    groups = [(np.array([[0, 2, 3], [4, 5, 6]]), P, rng.normal(size=(F, 2, 3))),
              (np.array([[1]]), rng.normal(size=(F, 1, 2, 1)), rng.normal(size=(F, 1, 2)))]
    mu = rng.uniform(1e-3, 1e-1, F)
    dense = damped_step(Jd, rd, groups, mu)
    blocks = Blocks.of(rows, cols, 10, n)
    Jp = np.concatenate([np.concatenate([Jd, np.zeros((F, 1, n))], axis=1), np.zeros((F, 11, 1))], axis=2)
    rp = np.concatenate([rd, np.zeros((F, 1))], axis=1)  # padded with a zero row and column, as blocks pad
    block = damped_step(Jp[:, blocks.rows[:, :, None], blocks.cols[:, None, :]], rp[:, blocks.rows], groups, mu,
                        blocks)
    assert np.allclose(dense[0], block[0]) and np.allclose(dense[1], block[1])
    with pytest.raises(ValueError, match="must partition"):
        Blocks.of(rows, [[0, 2], [1, 4, 5, 6]], 10, n)


def test_initial_pose_keeps_a_given_root_rotation():
    """A hand held at its fitted rotation: the root is that rotation, the fingers are aligned under it."""
    sk = Skeleton(("Hand", "A", "A2", "B", "B2"), np.array([-1, 0, 1, 0, 3]),
                  np.array([[0, 0, 0], [0.1, 0, 0], [0.05, 0, 0], [0.1, 0.03, 0], [0.05, 0, 0]], float))
    pb = IKProblem(sk, {}, {}, np.zeros(0, int), np.zeros((0, 3)), fixed_root=True)
    rng = np.random.default_rng(5)
    F = 4
    R0 = np.linalg.qr(rng.normal(size=(F, 3, 3)))[0]
    R0 *= np.sign(np.linalg.det(R0))[:, None, None]
    local = np.tile(np.eye(3), (F, 5, 1, 1))
    local[:, 0] = R0
    local[:, 1] = axis_angle_to_matrix(np.outer(rng.uniform(0.3, 1.2, F), [0, 0, 1.0]))  # finger A bent
    _, p = forward_kinematics(sk, local, rng.normal(size=(F, 3)))
    got, root = initial_pose(pb, p, np.zeros((F, 0, 3)), root_rotation=R0)
    assert np.allclose(got[:, 0], R0) and np.allclose(root, p[:, 0])
    _, p2 = forward_kinematics(sk, got, root)
    assert np.allclose(p2, p, atol=1e-9)  # the fingers aligned under the given hand
    aligned, _ = initial_pose(pb, p, np.zeros((F, 0, 3)))  # without it the hand is aligned to the bent fingers
    assert not np.allclose(aligned[:, 0], R0, atol=1e-3)


def test_leaf_targets_folded_into_six_rows_give_the_same_ik(monkeypatch):
    """Four targets hanging from one joint (knuckles on a hand) folded into six rows: the same solution as
    with their twelve rows."""
    import mocap.fit.iklayout as iklayout
    from mocap.fit.ik import solve_ik
    from mocap.fit.leaves import leaf_groups

    names = ("Root", "Arm", "Hand", "K1", "K2", "K3", "K4")
    parents = np.array([-1, 0, 1, 2, 2, 2, 2])
    offsets = np.array([[0, 0, 0], [0.3, 0, 0], [0.25, 0, 0], [0.09, 0.03, 0], [0.09, 0.01, 0.005],
                        [0.085, -0.01, 0.0], [0.08, -0.03, -0.005]], float)
    sk = Skeleton(names, parents, offsets)
    pb = IKProblem(sk, {1: np.array([0, 0, 1.0])}, {1: (0.0, 2.5)}, np.zeros(0, int), np.zeros((0, 3)))
    groups = leaf_groups(parents, np.array([3, 6, 7, -1, -1, -1, -1]), pb.vec_joint)
    assert [(g.joint, g.targets.tolist()) for g in groups] == [(2, [3, 4, 5, 6])]
    rng = np.random.default_rng(6)
    F = 12
    local = np.tile(np.eye(3), (F, 7, 1, 1))
    local[:, 0] = axis_angle_to_matrix(rng.normal(scale=0.4, size=(F, 3)))
    local[:, 1] = axis_angle_to_matrix(np.outer(rng.uniform(0.2, 1.5, F), [0, 0, 1.0]))
    local[:, 2] = axis_angle_to_matrix(rng.normal(scale=0.5, size=(F, 3)))
    _, p = forward_kinematics(sk, local, rng.normal(size=(F, 3)))
    y = p + rng.normal(scale=0.004, size=p.shape)
    wy = rng.uniform(0.3, 1.0, (F, 7))
    wy[0, 3:6] = 0.0  # a frame with one knuckle seen
    start = np.tile(np.eye(3), (F, 7, 1, 1))
    args = (pb, y, wy, np.zeros((F, 0, 3)), np.zeros((F, 0)), start, y[:, 0], 20)
    folded = solve_ik(*args)
    monkeypatch.setattr(iklayout, "leaf_groups", lambda *a: [])
    rows = solve_ik(*args)
    for a, b in zip(folded, rows, strict=True):
        assert np.allclose(a, b, atol=1e-7)
    assert np.median(folded[2]) < 0.01  # and it fits (m)


def test_held_root_with_two_one_hinge_fingers_solves():
    """A held root whose two children are single hinges: two blocks of one unknown each (fewer unknowns
    than the three of a free root's position, which a held root has none of)."""
    from mocap.fit.ik import solve_ik

    sk = Skeleton(("Hand", "A", "A2", "B", "B2"), np.array([-1, 0, 1, 0, 3]),
                  np.array([[0, 0, 0], [0.1, 0, 0], [0.05, 0, 0], [0.1, 0.03, 0], [0.05, 0, 0]], float))
    z = np.array([0, 0, 1.0])
    pb = IKProblem(sk, {1: z, 3: z}, {}, np.zeros(0, int), np.zeros((0, 3)), fixed_root=True)
    F = 3
    local = np.tile(np.eye(3), (F, 5, 1, 1))
    local[:, 1] = axis_angle_to_matrix(np.outer([0.3, 0.6, 0.9], z))
    local[:, 3] = axis_angle_to_matrix(np.outer([0.2, 0.5, 0.1], z))
    _, p = forward_kinematics(sk, local, np.zeros((F, 3)))
    wy = np.ones((F, 5))
    wy[:, 0] = 0.0
    got, root, rms = solve_ik(pb, p, wy, np.zeros((F, 0, 3)), np.zeros((F, 0)), np.tile(np.eye(3), (F, 5, 1, 1)),
                              np.zeros((F, 3)), 20)
    assert np.allclose(root, 0.0) and rms.max() < 1e-3
    assert np.allclose(got[:, [1, 3]], local[:, [1, 3]], atol=1e-2)
