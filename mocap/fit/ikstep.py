"""The IK's batched Levenberg–Marquardt step (:mod:`mocap.fit.ik`): dense, or in independent column blocks.

A problem whose columns split into groups that no row couples (the fingers of a hand held at its fitted
wrist: each finger's joints move only that finger's points) has a block-diagonal normal matrix; its
step is solved block by block (:class:`Blocks`), all blocks of all frames in one batch, instead of as one
dense system per frame: for a hand, 5 systems of at most 7 unknowns instead of one of 27.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap.geometry.linalg import solve_spd


@dataclass(frozen=True)
class Blocks:
    """Independent column blocks of an (m, n) Jacobian: block p holds the rows ``rows[p]`` and the columns
    ``cols[p]``, padded with m (a zero row) and n (a zero column) to equal lengths; ``part`` and ``loc``:
    each column's block and its place in it."""

    rows: np.ndarray  # (P, mr)
    cols: np.ndarray  # (P, mc)
    part: np.ndarray  # (n,)
    loc: np.ndarray  # (n,)

    @classmethod
    def of(cls, row_sets: list[list[int]], col_sets: list[list[int]], m: int, n: int) -> Blocks:
        """From each block's rows and columns (every column in exactly one block; rows in no block must
        touch no column)."""
        cols_all = sorted(c for cs in col_sets for c in cs)
        if cols_all != list(range(n)) or len(row_sets) != len(col_sets):
            raise ValueError(f"Blocks: the column sets must partition range({n}) and match the {len(row_sets)} "
                             f"row sets, got {col_sets}")
        mr, mc = max(map(len, row_sets)), max(map(len, col_sets))
        rows = np.array([list(r) + [m] * (mr - len(r)) for r in row_sets], int).reshape(len(row_sets), mr)
        cols = np.array([list(c) + [n] * (mc - len(c)) for c in col_sets], int).reshape(len(col_sets), mc)
        part, loc = np.zeros(n, int), np.zeros(n, int)
        for p, cs in enumerate(col_sets):
            part[cs], loc[cs] = p, np.arange(len(cs))
        return cls(rows, cols, part, loc)


def damped_step(Jd: np.ndarray, rd: np.ndarray, groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                mu: np.ndarray, blocks: Blocks | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Batched Levenberg–Marquardt step: solve (JᵀJ + μ diag(JᵀJ)) δ = −Jᵀr for every frame.

    Jd, rd: the dense rows (F, m, n), (F, m), or with ``blocks`` (the columns' independent blocks) each
    block's rows (F, P, mr, mc), (F, P, mr), padded with zeros; groups: rows that touch only w columns each
    (the priors of the joints), as (columns (b, w), Jacobians (F, b, k, w), residuals (F, b, k)) for b
    blocks whose columns do not overlap inside a group (and lie in one of ``blocks``); each group is added
    at once. Without blocks, uses torch's batched Cholesky when torch is installed and the batch is large
    (~2.5× numpy's LU here). Returns δ (F, n) and the decrease of Σr² the linear model predicts."""
    if blocks is not None:
        return _block_step(Jd, rd, groups, mu, blocks)
    torch = None
    if len(Jd) >= 1000:  # below that numpy is quicker than importing torch
        try:
            import torch
        except ImportError:
            torch = None
    n = Jd.shape[2]
    if torch is not None:
        Jt = torch.from_numpy(Jd)
        A = (Jt.mT @ Jt).numpy()
    else:
        A = np.swapaxes(Jd, 1, 2) @ Jd
    g = np.einsum("fmn,fm->fn", Jd, rd)
    for cols, P, r in groups:
        if cols.size:
            A[:, cols[:, :, None], cols[:, None, :]] += np.swapaxes(P, -1, -2) @ P
            g[:, cols] += np.einsum("fbkw,fbk->fbw", P, r)
    diag = np.einsum("fii->fi", A)
    A[:, np.arange(n), np.arange(n)] += mu[:, None] * (diag + 1e-6)
    if torch is not None:
        At, gt = torch.from_numpy(A), torch.from_numpy(g)[..., None]
        L, info = torch.linalg.cholesky_ex(At)
        sol = torch.cholesky_solve(gt, L) if not bool((info != 0).any()) else torch.linalg.lstsq(At, gt).solution
        delta = -sol[..., 0].numpy()
    else:
        delta = -solve_spd(A, g)  # not np.linalg.solve: see mocap.geometry.linalg
    quad = np.sum(np.einsum("fmn,fn->fm", Jd, delta) ** 2, axis=1)
    return delta, -(2 * np.sum(g * delta, axis=1) + quad + _group_quad(groups, delta))


def _group_quad(groups, delta: np.ndarray) -> np.ndarray:
    """Σ |P δ|² of the groups' rows, per frame."""
    out = np.zeros(len(delta))
    for cols, P, _ in groups:
        if cols.size:
            out += np.sum(np.einsum("fbkw,fbw->fbk", P, delta[:, cols]) ** 2, axis=(1, 2))
    return out


def _block_step(Jb, rb, groups, mu, blocks: Blocks) -> tuple[np.ndarray, np.ndarray]:
    F = len(Jb)
    n = len(blocks.part)
    P, mc = blocks.cols.shape
    A = np.swapaxes(Jb, -1, -2) @ Jb  # (F, P, mc, mc)
    g = np.einsum("fpmc,fpm->fpc", Jb, rb)
    for cols, Pm, r in groups:
        if cols.size:
            part, loc = blocks.part[cols], blocks.loc[cols]
            A[:, part[:, :, None], loc[:, :, None], loc[:, None, :]] += np.swapaxes(Pm, -1, -2) @ Pm
            g[:, part, loc] += np.einsum("fbkw,fbk->fbw", Pm, r)
    ar = np.arange(mc)
    diag = np.einsum("fpii->fpi", A)
    A[:, :, ar, ar] += mu[:, None, None] * (diag + 1e-6)
    pad = blocks.cols == n
    if pad.any():  # padded unknowns: 1 on the diagonal, no right-hand side, so δ = 0 there
        A[:, np.nonzero(pad)[0], np.nonzero(pad)[1], np.nonzero(pad)[1]] = 1.0
    db = -solve_spd(A.reshape(F * P, mc, mc), g.reshape(F * P, mc)).reshape(F, P, mc)
    delta = np.zeros((F, n + 1))
    delta[:, blocks.cols] = db  # padded entries land in the extra column
    delta = delta[:, :n]
    quad = np.sum(np.einsum("fpmc,fpc->fpm", Jb, db) ** 2, axis=(1, 2))
    return delta, -(2 * np.sum(g * db, axis=(1, 2)) + quad + _group_quad(groups, delta))
