"""Head keypoints placed from the rest of the head before the fit.

The skeleton's head turns with a few keypoints (body22: the axis between the ears and the vector from their middle
to the nose); an ear that no camera sees for seconds (a performer in profile to cameras along one wall) leaves the
head unplaced there, and the fit bridges it by the interpolation between the gap's edges: on a synthetic take the
head was 58° off for two seconds while the eyes, the nose, the mouth and the other ear were seen by two cameras.
A one-view or badly triangulated ear turns it as far (an ear 150 mm off: the head turned 176°).

The keypoints of the keypoint set's ``head`` group (eyes, ears, nose, mouth) lie on one rigid body, the skull.
Their shape is learnt from the frames where two views measure them all (those frames aligned and their median
taken, :func:`head_shape`). In every frame the shape is fitted (a rigid turn and shift) to the points two views
measure there, those farther than :data:`HEAD_OFF_M` (or three times their own P95 spread about the shape) left out
of it; a point of the group that is missing, or that far from where the fit puts it, is placed there, when the fit
holds:

- it rests on four points or more (each within that distance of where it puts them);
- its own spread at the point (the residuals' noise carried through its shift and its turn) is under a third of
  :data:`HEAD_OFF_M`: eyes alone do not place an ear behind them;
- it tells left from right: the shape with its left and right points exchanged fits those points
  :data:`MIRROR_RATIO` times worse or more. A face whose points are swapped left/right in the views, or eyes, nose
  and mouth alone (nearly a plane, which a half turn mirrors), fit a turned shape as well as the right one: the ears
  were placed in front of the face, 224 mm off. Or it is turned within :data:`NEAR_DEG` of the nearest frame that
  tells, :data:`NEAR_S` away or less (a head does not turn half round in a tenth of a second).
"""

from __future__ import annotations

import numpy as np

HEAD_FRAMES = 20  # frames where two views measure every point of the group that its shape needs
HEAD_OFF_M = 0.05  # a point farther than this from where the rest of the head puts it is off
MIRROR_RATIO = 2.0  # the mirrored shape must fit the support this many times worse
MIN_SUPPORT = 4  # points that place the head in a frame
NEAR_S = 0.1  # a support that cannot tell left from right is taken when a frame this near that can is turned alike,
NEAR_DEG = 45.0  # within this


