"""The IK's batched Levenberg–Marquardt step (:mod:`mocap.fit.ik`): dense, or in column blocks that only a
shared border couples.

A kinematic tree's normal matrix is sparse: a joint's columns meet only those of its ancestors and
descendants. Taking as the *border* the root's translation and the joints at or above a branching (the
trunk: hips and spine for a body), the columns of each limb hanging from it (a leg, an arm, the neck and
head) meet only their own and the border's: the normal matrix is block-arrow shaped. A limb's rows see the
border only through the velocity (linear, angular: 6 numbers) of the trunk frame it hangs from, so its rows
are given against those 6 and its own columns, with that frame's velocity per border column (S). The step
(:class:`Blocks`) eliminates the limbs (small systems, all limbs of all frames in one batch) and solves the
border's Schur complement: for body22, five systems of at most 10 unknowns and one of 15 instead of one of
55, and JᵀJ at about a sixth of the products. With the root held (the fingers of a hand at its fitted
wrist) there is no border and the blocks are independent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap.geometry.linalg import solve_spd


@dataclass(frozen=True)
class Blocks:
    """Column blocks of an (m, n) Jacobian that only the ``border`` columns couple: block p holds the rows
    ``rows[p]`` and, after the border's, the columns ``cols[p]``, padded with m (a zero row) and n (a zero
    column) to equal lengths; ``part`` and ``loc``: each non-border column's block and its place among the
    block's own columns (−1 for border columns); ``bpos``: each border column's place in the border (−1 else)."""

    rows: np.ndarray  # (P, mr)
    cols: np.ndarray  # (P, mc)
    part: np.ndarray  # (n,)
    loc: np.ndarray  # (n,)
    border: np.ndarray  # (nb,)
    bpos: np.ndarray  # (n,)
    trunk: np.ndarray  # (mt,) the rows that touch only border columns
    attach: np.ndarray  # (P,) the joint each block hangs from (its frame's velocity moves the whole block), −1: none

    @classmethod
    def of(cls, row_sets: list[list[int]], col_sets: list[list[int]], m: int, n: int,
           border: list[int] | tuple[int, ...] = (), trunk: list[int] | tuple[int, ...] = (),
           attach: list[int] | None = None) -> Blocks:
        """From each block's rows and columns (the border and the blocks' columns partition the columns;
        a row touches the border and its own block's columns only)."""
        cols_all = sorted([c for cs in col_sets for c in cs] + list(border))
        if cols_all != list(range(n)) or len(row_sets) != len(col_sets):
            raise ValueError(f"Blocks: the border {list(border)} and the column sets must partition range({n}) "
                             f"and match the {len(row_sets)} row sets, got {col_sets}")
        mr, mc = max(map(len, row_sets)), max(map(len, col_sets))
        rows = np.array([list(r) + [m] * (mr - len(r)) for r in row_sets], int).reshape(len(row_sets), mr)
        cols = np.array([list(c) + [n] * (mc - len(c)) for c in col_sets], int).reshape(len(col_sets), mc)
        part, loc, bpos = np.full(n, -1), np.full(n, -1), np.full(n, -1)
        for p, cs in enumerate(col_sets):
            part[cs], loc[cs] = p, np.arange(len(cs))
        bpos[list(border)] = np.arange(len(border))
        attach = np.full(len(col_sets), -1) if attach is None else np.asarray(attach, int)
        return cls(rows, cols, part, loc, np.asarray(border, int), bpos, np.asarray(trunk, int), attach)


