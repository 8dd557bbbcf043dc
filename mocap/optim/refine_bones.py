"""Refine's bone terms (:class:`mocap.optim.refine._Problem`): which frames each bone holds, and how firmly.

A keypoint set's ``bones`` (long bones, pelvis, feet, hands, skull: constant length) hold every frame, by
σ = min(bone_sigma, bone_share · L) (finger bones by bone_sigma). Its ``loose_bones`` (shoulder to shoulder,
shoulders to hips and across, the nose to the shoulders, eyes and mouth: lengths that vary as the torso bends
and twists and the head turns) hold by ``loose_bone_sigma``, and only the frames where an end of them is seen
by one view (and the other end seen): there nothing else gives that end its depth along its view's ray (no
bone joins an arm or the head to the rest of the body), while where both ends are triangulated a loose bone
would only bend the torso towards its median length (and pull good shoulders towards bad hips). A loose
bone's length is the median over the frames that triangulate both its ends.

A bone's length is the median over the frames that triangulate both its ends when it has
``MEASURED_FRAMES`` of them: over frames where an end has one view any length fits that view's ray, and a
median over all the frames that see both ends followed the solve's own drift (a two-camera take's right
forearm: 414 mm, its wrist 0.7-0.9 m off, where its 69 triangulated frames said 195 mm, true 194). A bone with
fewer takes its mirror's (the other side's bone, :func:`mirror_bones`) when that one has them, else the
median over the frames that see both ends.
"""

from __future__ import annotations

import numpy as np

from mocap.optim.refine_obs import LOWER

MEASURED_FRAMES = 10  # frames that triangulate both ends of a bone: its own length, else its mirror's if measured


def bone_pairs(bones, loose, remap: dict[int, int]) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The bones, then the loose bones, whose both ends are among the problem's joints (``remap``: joint →
    problem index), in problem indices, and which of them are loose (bool array)."""
    ends = [(a, b, soft) for pairs, soft in ((bones, False), (loose, True)) for a, b in pairs
            if a in remap and b in remap]
    return [(remap[a], remap[b]) for a, b, _ in ends], np.array([soft for _, _, soft in ends], bool)


def held_frames(views: np.ndarray, ba: np.ndarray, bb: np.ndarray, loose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, J) the joints fewer than two views measure (``views`` (T, J): how many observe each), and (bones, T) the
    frames each bone holds: every frame for a bone; for a loose one those where both ends are seen and one by a
    single view (the length then picks a point on that view's ray; with an end unseen it would only swing that
    end about the other: the hips, unseen, turned about the shoulders' line 0.3-0.45 m off)."""
    few, seen = views < 2, views > 0
    return few, ~loose[:, None] | ((few[:, ba] | few[:, bb]) & seen[:, ba] & seen[:, bb]).T


def length_frames(seen: np.ndarray, few: np.ndarray, ba: np.ndarray, bb: np.ndarray, loose: np.ndarray) -> np.ndarray:
    """(T, bones) the frames each bone's length is the median over: those that triangulate both ends when there
    are :data:`MEASURED_FRAMES` of them (a loose bone: when there is one), else those that see both ends."""
    both = seen[:, ba] & seen[:, bb]
    good = ~few[:, ba] & ~few[:, bb]
    enough = good.sum(axis=0) >= np.where(loose, 1, MEASURED_FRAMES)
    return np.where(enough, good, both)


def mirror_bones(bones, pairs) -> np.ndarray:
    """(bones,) the index of each bone's mirror image among ``bones`` (a left bone's right one, a right bone's
    left one), -1 for none (a bone across the body or along its middle); ``pairs``: (left, right) joints."""
    mirror = {a: b for a, b in pairs} | {b: a for a, b in pairs}
    index = {frozenset(bone): k for k, bone in enumerate(bones)}
    out = np.full(len(bones), -1)
    for k, (a, b) in enumerate(bones):
        m = index.get(frozenset((mirror.get(a, a), mirror.get(b, b))), k)
        out[k] = -1 if m == k else m
    return out


def mirrored_lengths(lengths: np.ndarray, n: np.ndarray, good: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """``lengths`` (bones,) with those of the bones fewer than :data:`MEASURED_FRAMES` frames triangulate
    (``good`` (T, bones) those frames; ``n`` (T, bones) the segments' lengths) replaced by their mirror's median
    over its triangulated frames, where the mirror has that many."""
    counts = good.sum(axis=0)
    m = np.maximum(mirror, 0)
    take = (mirror >= 0) & (counts < MEASURED_FRAMES) & (counts[m] >= MEASURED_FRAMES)
    if not take.any():
        return lengths
    out = lengths.copy()
    out[take] = np.nanmedian(np.where(good[:, m[take]], n[:, m[take]], np.nan), axis=0)
    return out


def bone_weights(lengths: np.ndarray, fingers: np.ndarray, loose: np.ndarray, held: np.ndarray, cfg) -> np.ndarray:
    """(bones, T) 1/σ² of each bone at each frame it holds (0 elsewhere); ``cfg``: a RefineConfig."""
    sigma = np.minimum(cfg.bone_sigma, np.maximum(cfg.bone_share * lengths, 1e-4))
    # finger bones keep bone_sigma: holding them by a share of their length (~1.5 mm for a phalanx)
    # gained 0.2 mm and 0.3° on the hands bench for 2.7x the conjugate-gradient iterations
    sigma = np.where(fingers, cfg.bone_sigma, sigma)
    sigma = np.where(loose, cfg.loose_bone_sigma, sigma)
    return np.where(held, 1.0 / sigma[:, None] ** 2, 0.0)


def segment_lengths(X: np.ndarray, ba: np.ndarray, bb: np.ndarray) -> np.ndarray:
    """(T, bones) segment lengths of X (T, J, 3), one coordinate at a time (a norm along a 3-long axis is slow);
    the ends gathered by np.take (fancy indexing along the middle axis is ~6× slower, and a hand has 20 bones)."""
    d = np.take(X, ba, axis=1)
    d -= np.take(X, bb, axis=1)
    return np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2)


def bone_terms(X: np.ndarray, ba: np.ndarray, bb: np.ndarray, lengths: np.ndarray, sb: np.ndarray, scatter):
    """The bone terms' gradient and Gauss-Newton blocks summed into each joint (J, T, 9: gradient (3), then
    the LOWER entries of sb·u uᵀ (6)) by the ``scatter`` matrix of the bones' ends, and each bone's coupling
    vectors √sb·u (bones, T, 3); ``sb`` (bones, T) the weights of :func:`bone_weights`."""
    nb, T = len(ba), X.shape[0]
    Xj = np.moveaxis(X, 1, 0)
    d = Xj[ba] - Xj[bb]  # (bones, T, 3)
    n = np.maximum(np.sqrt(np.einsum("btk,btk->bt", d, d)), 1e-9)
    u = d / n[..., None]
    su = u * np.sqrt(sb)[..., None]
    E = np.empty((2 * nb, T, 9))  # per bone end
    E[:nb, :, :3] = u * ((n - lengths[:, None]) * sb)[..., None]
    E[nb:, :, :3] = -E[:nb, :, :3]  # the gradient's sign at the bone's second end
    for e, (i, k) in enumerate(LOWER):
        E[:nb, :, 3 + e] = su[..., i] * su[..., k]
    E[nb:, :, 3:] = E[:nb, :, 3:]
    return (scatter @ E.reshape(2 * nb, -1)).reshape(X.shape[1], T, 9), su
