"""Subject bone lengths, estimated once per take from joint-centre trajectories.

Every pair of mapped joints joined by a path of unmapped joints (hip → knee, neck → shoulder,
hips → neck through the spine) gives a robust distance: the median over frames. The bone lengths are
the rest skeleton's scaled per bone, so that each pair's rest distance matches; a weak prior keeps
bones that no pair measures (and the split between spine bones) at the skeleton's proportions, scaled
to the subject. With ``symmetric`` a left bone and its right twin share one length.
"""

from __future__ import annotations

import logging

import numpy as np

from mocap.optim.lm import LMSettings, levenberg_marquardt
from mocap.types import Skeleton

log = logging.getLogger(__name__)
# a dozen unknowns: solved to the last digits that matter (1e-12 relative cost, steps of 1e-10 in log length)
_LM = LMSettings(max_iterations=100, tolerance=1e-12, min_step=1e-10)


class _Dense:
    """A small least-squares problem, residuals r(x) (m,) and Jacobian (m, n), for the project's
    Levenberg-Marquardt driver (:mod:`mocap.optim.lm`), damped with Marquardt's scaling (the normal
    matrix's diagonal). Instead of SciPy's ``least_squares``: importing scipy.optimize costs 0.3-0.4 s per process,
    which a single-person run need not pay."""

    def __init__(self, residuals, jacobian):
        self.residuals, self.jacobian = residuals, jacobian

    def update(self, x: np.ndarray) -> bool | None:
        return None

    def cost(self, x: np.ndarray) -> float:
        r = self.residuals(x)
        return float(r @ r)

    def linearize(self, x: np.ndarray):
        Jm = self.jacobian(x)
        return Jm.T @ Jm, Jm.T @ self.residuals(x)

    def solve(self, lin, mu: float) -> tuple[np.ndarray, int]:
        N, g = lin
        d = np.diag(N)
        return -np.linalg.solve(N + np.diag(mu * (d + 1e-12)), g), 0


def rest_positions(sk: Skeleton) -> np.ndarray:
    """(J, 3) world positions at rest (every rotation identity, root at the origin)."""
    p = np.zeros((len(sk.joint_names), 3))
    for j in range(1, len(p)):
        p[j] = p[sk.parents[j]] + sk.offsets[j]
    return p


def _path(sk: Skeleton, a: int, b: int) -> tuple[list[int], list[int]]:
    """Bones (child joint indices) going up from a and from b to their common ancestor."""
    def chain(j: int) -> list[int]:
        out = [j]
        while sk.parents[out[-1]] >= 0:
            out.append(int(sk.parents[out[-1]]))
        return out
    ca, cb = chain(a), chain(b)
    common = next(j for j in ca if j in cb)
    return ca[:ca.index(common)], cb[:cb.index(common)]


def measured_pairs(sk: Skeleton, mapped: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (a, b), a < b, of mapped joints whose tree path has only unmapped joints inside, in increasing
    order: from each mapped joint, a walk along the tree's edges that stops at mapped joints."""
    J = len(sk.joint_names)
    nbrs: list[list[int]] = [[] for _ in range(J)]
    for j in range(J):
        if sk.parents[j] >= 0:
            nbrs[j].append(int(sk.parents[j]))
            nbrs[int(sk.parents[j])].append(j)
    pairs = []
    for a in range(J):
        if not mapped[a]:
            continue
        found, stack, visited = [], [a], {a}
        while stack:
            for n in nbrs[stack.pop()]:
                if n in visited:
                    continue
                visited.add(n)
                if mapped[n]:
                    found.append(n)  # the path ends here: a joint beyond it has a mapped one inside
                else:
                    stack.append(n)
        pairs += [(a, b) for b in sorted(found) if b > a]
    return pairs


def twin(name: str) -> str | None:
    for a, b in (("Left", "Right"), ("Right", "Left"), ("left", "right"), ("right", "left"),
                 ("_l", "_r"), ("_r", "_l")):
        if a in name:
            return name.replace(a, b, 1)
    return None


def estimate_bone_lengths(sk: Skeleton, centres: np.ndarray, mapped: np.ndarray,
                          symmetric: bool = True) -> tuple[Skeleton, list[str]]:
    """Scale the bones of ``sk`` to the subject. centres: (F, J, 3) joint centres (NaN where unknown).
    Returns the subject skeleton and the mapped joints never seen in the take."""
    J = len(sk.joint_names)
    seen = np.isfinite(centres).all(axis=2).any(axis=0)
    unseen = [sk.joint_names[j] for j in range(J) if mapped[j] and not seen[j]]
    pairs, dists = [], []
    for a, b in measured_pairs(sk, mapped):
        d = np.linalg.norm(centres[:, a] - centres[:, b], axis=1)
        d = d[np.isfinite(d)]
        if d.size:
            pairs.append((a, b))
            dists.append(float(np.median(d)))
    # one variable per bone (child joint 1..J-1), shared between left/right twins
    var = np.arange(J)
    if symmetric:
        for j in range(1, J):
            t = twin(sk.joint_names[j])
            if t in sk.joint_names and sk.index(t) < j:
                var[j] = var[sk.index(t)]
    rest_len = np.linalg.norm(sk.offsets, axis=1)
    rest = rest_positions(sk)
    if not pairs:
        raise ValueError("cannot estimate bone lengths: no two connected joints are ever seen together")
    ratios = [d / max(np.linalg.norm(rest[a] - rest[b]), 1e-6) for (a, b), d in zip(pairs, dists, strict=True)]
    s0 = float(np.log(np.median(ratios)))
    paths = [_path(sk, a, b) for a, b in pairs]
    uniq = np.unique(var[1:])

    def lengths(x: np.ndarray) -> np.ndarray:
        full = np.zeros(J)
        full[uniq] = x
        return np.exp(full[var])

    # the vector between the joints of pair p is Σ_j M[p, j] · scale_j · offset_j (+1 up from a, −1 up from b)
    M = np.zeros((len(paths), J))
    for p, (up_a, up_b) in enumerate(paths):
        M[p, up_a] += 1.0
        M[p, up_b] -= 1.0
    d = np.asarray(dists)
    U = (var[:, None] == uniq[None, :]).astype(float)  # (J, n): bone j's length is exp(x_u) for its u

    def residuals(x: np.ndarray) -> np.ndarray:
        V = (M * lengths(x)) @ sk.offsets  # (P, 3)
        return np.concatenate([(np.linalg.norm(V, axis=1) - d) / 0.005, (x - s0) / 0.3])

    def jacobian(x: np.ndarray) -> np.ndarray:
        scale = lengths(x)
        V = (M * scale) @ sk.offsets
        n = np.linalg.norm(V, axis=1, keepdims=True)
        unit = np.divide(V, n, out=np.zeros_like(V), where=n > 0)
        dV = (M * scale) * (unit @ sk.offsets.T)  # (P, J): d|V_p| / d log scale_j
        return np.vstack([dV @ U / 0.005, np.eye(uniq.size) / 0.3])

    sol = levenberg_marquardt(_Dense(residuals, jacobian), np.full(uniq.size, s0), _LM, "bone lengths")
    scale = lengths(sol.x)
    scale[0] = 1.0
    subject = Skeleton(sk.joint_names, sk.parents, sk.offsets * scale[:, None])
    log.info("bone lengths from %d joint pairs; overall scale %.3f of the preset; bones (m): %s", len(pairs),
             np.exp(s0), ", ".join(f"{n} {v:.3f}" for n, v in zip(sk.joint_names[1:], rest_len[1:] * scale[1:],
                                                                    strict=True)))
    return subject, unseen