def damped_step(Jd: np.ndarray, rd: np.ndarray, groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                mu: np.ndarray, blocks: Blocks | None = None, border=None) -> tuple[np.ndarray, np.ndarray]:
    """Batched Levenberg–Marquardt step: solve (JᵀJ + μ diag(JᵀJ)) δ = −Jᵀr for every frame.

    Jd, rd: the dense rows (F, m, n), (F, m), or with ``blocks`` each block's rows against the velocity of its
    frame (a = 6 columns, none without a border) then its own (F, P, mr, a + mc), (F, P, mr), padded with
    zeros, and ``border`` = (S (F, P, a, nb), the trunk's rows (F, mt, nb), their residuals (F, mt)) or None
    (see :func:`_block_step`); groups: rows that touch only w
    columns each (the priors of the joints), as (columns (b, w), Jacobians (F, b, k, w), residuals (F, b, k))
    for b blocks whose columns do not overlap inside a group (each entry's columns all in the border or all
    in one block); each group is added at once. Returns δ (F, n) and the decrease of Σr² the linear model
    predicts."""
    if blocks is not None:
        return _block_step(Jd, rd, groups, mu, blocks, border)
    n = Jd.shape[2]
    A = np.swapaxes(Jd, 1, 2) @ Jd
    g = np.einsum("fmn,fm->fn", Jd, rd)
    for cols, P, r in groups:
        if cols.size:
            A[:, cols[:, :, None], cols[:, None, :]] += _gram(P)
            g[:, cols] += np.einsum("fbkw,fbk->fbw", P, r)
    diag = np.einsum("fii->fi", A)
    A[:, np.arange(n), np.arange(n)] += mu[:, None] * (diag + 1e-6)
    delta = -solve_spd(A, g)  # not np.linalg.solve: see mocap.geometry.linalg
    quad = np.sum(np.einsum("fmn,fn->fm", Jd, delta) ** 2, axis=1)
    return delta, -(2 * np.sum(g * delta, axis=1) + quad + _group_quad(groups, delta))


def _gram(P: np.ndarray) -> np.ndarray:
    """Pᵀ P over the last two axes, for a batch of small matrices: the transpose made contiguous first (the
    same products, bit for bit, about twice as fast for 3 × 3 blocks as through the strided view)."""
    return np.ascontiguousarray(np.swapaxes(P, -1, -2)) @ P


def _group_quad(groups, delta: np.ndarray) -> np.ndarray:
    """Σ |P δ|² of the groups' rows, per frame."""
    out = np.zeros(len(delta))
    for cols, P, _ in groups:
        if cols.size:
            out += np.sum(np.einsum("fbkw,fbw->fbk", P, delta[:, cols]) ** 2, axis=(1, 2))
    return out


