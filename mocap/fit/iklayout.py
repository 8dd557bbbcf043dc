"""Where each entry of the IK's Jacobian goes (:mod:`mocap.fit.ik`), worked out once per problem.

The unknowns (:class:`Layout`); their block-arrow structure (:func:`arrow_blocks`, see :mod:`.ikstep`): the
border (the root's translation and the trunk), and a block per limb hanging from it; and for every kind of
entry (a point or vector turned by an ancestor, the root's translation, a block's rows against the velocity of
the frame it hangs from, a leaf group's six rows) the places it is written to (:class:`JacobianLayout`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mocap.fit.ikstep import Blocks
from mocap.fit.leaves import leaf_groups

if TYPE_CHECKING:
    from mocap.fit.ik import IKProblem

AR = np.arange(3)
# −[v]×'s entries off the diagonal: (row, column) = ±v[OFF_V] with the sign OFF_S
OFF_R, OFF_C = np.array([0, 0, 1, 1, 2, 2]), np.array([1, 2, 0, 2, 0, 1])
OFF_V, OFF_S = np.array([2, 1, 2, 0, 1, 0]), np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0])


class Layout:
    """The IK's unknowns: each joint's first column (−1: none) and count (1 for a hinge, 3 for a ball), after
    the root's translation (unless the root is held); each joint's ancestors."""

    def __init__(self, pb: IKProblem):
        sk = pb.skeleton
        J = len(sk.joint_names)
        self.J = J
        self.col = np.full(J, -1)
        self.ndof = np.zeros(J, int)
        n = 0 if pb.fixed_root else 3
        has_below = np.zeros(J, bool)  # something observable in the subtree (or a vector on it)
        for v in pb.vec_joint:
            has_below[v] = True
        for j in range(J - 1, 0, -1):
            has_below[sk.parents[j]] |= True
            has_below[sk.parents[j]] |= has_below[j]
        for j in range(J):
            if not has_below[j] or (j == 0 and pb.fixed_root):
                continue
            self.col[j] = n
            self.ndof[j] = 1 if j in pb.hinge_axes else 3
            n += self.ndof[j]
        self.n = n
        self.ancestors = []
        for j in range(J):
            a, k = [], sk.parents[j]
            while k >= 0:
                a.append(int(k))
                k = sk.parents[k]
            self.ancestors.append(a)


def arrow_blocks(pb: IKProblem, L: Layout, kept: np.ndarray, lgroups: list) -> Blocks:
    """The IK step's column blocks (see :mod:`.ikstep`): the border is the root's translation and the trunk
    (the joints at or above a joint where two branches with unknowns part), each block a limb hanging from
    it (the subtree of a trunk joint's other child): its joints' columns, and the rows of its points,
    vectors and leaf groups. Rows index the dense layout: the ``kept`` point and vector rows, then six
    per leaf group; the rows that touch only the border make one more block (without columns)."""
    sk = pb.skeleton
    J = L.J
    below = L.col >= 0  # some unknown in the subtree
    for j in range(J - 1, 0, -1):
        below[sk.parents[j]] |= below[j]
    trunk = np.zeros(J, bool)
    for j in range(J - 1, -1, -1):
        kids = np.flatnonzero(sk.parents == j)
        trunk[j] |= int(below[kids].sum()) >= 2 or bool(trunk[kids].any())
    head = np.full(J, -1)  # the topmost joint of each non-trunk joint's limb
    for j in range(J):
        if not trunk[j]:
            k = int(sk.parents[j])
            head[j] = head[k] if k >= 0 and not trunk[k] else j
    heads = [h for h in np.unique(head[head >= 0]) if (L.col[head == h] >= 0).any()]
    block = np.full(J, len(heads))  # each joint's rows' block; the trunk's (and limbs without unknowns') last
    for b, h in enumerate(heads):
        block[head == h] = b
    border = ([] if pb.fixed_root else [0, 1, 2]) + [L.col[j] + i for j in range(J) if trunk[j] and L.col[j] >= 0
                                                    for i in range(L.ndof[j])]
    cols = [[L.col[j] + i for j in range(J) if block[j] == b and L.col[j] >= 0 for i in range(L.ndof[j])]
            for b in range(len(heads))] + [[]]
    row_block = np.r_[np.repeat(block, 3), np.repeat(block[pb.vec_joint], 3)][kept]
    row_block = np.r_[row_block, np.repeat([block[g.joint] for g in lgroups], 6).astype(int)]
    rows = [list(np.flatnonzero(row_block == b)) for b in range(len(heads))]
    attach = [int(sk.parents[h]) for h in heads]
    return Blocks.of(rows, cols[:-1], row_block.size, L.n, border, np.flatnonzero(row_block == len(heads)), attach)


class JacobianLayout:
    """The IK's rows and where each Jacobian entry goes: (block, row in it, column in it; the velocity of the
    block's frame first) for the limbs' rows, (row, border column) for the trunk's."""

    def __init__(self, pb: IKProblem, L: Layout):
        sk = pb.skeleton
        J, V = L.J, len(pb.vec_joint)
        lgroups = [] if pb.fixed_root else leaf_groups(sk.parents, L.col, pb.vec_joint)
        grouped = np.zeros(J, bool)
        for grp in lgroups:
            grouped[grp.targets] = True
        pairs = [(d, k) for d in range(J) for k in L.ancestors[d] if L.col[k] >= 0 and not grouped[d]]
        pairs_ball = tuple(np.array([x[i] for x in pairs if x[1] not in pb.hinge_axes], int) for i in (0, 1))
        pairs_hinge = tuple(np.array([x[i] for x in pairs if x[1] in pb.hinge_axes], int) for i in (0, 1))
        # (vector, joint turning it): the vector's own joint and its ancestors
        vpairs = [(v, k) for v, k0 in enumerate(pb.vec_joint) for k in [int(k0)] + L.ancestors[k0] if L.col[k] >= 0]
        vpairs_ball = tuple(np.array([x[i] for x in vpairs if x[1] not in pb.hinge_axes], int) for i in (0, 1))
        vpairs_hinge = tuple(np.array([x[i] for x in vpairs if x[1] in pb.hinge_axes], int) for i in (0, 1))
        # the dense rows: each point's and vector's three, less the leaf groups' targets, then six per leaf group
        m = 3 * J + 3 * V
        kept = np.flatnonzero(~np.repeat(np.r_[grouped, np.zeros(V, bool)], 3))  # the rows not folded
        r_map = np.full(m, -1)
        r_map[kept] = np.arange(kept.size)
        blocks = arrow_blocks(pb, L, kept, lgroups)
        nb = blocks.border.size
        a = 6 if nb else 0  # a block's rows see the border through the velocity (linear, angular) of its frame
        j_shape = blocks.rows.shape + (a + blocks.cols.shape[1],)
        R = kept.size + 6 * len(lgroups)  # the dense rows
        r_part, r_loc, t_loc = np.full(R + 1, -1), np.zeros(R + 1, int), np.full(R + 1, -1)
        for b, rows in enumerate(blocks.rows):
            r_part[rows], r_loc[rows] = b, np.arange(len(rows))
        t_loc[blocks.trunk] = np.arange(blocks.trunk.size)
        r_part[R] = -1

        def split(D, rows, cols):
            """(row, column) entries of the pairs D → those in a block (its own columns) and in the trunk's rows
            (border columns), as (pair indices, flat places); a block's border entries come through its frame."""
            rr, own = r_map[rows], blocks.bpos[cols[:, 0]] < 0
            tr = ~own & (t_loc[rr[:, 0]] >= 0)
            # as flat places in one frame's entries (one index array is quicker to scatter with than three)
            return (np.flatnonzero(own), np.ravel_multi_index((r_part[rr[own]], r_loc[rr[own]],
                                                               a + blocks.loc[cols[own]]), j_shape),
                    np.flatnonzero(tr), np.ravel_multi_index((t_loc[rr[tr]], blocks.bpos[cols[tr]]),
                                                             (blocks.trunk.size, nb)))
        # each leaf group's six rows: their block, places in it, and its own columns
        at_lg = []
        for i in range(len(lgroups)):
            vr = kept.size + 6 * i + np.arange(6)
            b = int(r_part[vr[0]])
            vc = np.flatnonzero(blocks.part == b)
            at_lg.append((b, r_loc[vr][:, None], a + blocks.loc[vc][None, :], vc))
        free = np.flatnonzero(~grouped)
        # the trunk's points, which the root's translation moves (a block's points: through its frame)
        tf = free[(t_loc[r_map[3 * free]] >= 0) & (not pb.fixed_root)]
        at_root = t_loc[r_map[3 * tf[:, None] + AR]]
        # a ball's block −[lever]× has six entries off its diagonal: rows OFF_R, columns OFF_C, ± the lever's OFF_V
        D, K = pairs_ball
        at_pb = split(D, 3 * D[:, None] + OFF_R, L.col[K][:, None] + OFF_C)
        D, K = pairs_hinge
        at_ph = split(D, 3 * D[:, None] + AR[None, :], np.broadcast_to(L.col[K][:, None], (K.size, 3)))
        Vb, K = vpairs_ball
        at_vb = split(Vb, 3 * J + 3 * Vb[:, None] + OFF_R, L.col[K][:, None] + OFF_C)
        Vh, K = vpairs_hinge
        at_vh = split(Vh, 3 * J + 3 * Vh[:, None] + AR[None, :], np.broadcast_to(L.col[K][:, None], (K.size, 3)))
        # the rows of the blocks against their frame's velocity: points [I, −[p − p_frame]×], vectors [0, −[v]×]
        xd = np.array([d for d in free if r_part[r_map[3 * d]] >= 0], int)
        xb = r_part[r_map[3 * xd]]
        xl = r_loc[r_map[3 * xd[:, None] + AR]]
        xk = np.maximum(blocks.attach[xb], 0)  # −1 (the block holds the root): the frame is still, any lever
        xv = np.array([v for v in range(V) if r_part[r_map[3 * J + 3 * v]] >= 0], int)
        vb_ = r_part[r_map[3 * J + 3 * xv]]
        vl_ = r_loc[r_map[3 * J + 3 * xv[:, None] + AR]]
        frames = sorted(set(blocks.attach.tolist()))
        self.lgroups, self.kept, self.blocks, self.a, self.nb, self.j_shape = lgroups, kept, blocks, a, nb, j_shape
        self.pairs = (pairs_ball, pairs_hinge, vpairs_ball, vpairs_hinge)
        self.at = (at_pb, at_ph, at_vb, at_vh)
        self.at_lg, self.tf, self.at_root, self.frames = at_lg, tf, at_root, frames
        self.x_points = (xd, xb, xl, xk)
        self.x_vectors = (xv, vb_, vl_)
