"""Inverse kinematics: local joint rotations and root translation from joint-centre targets and
orientation vectors, every frame solved at once by a batched Levenberg–Marquardt.

Parametrisation: a step turns joint k by a world rotation ω_k while its descendants' local rotations
stay, so a descendant d moves by ω_k × (p_d − p_k): the Jacobian is exact and cheap. A hinge joint
(elbow, knee) has one angle about its axis, with soft limits. A 2-DoF joint (finger MCP, thumb CMC) is a
ball whose rotation vector keeps to the plane of its flexion and spread axes (a stiff prior on the twist
about the bone) with soft limits on both angles. A weak prior on every local rotation
decides what the data leave free (how the spine shares a bend, a twist no keypoint sees).
Initialisation: top-down alignment of each joint's rest directions to its observed ones (Kabsch).
The step is solved limb by limb around the trunk (:mod:`.ikstep`, layout in :mod:`.iklayout`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mocap.fit.bend import twist_to_bend
from mocap.fit.iklayout import OFF_C, OFF_R, OFF_S, OFF_V, JacobianLayout, Layout
from mocap.fit.ikstep import damped_step
from mocap.fit.leaves import virtual_rows
from mocap.geometry.align import kabsch
from mocap.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    rotation_between,
    skew,
    so3_log_jacobian_inv,
)
from mocap.types import Skeleton, forward_kinematics


@dataclass(frozen=True)
class IKProblem:
    skeleton: Skeleton
    hinge_axes: dict[int, np.ndarray]  # joint → unit axis in its rest (= parent's) frame
    limits: dict[int, tuple[float, float]]  # hinge joint → (lo, hi) radians
    vec_joint: np.ndarray  # (V,) joint carrying each orientation vector
    vec_rest: np.ndarray  # (V, 3) unit rest directions
    pos_sigma: float = 0.01  # m: scale of a joint-centre residual
    vec_sigma: float = 0.5  # unit-vector distance scale of an orientation residual (≈ rad)
    prior_sigma: float = 5.0  # rad: weak prior on local rotations (decides only what the data leave free)
    limit_sigma: float = 0.02  # rad: hinge limits
    # 2-DoF joint → (rows: unit flexion, spread and twist axes (3, 3) in its rest frame, flexion limits,
    # spread limits (radians)[, its own twist: σ, or (low, high) limits (radians)])
    dof2: dict[int, tuple] = field(default_factory=dict)
    twist_sigma: float = 0.03  # rad: how far a 2-DoF joint may twist about its bone (where it gives none)
    fixed_root: bool = False  # the root's position and rotation stay as given (a hand under its fitted wrist)


def _over(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """How far x lies outside [lo, hi] (0 inside)."""
    return np.where(x < lo, x - lo, np.where(x > hi, x - hi, 0.0))


def _hinge_angle(axis: np.ndarray, q: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Angle about ``axis`` that best turns q (3,) towards o (F, 3) (both in the parent frame)."""
    qp = q - axis * (axis @ q)
    op = o - np.outer(o @ axis, axis)
    return np.arctan2(np.cross(qp, op) @ axis, op @ qp)


