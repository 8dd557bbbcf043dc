"""The shared solver core: the Levenberg-Marquardt driver and its schedule (mocap.optim.lm), the one
gap filler (mocap.filters), the one acceleration-prior matrix (mocap.optim.banded), and the import
structure of types and geometry."""

import ast
from pathlib import Path

import numpy as np
import pytest

import mocap
from mocap.filters import bridged, gap_brackets, interpolate_gaps
from mocap.fit.smooth import smooth_trajectories
from mocap.optim.banded import acceleration_prior
from mocap.optim.lm import LMSettings, Schedule, levenberg_marquardt, rayleigh_sigma, robust_then_refit


class Circle:
    """2D points on a circle at known angles: centre, radius and a rotation φ free (nonlinear in φ).
    Robust pass: Huber weights (IRLS) bending at a fixed distance, as calibration's bundle adjustment does."""

    def __init__(self, theta, p):
        self.theta, self.p = theta, p
        self.robust, self.keep, self.sigma = False, np.ones(len(p), bool), 1.0
        self.w = np.ones(len(p))
        self.linearizations = 0

    def residuals(self, x):
        a = self.theta + x[3]
        return x[:2] + x[2] * np.stack([np.cos(a), np.sin(a)], 1) - self.p

    def residual_norms(self, x):
        return np.linalg.norm(self.residuals(x), axis=1)

    def set_pass(self, robust, keep, sigma):
        self.robust, self.keep, self.sigma = robust, keep, sigma

    def update(self, x):
        n = self.residual_norms(x)
        self.w = self.keep * (np.minimum(1.0, 0.03 / np.maximum(n, 1e-12)) if self.robust else 1.0)

    def cost(self, x):
        return float(np.sum(self.w * self.residual_norms(x) ** 2))

    def linearize(self, x):
        self.linearizations += 1
        a = self.theta + x[3]
        J = np.zeros((len(a), 2, 4))
        J[:, 0, 0] = J[:, 1, 1] = 1.0
        J[:, :, 2] = np.stack([np.cos(a), np.sin(a)], 1)
        J[:, :, 3] = x[2] * np.stack([-np.sin(a), np.cos(a)], 1)
        H = np.einsum("n,nki,nkj->ij", self.w, J, J)
        g = np.einsum("n,nki,nk->i", self.w, J, self.residuals(x))
        return H, g

    def solve(self, lin, mu):
        H, g = lin
        return np.linalg.solve(H + mu * np.diag(np.diag(H)), -g), 0


def circle_take(n=400, noise=0.01, outliers=0.1, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.array([0.3, -0.2, 1.5, 0.4])
    theta = rng.uniform(0, 2 * np.pi, n)
    prob = Circle(theta, np.zeros((n, 2)))
    p = prob.residuals(truth) + rng.normal(0, noise, (n, 2))
    bad = rng.random(n) < outliers
    p[bad] += rng.normal(0, 0.5, (bad.sum(), 2))
    prob.p = p
    return prob, truth, bad


def test_robust_schedule_recovers_the_circle_and_rejects_the_outliers():
    prob, truth, bad = circle_take()
    settings = LMSettings(max_iterations=30, tolerance=1e-12, min_step=1e-12)
    fit = robust_then_refit(prob, np.array([0.0, 0.0, 1.0, 0.0]), np.ones(len(bad), bool),
                            Schedule(settings, settings, outlier_sigma=4.0))
    assert np.allclose(fit.x, truth, atol=3e-3)
    assert abs(fit.sigma - 0.01) < 0.002  # from the residual norms (Rayleigh median)
    assert fit.keep[~bad].mean() > 0.99 and not fit.keep[bad & (prob.residual_norms(truth) > 0.1)].any()
    assert fit.iterations == prob.linearizations  # a rejected step reuses its linearisation
    assert fit.solves >= fit.iterations > 0
    assert fit.final.final_cost <= fit.final.initial_cost
    assert fit.initial_norms.shape == bad.shape


def test_fixed_noise_is_used_as_given():
    prob, _, bad = circle_take(seed=1)
    s = LMSettings(20, 1e-10)
    fit = robust_then_refit(prob, np.array([0.0, 0.0, 1.0, 0.0]), np.ones(len(bad), bool), Schedule(s, s, 4.0, 0.05))
    assert fit.sigma == 0.05 and prob.sigma == 0.05


class Overshoot:
    """cost x², but the solver overshoots: δ = −3x / (1 + μ); a step lowers the cost only for μ > 0.5."""

    def __init__(self, honest=True):
        self.honest, self.linearizations, self.updates = honest, 0, 0

    def update(self, x):
        self.updates += 1

    def cost(self, x):
        return float(np.sum(x**2))

    def linearize(self, x):
        self.linearizations += 1
        return x.copy()

    def solve(self, lin, mu):
        return (-3 * lin / (1 + mu) if self.honest else lin), 1


def test_failed_steps_raise_the_damping_from_the_same_linearisation():
    prob = Overshoot()
    res = levenberg_marquardt(prob, np.array([2.0]), LMSettings(max_iterations=1, tolerance=0.0, mu_init=1e-4))
    # μ = 1e-4, 1e-3, 1e-2, 0.1 fail; μ = 1 gives x = 2 (1 − 3/2) = −1
    assert (res.iterations, res.solves, prob.linearizations, res.inner_iterations) == (1, 5, 1, 5)
    assert np.allclose(res.x, -1.0) and res.initial_cost == 4.0 and res.final_cost == 1.0
    assert prob.updates == 2  # at the start and after the accepted step


def test_a_pass_ends_when_no_damping_helps():
    prob = Overshoot(honest=False)  # δ = x: the cost always grows
    res = levenberg_marquardt(prob, np.array([2.0]), LMSettings(max_iterations=10, tolerance=0.0, mu_max=1e2))
    assert np.array_equal(res.x, [2.0]) and res.final_cost == 4.0
    assert res.iterations == 1 and res.solves == 8  # μ = 1e-4 … 1e3: fails at μ > mu_max end the pass


def test_rayleigh_sigma():
    r = np.random.default_rng(5).normal(0, 2.0, (200_000, 2))
    assert abs(rayleigh_sigma(np.linalg.norm(r, axis=1)) - 2.0) < 0.02
    assert rayleigh_sigma(np.array([np.nan])) == 1.0


# ---- one gap filler


def test_bridged_and_brackets():
    finite = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0], bool)
    assert bridged(finite, 2).tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0]
    assert bridged(finite, 3, 1).tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]  # whole runs or nothing
    assert bridged(finite, None, None).all()
    assert not bridged(np.zeros(5, bool), None, None).any()
    a, b, s = gap_brackets(finite)
    assert a.tolist() == [2, 2, 2, 2, 2, 5, 5, 5, 5, 9, 9]
    assert b.tolist() == [2, 2, 2, 5, 5, 5, 9, 9, 9, 9, 9]
    assert np.allclose(s, [0, 0, 0, 1 / 3, 2 / 3, 0, 0.25, 0.5, 0.75, 0, 0])
    a, b, _ = gap_brackets(np.zeros((3, 2), bool))
    assert (a == -1).all() and (b == 3).all()