def rigid_fit(shape: np.ndarray, pts: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame the turn R (F, 3, 3) and shift t (F, 3) taking ``shape`` (N, 3) onto ``pts`` (F, N, 3) with
    weights ``w`` (F, N) (weighted Kabsch, no reflection); frames with no weight get the identity's fit."""
    w = np.asarray(w, float)
    ws = np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    cs = (w @ shape) / ws
    cp = (w[:, None, :] @ pts)[:, 0] / ws
    H = np.swapaxes(w[:, :, None] * (shape[None] - cs[:, None]), 1, 2) @ (pts - cp[:, None])
    U, _, Vt = np.linalg.svd(H)
    V, Ut = np.swapaxes(Vt, -1, -2), np.swapaxes(U, -1, -2)
    D = np.tile(np.eye(3), (len(H), 1, 1))
    D[:, 2, 2] = np.sign(np.linalg.det(V @ Ut))
    R = V @ D @ Ut
    return R, cp - np.einsum("fij,fj->fi", R, cs)


def _placed(shape: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    return shape @ np.swapaxes(R, 1, 2) + t[:, None]


def head_shape(pts: np.ndarray, full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The group's shape (N, 3), centred, from the frames ``full`` (F,) where every point is measured: those frames
    aligned onto it and their median taken, three times; and each point's P95 distance from it (N,) there."""
    Q = pts[full]
    shape = Q[len(Q) // 2] - Q[len(Q) // 2].mean(axis=0)
    ones = np.ones(Q.shape[:2])
    for _ in range(3):
        R, t = rigid_fit(shape, Q, ones)
        shape = np.median(np.einsum("fji,fnj->fni", R, Q - t[:, None]), axis=0)  # Rᵀ(q - t)
        shape -= shape.mean(axis=0)
    R, t = rigid_fit(shape, Q, ones)
    return shape, np.percentile(np.linalg.norm(_placed(shape, R, t) - Q, axis=-1), 95, axis=0)


def _group(trusted: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The group's points (indices into it) that the shape is learnt on, and the frames measuring them all: the
    points measured least often left out while too few frames measure them all (a detector that never gives the
    eye corners). None: fewer than :data:`MIN_SUPPORT` points or :data:`HEAD_FRAMES` frames."""
    keep = np.arange(trusted.shape[1])
    while keep.size >= MIN_SUPPORT:
        full = trusted[:, keep].all(axis=1)
        if full.sum() >= HEAD_FRAMES:
            return keep, full
        keep = np.delete(keep, np.argmin(trusted[:, keep].sum(axis=0)))
    return None


def place_head(points: np.ndarray, trusted: np.ndarray, head, mirror, near: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """``points`` (F, K, 3) with the ``head`` group's points (K indices) that are missing or off placed from the
    rest of the head (see the module), and (F, K) bool: the points placed. ``trusted`` (F, K): the points the fit may
    rest on (two views measure them); ``mirror``: each head point's left/right counterpart (K indices; itself when
    it has none); ``near``: the frames (:data:`NEAR_S` of them) within which a frame whose support tells left from
    right vouches for one whose support does not, turned alike."""
    out = np.array(points, float)
    placed = np.zeros(out.shape[:2], bool)
    head = np.asarray(head, int)
    if head.size < MIN_SUPPORT:
        return out, placed
    P = out[:, head]
    ok = np.asarray(trusted, bool)[:, head] & np.isfinite(P).all(axis=-1)
    found = _group(ok)
    if found is None:
        return out, placed
    keep, full = found
    pos = {int(k): i for i, k in enumerate(head[keep])}
    swap = np.array([pos.get(int(mirror[k]), i) for i, k in enumerate(head[keep])])
    P, ok = P[:, keep], ok[:, keep]
    shape, p95 = head_shape(P, full)
    off = np.maximum(HEAD_OFF_M, 3 * p95)  # (N,)
    Pz = np.nan_to_num(P)
    use = ok.copy()
    for k in range(4):  # the fit, the points it puts farther than `off` left out of it (the last fit: on `use`)
        R, t = rigid_fit(shape, Pz, use)
        dev = np.linalg.norm(_placed(shape, R, t) - P, axis=-1)  # NaN where missing
        now = ok & ~(dev > off)
        if np.array_equal(now, use) or k == 3:
            break
        use = now
    rests = use.sum(axis=1) >= MIN_SUPPORT
    tells = np.zeros(len(P), bool)  # the support tells left from right
    tells[rests] = _tells(shape, swap, Pz[rests], use[rests])
    todo = rests & (~np.isfinite(dev) | (dev > off)).any(axis=1)
    f = np.flatnonzero(todo)
    if f.size:
        sided = tells[f] | _turned_as_near(R, tells, f, near)
        good = sided[:, None] & _spread_holds(shape, use[f], dev[f], p95)
        pred = _placed(shape, R[f], t[f])
        change = good & (~np.isfinite(dev[f]) | (dev[f] > off))  # (n, N)
        rows, cols = np.nonzero(change)
        out[f[rows], head[keep][cols]] = pred[rows, cols]
        placed[f[rows], head[keep][cols]] = True
    return out, placed


def _tells(shape, swap, Pz, use) -> np.ndarray:
    """(n,) whether the shape fits the frames' ``use`` points :data:`MIRROR_RATIO` times better than the shape with its
    left and right points exchanged (see the module)."""
    w = use.astype(float)
    n = np.maximum(w.sum(axis=1), 1)

    def rms(s):
        R, t = rigid_fit(s, Pz, w)
        return np.sqrt((w * np.linalg.norm(_placed(s, R, t) - Pz, axis=-1) ** 2).sum(axis=1) / n)
    return rms(shape[swap]) >= MIRROR_RATIO * rms(shape)


def _turned_as_near(R: np.ndarray, tells: np.ndarray, frames: np.ndarray, near: int) -> np.ndarray:
    """(n,) whether each of ``frames`` is turned within :data:`NEAR_DEG` of the nearest frame whose support tells left
    from right, ``near`` frames away or fewer (a head does not turn half round in a tenth of a second: eyes, nose and
    mouth whose ears were both off in two frames, next to frames with the ears, are the same head, not its mirror)."""
    sure = np.flatnonzero(tells)
    if not sure.size or near < 1:
        return np.zeros(len(frames), bool)
    i = np.clip(np.searchsorted(sure, frames), 1, len(sure)) - 1
    j = np.minimum(i + 1, len(sure) - 1)
    g = np.where(np.abs(sure[j] - frames) < np.abs(sure[i] - frames), sure[j], sure[i])
    cos = (np.trace(np.swapaxes(R[frames], 1, 2) @ R[g], axis1=1, axis2=2) - 1) / 2
    return (np.abs(g - frames) <= near) & (cos >= np.cos(np.radians(NEAR_DEG)))


def _spread_holds(shape, use, dev, p95) -> np.ndarray:
    """(n, N) where the fit of the frames' ``use`` points (four or more) is under a third of :data:`HEAD_OFF_M` apart
    at each point: its spread (see the module)."""
    w = use.astype(float)
    n = w.sum(axis=1)
    # the fit's spread at each point: σ² (3/n + the turn's variance carried to the point's offset from the support)
    c = (w @ shape) / np.maximum(n, 1)[:, None]
    r = shape[None] - c[:, None]  # (n, N, 3)
    inertia = np.einsum("fn,fni,fni->f", w, r, r)[:, None, None] * np.eye(3) - np.einsum("fn,fni,fnj->fij", w, r, r)
    s2 = (w * np.nan_to_num(dev) ** 2).sum(axis=1) / np.maximum(3 * n - 6, 1)
    sigma2 = np.maximum(s2, (np.median(p95) / 2.5) ** 2)  # no lower than the shape's own spread
    A = np.linalg.inv(inertia + 1e-12 * np.eye(3))  # the turn's covariance over σ²
    # the variance of the turn carried to an offset r: trace([r]× A [r]×ᵀ) = |r|² trace(A) − rᵀ A r
    turn = (r**2).sum(axis=-1) * np.trace(A, axis1=1, axis2=2)[:, None] - np.einsum("fni,fij,fnj->fn", r, A, r)
    spread = np.sqrt(sigma2[:, None] * (3 / np.maximum(n, 1)[:, None] + turn))
    return 3 * spread <= HEAD_OFF_M