def initial_pose(pb: IKProblem, y: np.ndarray, vecs: np.ndarray,
                 root_rotation: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Local rotations (F, J, 3, 3) and root (F, 3) from targets y (F, J, 3) and vectors (F, V, 3).
    ``root_rotation`` (F, 3, 3): the root's rotation when it is known (a hand under its fitted wrist),
    else it is aligned to its targets like every other joint."""
    sk = pb.skeleton
    F, J = y.shape[:2]
    children = [[c for c in range(J) if sk.parents[c] == j] for j in range(J)]
    mapped = np.isfinite(y).all(axis=2)  # (F, J)
    rest = np.zeros((J, 3))
    for j in range(1, J):
        rest[j] = rest[sk.parents[j]] + sk.offsets[j]

    def aims(j: int) -> list[int]:  # first mapped-anywhere joint down each branch
        out = []
        for c in children[j]:
            out += [c] if mapped[:, c].any() else aims(c)
        return out

    local = np.tile(np.eye(3), (F, J, 1, 1))
    root = np.where(mapped[:, :1], y[:, 0], np.nanmean(y, axis=1))
    root = np.where(np.isfinite(root), root, 0.0)
    G = np.tile(np.eye(3), (F, J, 1, 1))
    p = np.zeros((F, J, 3))
    p[:, 0] = root
    for j in range(J):
        par = sk.parents[j]
        if par >= 0:
            p[:, j] = p[:, par] + G[:, par] @ sk.offsets[j]
        elif root_rotation is not None:
            local[:, j] = G[:, j] = root_rotation
            continue
        Gp = G[:, par] if par >= 0 else np.tile(np.eye(3), (F, 1, 1))
        a = aims(j)
        q = [rest[c] - rest[j] for c in a] + [r for r in pb.vec_rest[pb.vec_joint == j]]
        o = [y[:, c] - p[:, j] for c in a] + [vecs[:, v] for v in np.flatnonzero(pb.vec_joint == j)]
        if q:
            q, o = np.array(q), np.stack(o, axis=1)
            w = np.isfinite(o).all(axis=2).astype(float)
            o = np.nan_to_num(o)
            if j in pb.hinge_axes:
                oi = np.einsum("fji,fj->fi", Gp, o[:, 0])  # into the parent frame
                ang = np.where(w[:, 0] > 0, _hinge_angle(pb.hinge_axes[j], q[0], oi), 0.0)
                local[:, j] = axis_angle_to_matrix(ang[:, None] * pb.hinge_axes[j])
            else:
                n = w.sum(axis=1)
                Gj = Gp.copy()  # no direction: the parent's frame
                many = n >= 2
                if many.any():  # Kabsch in world space; the parent's axes, weighted lightly, settle degenerate frames
                    qq = np.concatenate([q, np.eye(3) * 1e-3], axis=0)
                    oo = np.concatenate([o[many], np.swapaxes(Gp[many], -1, -2) * 1e-3], axis=1)
                    Gj[many] = kabsch(qq, oo, np.concatenate([w[many], np.ones((int(many.sum()), 3))], axis=1))
                one = n == 1  # a single direction: the smallest turn from the parent's frame
                if one.any():
                    k = np.argmax(w[one], axis=1)
                    u = np.einsum("fij,fj->fi", Gp[one], q[k])
                    Gj[one] = rotation_between(u, o[one, k]) @ Gp[one]
                    if len(a) == 1 and a[0] in pb.hinge_axes and sk.parents[a[0]] == j and j not in pb.dof2:
                        # only where the bone itself was aimed at (not a vector of j's, the elbow unseen)
                        Gj = twist_to_bend(pb, a[0], aims(a[0]), Gj, p[:, j], y, one & (w[:, 0] > 0), Gp)
                local[:, j] = np.swapaxes(Gp, -1, -2) @ Gj
        G[:, j] = Gp @ local[:, j]
    return local, root


def _pick(ok: np.ndarray, new, old, keep: np.ndarray):
    """``new`` where ``ok`` else ``old`` (arrays over frames, or tuples of them, or None), at frames ``keep``."""
    if new is None:
        return None
    if isinstance(new, tuple):
        return tuple(_pick(ok, a, b, keep) for a, b in zip(new, old, strict=True))
    ok = ok[keep]
    return np.where(ok.reshape(ok.shape + (1,) * (new.ndim - 1)), new[keep], old[keep])


def solve_ik(pb: IKProblem, y: np.ndarray, wy: np.ndarray, vecs: np.ndarray, wv: np.ndarray,
             local: np.ndarray, root: np.ndarray, iterations: int = 20, ref: np.ndarray | None = None,
             ref_w: np.ndarray | None = None, model_stop: bool = False, root_ref: np.ndarray | None = None,
             root_w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refine local rotations (F, J, 3, 3) and root (F, 3). y: (F, J, 3) targets with weights wy (F, J)
    (0 where missing); vecs: (F, V, 3) unit vectors with weights wv (F, V). ``ref`` (F, J, 3, 3) with
    ``ref_w`` (F, J) (1/σ in 1/rad, 0 = none): where ref_w > 0, the prior pulls joint j's local rotation
    towards ref[f, j] instead of the rest pose (used to bridge gaps); ``root_ref`` (F, 3) with ``root_w`` (F,)
    (1/σ in 1/m, 0 = none): likewise for the root's position (an unseen pelvis). ``model_stop``: a frame is also done
    when the step just taken did what its linear model predicted, up to the convergence threshold (the gain
    the next step could still make is about the model's error plus what the damping held back: a step damped
    by μ leaves μ²/(1+μ)² of the model's decrease, at most μ² of the decrease it predicted), which saves
    the confirming step of problems that are nearly linear near their start (the finger pass). Returns local,
    root and the final RMS position residual per frame (m)."""
    sk, L = pb.skeleton, Layout(pb)
    F, J = y.shape[:2]
    y = np.nan_to_num(y)
    vecs = np.nan_to_num(vecs)
    sy, sv = np.sqrt(wy) / pb.pos_sigma, np.sqrt(wv) / pb.vec_sigma
    # every joint kind as index arrays, so that residuals and Jacobians take all joints of a kind at once
    hj = [k for k in range(J) if L.col[k] >= 0 and k in pb.hinge_axes]  # hinges (1 column each)
    balls = [j for j in range(J) if L.col[j] >= 0 and j not in pb.hinge_axes]  # 3 columns each
    d2 = [j for j in balls if j in pb.dof2]  # balls held to a plane with limits (finger bases)
    d2_in_balls = [balls.index(j) for j in d2]
    h_axes = np.array([pb.hinge_axes[k] for k in hj], float).reshape(-1, 3)
    h_lo, h_hi = (np.array([pb.limits.get(k, (-np.inf, np.inf))[i] for k in hj], float) for i in (0, 1))
    h_pos = np.full(J, -1)
    h_pos[hj] = np.arange(len(hj))
    d2_axes = np.array([pb.dof2[j][0] for j in d2], float).reshape(-1, 3, 3)
    lims = np.array([[pb.dof2[j][1], pb.dof2[j][2]] for j in d2], float).reshape(-1, 2, 2)  # (flexion, spread)
    f_lo, f_hi, s_lo, s_hi = lims[:, 0, 0], lims[:, 0, 1], lims[:, 1, 0], lims[:, 1, 1]
    # the twist's residual: how far it lies outside [t_lo, t_hi] over t_sig (a σ: both 0; limits: limit_sigma)
    twists = [np.atleast_1d(pb.dof2[j][3] if len(pb.dof2[j]) > 3 else pb.twist_sigma) for j in d2]
    t_lo, t_hi = (np.array([t[i] if t.size == 2 else 0.0 for t in twists], float) for i in (0, -1))
    t_sig = np.array([pb.limit_sigma if t.size == 2 else t[0] for t in twists], float)
    AR = np.arange(3)
    b_cols, h_cols, d2_cols = L.col[balls][:, None] + AR, L.col[hj][:, None], L.col[d2][:, None] + AR
    par = np.maximum(sk.parents, 0)
    top = sk.parents < 0
    X = JacobianLayout(pb, L)
    lgroups, kept, blocks, a, nb, j_shape = X.lgroups, X.kept, X.blocks, X.a, X.nb, X.j_shape
    (pairs_ball, pairs_hinge, vpairs_ball, vpairs_hinge), (at_pb, at_ph, at_vb, at_vh) = X.pairs, X.at
    at_lg, tf, at_root, frames = X.at_lg, X.tf, X.at_root, X.frames
    (xd, xb, xl, xk), (xv, vb_, vl_) = X.x_points, X.x_vectors
    V = len(pb.vec_joint)
    ps = np.full((F, J), 1.0 / pb.prior_sigma)  # the prior's 1/σ per frame and joint
    refT, th_ref = None, np.zeros((F, len(hj)))
    pull = root_ref is not None and root_w is not None and (root_w > 0).any() and not pb.fixed_root
    if pull:
        root_ref, root_w = np.nan_to_num(np.asarray(root_ref, float)), np.asarray(root_w, float)
    if ref is not None and ref_w is not None and (ref_w > 0).any():
        on = ref_w > 0
        ps = np.where(on, ref_w, ps)
        refT = np.where(on[..., None, None], np.swapaxes(ref, -1, -2), np.eye(3))[:, balls]
        if hj:
            th_ref = np.where(on[:, hj], np.einsum("fhi,hi->fh", matrix_to_axis_angle(ref[:, hj]), h_axes), 0.0)

    def residuals(sel, local, root):
        F = len(sel)
        G, p = forward_kinematics(sk, local, root)
        rp = (p - y[sel]) * sy[sel][..., None]
        rv = (np.einsum("fvij,vj->fvi", G[:, pb.vec_joint], pb.vec_rest) - vecs[sel]) * sv[sel][..., None]
        # the rotation vectors of the balls (against their prior's reference), the hinges and the 2-DoF joints
        # (their own), in one conversion
        rots = [local[:, balls] if refT is None else local[:, balls] @ refT[sel], local[:, hj]]
        if refT is not None:
            rots.append(local[:, d2])
        aa = matrix_to_axis_angle(np.concatenate(rots, axis=1))
        phi, aa_h = aa[:, :len(balls)], aa[:, len(balls):len(balls) + len(hj)]
        r = [rp.reshape(F, -1), rv.reshape(F, -1), (phi * ps[sel][:, balls, None]).reshape(F, -1)]
        theta = psi = None
        if hj:  # per hinge: its limit, then its prior
            theta = np.einsum("fhi,hi->fh", aa_h, h_axes)
            r.append(np.stack([_over(theta, h_lo, h_hi) / pb.limit_sigma, (theta - th_ref[sel]) * ps[sel][:, hj]],
                              axis=2).reshape(F, -1))
        if d2:  # per 2-DoF joint: flexion and spread limits, twist
            psi = phi[:, d2_in_balls] if refT is None else aa[:, len(balls) + len(hj):]
            c = np.einsum("fni,nki->fnk", psi, d2_axes)
            r.append(np.stack([_over(c[..., 0], f_lo, f_hi) / pb.limit_sigma,
                               _over(c[..., 1], s_lo, s_hi) / pb.limit_sigma, _over(c[..., 2], t_lo, t_hi) / t_sig],
                              axis=2).reshape(F, -1))
        if pull:  # the root's position against its reference: the last 3 rows
            r.append((root - root_ref[sel]) * root_w[sel, None])
        return np.concatenate(r, axis=1), G, p, phi, (theta, psi)

    def jacobian(sel, G, p, phi, angles, r):
        F = len(sel)
        theta, psi = angles
        sy_, sv_, ps_ = sy[sel], sv[sel], ps[sel]
        nd = 3 * J + 3 * V
        nh = nd + 3 * len(balls)
        Jm = np.zeros((F,) + j_shape)
        Jt = np.zeros((F, blocks.trunk.size, nb))
        Gpar = G[:, par]  # each joint's parent's world rotation (the identity above the root)
        Gpar[:, top] = np.eye(3)
        waxis = np.einsum("fhij,hj->fhi", Gpar[:, hj], h_axes)  # hinge axes in the world
        if tf.size:
            Jt[:, at_root, AR] = sy_[:, tf, None]

        def put(at, val):  # (F, pairs, e) values of split pairs → the blocks' and the trunk's rows
            own, at_own, tr, at_tr = at
            if own.size:
                Jm.reshape(F, -1)[:, at_own] = val(own)
            if tr.size:
                Jt.reshape(F, -1)[:, at_tr] = val(tr)
        # every (point, ancestor) pair at once: a ball ancestor turns the point by −[lever]×, a hinge by axis × lever
        D, K = pairs_ball
        put(at_pb, lambda i: (p[:, D[i]] - p[:, K[i]])[..., OFF_V] * (OFF_S * sy_[:, D[i], None]))
        D, K = pairs_hinge
        put(at_ph, lambda i: np.cross(waxis[:, h_pos[K[i]]], p[:, D[i]] - p[:, K[i]]) * sy_[:, D[i], None])
        vw = np.einsum("fvij,vj->fvi", G[:, pb.vec_joint], pb.vec_rest)
        Vb, K = vpairs_ball  # and every (vector, turning joint) pair
        put(at_vb, lambda i: vw[:, Vb[i]][..., OFF_V] * (OFF_S * sv_[:, Vb[i], None]))
        Vh, K = vpairs_hinge
        put(at_vh, lambda i: np.cross(waxis[:, h_pos[K[i]]], vw[:, Vh[i]]) * sv_[:, Vh[i], None])
        S = None
        if a:  # the blocks' rows against their frame's velocity, and that velocity per border column
            Jm[:, xb[:, None], xl, AR] = sy_[:, xd, None]
            Jm[:, xb[:, None], xl[:, OFF_R], 3 + OFF_C] = (p[:, xd] - p[:, xk])[..., OFF_V] * (OFF_S * sy_[:, xd, None])
            Jm[:, vb_[:, None], vl_[:, OFF_R], 3 + OFF_C] = vw[:, xv][..., OFF_V] * (OFF_S * sv_[:, xv, None])
            Sk = {k: (_frame_velocity(k, p, waxis) if k >= 0 else _still(F))[:, :, blocks.border] for k in frames}
            S = np.stack([Sk[int(k)] for k in blocks.attach], axis=1)  # (F, P, 6, nb)
        rd = [r[:, kept]]
        for i, grp in enumerate(lgroups):
            b, rl, cl, vc = at_lg[i]
            S_h = _frame_velocity(grp.joint, p, waxis)
            if a:  # and the border part through the block's frame k: S_h = [[I, −[p_h − p_k]×], [0, I]] S_k there
                k = max(int(blocks.attach[b]), 0)
                phi_k = np.tile(np.eye(6), (F, 1, 1))
                phi_k[:, OFF_R, 3 + OFF_C] = (p[:, grp.joint] - p[:, k])[:, OFF_V] * OFF_S
                S_h = np.concatenate([S_h, phi_k], axis=2)
            rows, rho = virtual_rows(grp, p, sy_, r[:, :3 * J].reshape(F, J, 3), S_h)
            Jm[:, b, rl, cl] = rows[:, :, vc]
            if a:
                Jm[:, b, rl, np.arange(6)] = rows[:, :, L.n:]
            rd.append(rho)
        rd = np.concatenate(rd + [np.zeros((F, 1))], axis=1)
        border = (S, Jt, rd[:, blocks.trunk]) if a else None
        rd = rd[:, blocks.rows]
        # the priors, one group per joint kind: (columns, Jacobian blocks, residuals)
        Jl = so3_log_jacobian_inv(phi)
        P = (Jl @ np.swapaxes(Gpar[:, balls], -1, -2)) * ps_[:, balls, None, None]
        groups = [(b_cols, P, r[:, nd:nh].reshape(F, -1, 3))]
        if hj:
            out = ((theta < h_lo) | (theta > h_hi)) / pb.limit_sigma
            P = np.stack([out, ps_[:, hj]], axis=2)[..., None]
            groups.append((h_cols, P, r[:, nh:nh + 2 * len(hj)].reshape(F, -1, 2)))
        if d2:
            c = np.einsum("fni,nki->fnk", psi, d2_axes)
            scale = np.stack([((c[..., 0] < f_lo) | (c[..., 0] > f_hi)) / pb.limit_sigma,
                              ((c[..., 1] < s_lo) | (c[..., 1] > s_hi)) / pb.limit_sigma,
                              ((c[..., 2] < t_lo) | (c[..., 2] > t_hi) | (t_lo == t_hi)) / t_sig], axis=2)
            Jd2 = Jl[:, d2_in_balls] if refT is None else so3_log_jacobian_inv(psi)
            P = scale[..., None] * (d2_axes @ Jd2 @ np.swapaxes(Gpar[:, d2], -1, -2))
            groups.append((d2_cols, P, r[:, nh + 2 * len(hj):r.shape[1] - 3 * pull].reshape(F, -1, 3)))
        if pull:
            P = root_w[sel, None, None, None] * np.eye(3)
            groups.append((AR[None], P, r[:, -3:].reshape(F, 1, 3)))
        return Jm, rd, groups, border

    def _still(F):
        """(F, 6, n): the velocity of a world frame that only the root's translation moves."""
        S = np.zeros((F, 6, L.n))
        S[:, AR, AR] = 1.0
        return S

    def _frame_velocity(h, p, waxis):
        """(F, 6, n): the linear and angular velocity of joint h's frame per unknown."""
        S = np.zeros((len(p), 6, L.n))
        if not pb.fixed_root:
            S[:, AR, AR] = 1.0
        for k in L.ancestors[h] + [h]:
            c = L.col[k]
            if c < 0:
                continue
            if k in pb.hinge_axes:
                a = waxis[:, h_pos[k]]
                S[:, :3, c] = np.cross(a, p[:, h] - p[:, k])
                S[:, 3:, c] = a
            else:
                S[:, :3, c:c + 3] = -skew(p[:, h] - p[:, k])
                S[:, 3:, c:c + 3] = np.eye(3)
        return S

    h_cols1 = L.col[hj]
    b_par = par[balls]
    b_root = top[balls]

    def apply(local, root, G, delta):
        local = local.copy()
        root = root if pb.fixed_root else root + delta[:, 0:3]
        if hj:
            local[:, hj] = axis_angle_to_matrix(delta[:, h_cols1][..., None] * h_axes) @ local[:, hj]
        if balls:
            Gp = np.where(b_root[:, None, None], np.eye(3), G[:, b_par])
            w = np.einsum("fbji,fbj->fbi", Gp, delta[:, b_cols])  # world turn → parent frame
            local[:, balls] = axis_angle_to_matrix(w) @ local[:, balls]
        return local, root

    local, root = local.copy(), root.copy()
    sel = np.arange(F)
    r, G, p, phi, theta = residuals(sel, local, root)
    cost = np.sum(r**2, axis=1)
    mu = np.full(F, 1e-3)
    nu = np.full(F, 2.0)
    for _ in range(iterations):
        Jd, rd, groups, border = jacobian(sel, G, p, phi, theta, r)
        delta, pred = damped_step(Jd, rd, groups, mu[sel], blocks, border)
        new_local, new_root = apply(local[sel], root[sel], G, delta)
        r2, G2, p2, phi2, theta2 = residuals(sel, new_local, new_root)
        cost2 = np.sum(r2**2, axis=1)
        ok = cost2 < cost[sel]
        gain = np.where(ok, cost[sel] - cost2, 0.0)
        local[sel[ok]], root[sel[ok]], cost[sel[ok]] = new_local[ok], new_root[ok], cost2[ok]
        # Nielsen's damping update from the gain ratio
        rho = gain / np.maximum(pred, 1e-12)
        mu_step = mu[sel]
        mu[sel] = np.where(ok, mu[sel] * np.maximum(1 / 3, 1 - (2 * np.clip(rho, 0, 1) - 1) ** 3), mu[sel] * nu[sel])
        mu[sel] = np.maximum(mu[sel], 1e-9)
        nu[sel] = np.where(ok, 2.0, nu[sel] * 2)
        # a frame is done when a step gains less than 1e-4 of its cost or 0.01 (a change of ~1 mm²
        # in squared position residuals), or when its damping blew up
        tol = np.maximum(1e-4 * cost[sel], 1e-2)
        done = ok & (gain < tol)
        if model_stop:
            done |= ok & (np.abs(pred - gain) + mu_step**2 * pred < tol)
        going = ~(done | (mu[sel] > 1e6))
        sel = sel[going]
        if sel.size == 0:
            break
        # the frames still going keep their residuals: the trial's where the step was taken, else the last
        r, G, p, phi, theta = (_pick(ok, a, b, going) for a, b in zip((r2, G2, p2, phi2, theta2),
                                                                       (r, G, p, phi, theta), strict=True))
    _, p = forward_kinematics(sk, local, root)
    n = np.maximum(wy.sum(axis=1), 1)
    rms = np.sqrt(np.sum(wy * np.sum((p - y) ** 2, axis=2), axis=1) / n)
    return local, root, rms