def _block_step(Jb, rb, groups, mu, blocks: Blocks, border) -> tuple[np.ndarray, np.ndarray]:
    """The step of a block-arrow problem: each block's rows Jb (F, P, mr, a + mc) against the a = 6 velocity
    components of the frame it hangs from, then its own columns; ``border`` = (S (F, P, a, nb): that frame's
    velocity per border column, Jt (F, mt, nb), rt (F, mt): the rows that touch only the border), or None
    (no border: independent blocks)."""
    F = len(Jb)
    n = len(blocks.part)
    P, mc = blocks.cols.shape
    nb = blocks.border.size
    a = Jb.shape[3] - mc
    N = np.ascontiguousarray(np.swapaxes(Jb, -1, -2)) @ Jb  # (F, P, a + mc, a + mc); a strided Jᵀ is 3× slower
    g = np.einsum("fpmc,fpm->fpc", Jb, rb)  # (F, P, a + mc)
    A, gL = N[..., a:, a:], g[..., a:]  # each block's own
    T, gT = np.zeros((F, nb, nb)), np.zeros((F, nb))
    if nb:  # the border: its own rows, and each block's rows through its frame's velocity, Σ Sᵀ (XᵀX) S
        S, Jt, rt = border
        Sr = S.reshape(F, P * a, nb)
        T = np.ascontiguousarray(np.swapaxes(Jt, 1, 2)) @ Jt + np.swapaxes(Sr, 1, 2) @ (
            N[..., :a, :a] @ S).reshape(F, P * a, nb)
        gT = np.einsum("fmb,fm->fb", Jt, rt) + np.einsum("fkb,fk->fb", Sr, g[..., :a].reshape(F, P * a))
    for cols, Pm, r in groups:
        if cols.size:
            PtP, Ptr = _gram(Pm), np.einsum("fbkw,fbk->fbw", Pm, r)
            on = blocks.bpos[cols[:, 0]] >= 0
            if on.any():
                bp = blocks.bpos[cols[on]]
                T[:, bp[:, :, None], bp[:, None, :]] += PtP[:, on]
                gT[:, bp] += Ptr[:, on]
            if not on.all():
                part, loc = blocks.part[cols[~on]], blocks.loc[cols[~on]]
                A[:, part[:, :, None], loc[:, :, None], loc[:, None, :]] += PtP[:, ~on]
                gL[:, part, loc] += Ptr[:, ~on]
    ar = np.arange(mc)
    A[:, :, ar, ar] += mu[:, None, None] * (np.einsum("fpii->fpi", A) + 1e-6)
    pad = blocks.cols == n
    if pad.any():  # padded unknowns: 1 on the diagonal, no right-hand side, so δ = 0 there
        A[:, np.nonzero(pad)[0], np.nonzero(pad)[1], np.nonzero(pad)[1]] = 1.0
    # the blocks eliminated: with A = C Cᵀ (Cholesky) and Z = C⁻¹ [Bᵀ | g] (B: the frame velocity's rows × own
    # columns), the border's Schur complement is S = T − Σ Sᵀ Z_Bᵀ Z_B S with right-hand side
    # gT − Σ Sᵀ Z_Bᵀ Z_g; then each block's Cᵀ x = Z_g − Z_B S xT
    C = _cholesky(A.reshape(F * P, mc, mc))
    Z = _forward(C, np.concatenate([np.swapaxes(N[..., :a, a:], -1, -2), gL[..., None]], axis=-1)
                 .reshape(F * P, mc, a + 1))
    xT, w = np.zeros((F, nb)), Z[..., a]
    u = np.zeros((F, P, a))
    if nb:
        bt = np.arange(nb)
        T[:, bt, bt] += mu[:, None] * (np.einsum("fii->fi", T) + 1e-6)
        M = (np.ascontiguousarray(np.swapaxes(Z[..., :a], -1, -2)) @ Z).reshape(F, P, a, a + 1)
        E = (M[..., :a] @ S).reshape(F, P * a, nb)
        xT = solve_spd(T - np.swapaxes(Sr, 1, 2) @ E, gT - np.einsum("fkb,fk->fb", Sr, M[..., a].reshape(F, P * a)))
        u = np.einsum("fpab,fb->fpa", S, xT)
        w = w - np.einsum("nca,na->nc", Z[..., :a], u.reshape(F * P, a))
    db = -_backward(C, w).reshape(F, P, mc)
    dT = -xT
    delta = np.zeros((F, n + 1))
    delta[:, blocks.cols] = db  # padded entries land in the extra column
    delta[:, blocks.border] = dT
    delta = delta[:, :n]
    quad = np.sum(np.einsum("fpmc,fpc->fpm", Jb, np.concatenate([-u, db], axis=2)) ** 2, axis=(1, 2))
    if nb:
        quad += np.sum(np.einsum("fmb,fb->fm", Jt, dT) ** 2, axis=1)
    gd = np.sum(gL * db, axis=(1, 2)) + np.sum(gT * dT, axis=1)
    return delta, -(2 * gd + quad + _group_quad(groups, delta))


def _cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a batch of symmetric matrices (N, n, n); a batch where some matrix is not
    positive definite (NaN, or too badly conditioned) gets a relative jitter on the diagonal instead."""
    try:
        return np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        d = np.nan_to_num(np.einsum("nii->ni", A), nan=1.0)
        A = np.nan_to_num(A) + np.eye(A.shape[1]) * (1e-9 * np.maximum(np.abs(d), 1e-12))[..., None]
        return np.linalg.cholesky(A)


def _forward(C: np.ndarray, B: np.ndarray) -> np.ndarray:
    """C⁻¹ B for lower-triangular C (N, n, n) and B (N, n, k), by forward substitution over the batch (held
    last in memory meanwhile: each row's update is then one product over contiguous memory)."""
    Ct = np.ascontiguousarray(np.moveaxis(C, 0, -1))  # (n, n, N)
    Y = np.ascontiguousarray(np.moveaxis(B, 0, -1), dtype=float)  # (n, k, N), overwritten by the solution
    for i in range(C.shape[1]):
        if i:
            Y[i] -= np.einsum("jN,jkN->kN", Ct[i, :i], Y[:i])
        Y[i] /= Ct[i, i]
    return np.ascontiguousarray(np.moveaxis(Y, -1, 0))


def _backward(C: np.ndarray, y: np.ndarray) -> np.ndarray:
    """C⁻ᵀ y for lower-triangular C (N, n, n) and y (N, n), by back substitution over the batch."""
    x = np.empty_like(y)
    for k in range(C.shape[1] - 1, -1, -1):
        x[:, k] = (y[:, k] - np.einsum("nj,nj->n", C[:, k + 1:, k], x[:, k + 1:])) / C[:, k, k]
    return x
