"""Leaf targets that ride on one joint, folded into six rows of the IK's normal equations.

Targets on joints that the IK does not turn (no unknowns of their own: the finger bases in the body
pass of a skeleton with fingers) and that all hang from one joint h move with h rigidly: the Jacobian of
target d is sy_d · [I, −[c_d]×] · S_h with c_d = p_d − p_h and S_h (6, n) the linear and angular velocity
of h's frame. Their rows add S_hᵀ Λ S_h to JᵀJ and S_hᵀ b to Jᵀr, with Λ = Σ sy_d² X_dᵀ X_d (6×6) and
b = Σ sy_d X_dᵀ r_d: the same as six rows M S_h with residuals ρ, MᵀM = Λ and Mᵀρ = b. So a hand's five
knuckles cost six rows instead of fifteen, with the same step and the same predicted decrease.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap.geometry.rotations import skew

MIN_TARGETS = 3  # fewer than three targets are no more rows than the six that replace them


@dataclass(frozen=True)
class LeafGroup:
    joint: int  # h: the joint the targets hang from
    targets: np.ndarray  # (k,) the target joints d


def leaf_groups(parents: np.ndarray, col: np.ndarray, vec_joint: np.ndarray) -> list[LeafGroup]:
    """The groups of at least :data:`MIN_TARGETS` leaf joints without unknowns or vectors sharing a parent
    that has unknowns (``col``: each joint's first column, −1 for none)."""
    J = len(parents)
    has_kids = np.zeros(J, bool)
    has_kids[parents[parents >= 0]] = True
    free = [d for d in range(1, J) if col[d] < 0 and not has_kids[d] and d not in set(np.asarray(vec_joint).tolist())]
    out = []
    for h in sorted({int(parents[d]) for d in free}):
        ds = [d for d in free if parents[d] == h]
        if len(ds) >= MIN_TARGETS and col[h] >= 0:
            out.append(LeafGroup(h, np.array(ds, int)))
    return out


def virtual_rows(group: LeafGroup, p: np.ndarray, sy: np.ndarray, rp: np.ndarray,
                 S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The six rows (F, 6, n) and residuals (F, 6) that stand for ``group``'s targets. p: (F, J, 3) joint
    positions, sy: (F, J) the targets' weights, rp: (F, J, 3) their weighted residuals, S: (F, 6, n) the
    linear (rows 0-2) and angular (3-5) velocity of the group's joint per unknown."""
    c = p[:, group.targets] - p[:, group.joint, None]  # (F, k, 3)
    X = np.concatenate([np.broadcast_to(np.eye(3), c.shape + (3,)), -skew(c)], axis=-1)  # (F, k, 3, 6)
    w = sy[:, group.targets]
    Lam = np.einsum("fk,fkai,fkaj->fij", w * w, X, X)
    b = np.einsum("fkai,fka->fi", X * w[..., None, None], rp[:, group.targets])
    # Λ = C Cᵀ (Cholesky; a relative 1e-12 on the diagonal keeps frames with too few targets seen definite):
    # M = Cᵀ, and C ρ = b by forward substitution
    eps = 1e-12 * np.maximum(np.trace(Lam, axis1=1, axis2=2), 1e-300)
    C = np.linalg.cholesky(Lam + eps[:, None, None] * np.eye(6))
    rho = np.zeros_like(b)
    for i in range(6):
        rho[:, i] = (b[:, i] - np.einsum("fj,fj->f", C[:, i, :i], rho[:, :i])) / C[:, i, i]
    return np.swapaxes(C, -1, -2) @ S, rho