def test_interpolate_gaps_inside_and_at_the_ends():
    x = np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan])
    assert np.allclose(interpolate_gaps(x, 2), [np.nan, 1, 2, 3, 4, np.nan], equal_nan=True)
    assert np.isnan(interpolate_gaps(x, 1)[2:4]).all()
    assert np.allclose(interpolate_gaps(x, None, None), [1, 1, 2, 3, 4, 4])
    X = np.stack([x, 2 * x], 1)[:, None]  # (T, 1, 2): each column on its own, shape kept
    assert np.allclose(interpolate_gaps(X, None, None)[:, 0, 1], [2, 2, 4, 6, 8, 8])


# ---- one acceleration prior


@pytest.mark.parametrize("T", [1, 2, 3, 4, 5, 9])
def test_acceleration_prior_is_the_second_difference_normal_matrix(T):
    fps, accel = 50.0, 12.0
    D2 = np.zeros((max(T - 2, 0), T))
    for r in range(T - 2):
        D2[r, r : r + 3] = [1, -2, 1]
    dense = D2.T @ D2 * (fps**2 / accel) ** 2
    ab = acceleration_prior(T, fps, accel)
    for d in range(3):
        assert np.allclose(ab[d, : max(T - d, 0)], np.diagonal(dense, -d)), d
    x = np.random.default_rng(T).normal(size=T)
    assert np.isclose(x @ dense @ x, np.sum((D2 @ x * fps**2 / accel) ** 2))


@pytest.mark.parametrize("F", [3, 40])
def test_smoother_solves_the_acceleration_prior_system(F):
    rng = np.random.default_rng(F)
    y = rng.normal(size=(F, 2, 3))
    y[F // 2, 0] = np.nan
    fps, noise, accel = 30.0, 0.02, 10.0
    out = smooth_trajectories(y, fps, noise, accel, max_gap_s=1.0)
    D2 = np.zeros((F - 2, F))
    for r in range(F - 2):
        D2[r, r : r + 3] = [1, -2, 1]
    for k in range(2):
        seen = np.isfinite(y[:, k, 0])
        A = np.diag(seen / noise**2) + D2.T @ D2 * (fps**2 / accel) ** 2
        want = np.linalg.solve(A, np.where(seen[:, None], y[:, k], 0) / noise**2)
        assert np.allclose(out[:, k], want, atol=1e-9)


# ---- import structure


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """mocap modules a file imports anywhere (TYPE_CHECKING blocks included), and those imported
    inside functions."""
    tree = ast.parse(path.read_text())
    anywhere, in_functions = set(), set()
    for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mocap"):
                in_functions.add(node.module)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mocap"):
            anywhere.add(node.module)
        elif isinstance(node, ast.Import):
            anywhere |= {a.name for a in node.names if a.name.startswith("mocap")}
    return anywhere, in_functions


def test_types_and_geometry_import_without_cycles_or_function_level_imports():
    root = Path(mocap.__file__).parent
    files = {"mocap.types": root / "types.py"} | {f"mocap.geometry.{p.stem}": p
                                                  for p in (root / "geometry").glob("*.py") if p.stem != "__init__"}
    graph = {}
    for name, path in files.items():
        anywhere, in_functions = _imports(path)
        assert not in_functions, f"{name} imports {sorted(in_functions)} inside functions"
        graph[name] = {m for m in anywhere if m in files}

    def reaches(a, b, seen=()):
        return any(n == b or (n not in seen and reaches(n, b, (*seen, n))) for n in graph[a])

    cycles = [n for n in graph if reaches(n, n)]
    assert not cycles, cycles
    assert "mocap.types" not in graph["mocap.geometry.camera"]
