"""One frame's cross-view association of the detections no track explains.

Every pair of detections in two different views gets an affinity: the median, over the joints both
see, of the distance between their two rays (metres; a missing or outlying keypoint only moves the
median a little). Detections are then merged by complete linkage, closest pairs first: two groups join
only when no view appears twice and *every* pair across them agrees (so every triangle of views in a
group is consistent, the cycle-consistency of the matching across three or more views), and the
merge is decided over all views at once, not pair by pair. A group seen by one view only is no person
in 3D (a bystander in one camera, a detection that is not a person).
"""

from __future__ import annotations

import numpy as np

from mocap.multi.rays import ray_ray_distance, robust_median

UNSEEN_M = 1e3  # the distance of a joint a detection sees and the other of a pair does not (``cover``)


def pair_affinity(origins: np.ndarray, rays: np.ndarray, views: np.ndarray, min_joints: int,
                  cover: bool = False) -> np.ndarray:
    """rays (N, J, 3) of N detections, their views (N,), camera centres per detection origins (N, 3).
    Returns (N, N): median ray distance over joints both detections see (inf: same view, fewer than
    ``min_joints``). ``cover``: [a, b] over the joints a sees, one b does not see counting as far
    (``UNSEEN_M``): b meets a only where it sees most of a's joints, and they meet (a person seen by one view
    takes another view's detection only where that covers its own; not a body side or a merged detection
    that meets it on a few joints)."""
    o = origins[:, None, None, :]
    dist = ray_ray_distance(o, rays[:, None], origins[None, :, None, :], rays[None, :])  # (N, N, J)
    if cover:
        seen = np.isfinite(rays[..., 0])  # (N, J)
        both = seen[:, None] & seen[None, :]
        dist = np.where(seen[:, None] & ~both, UNSEEN_M, dist)
        dist[both.sum(axis=-1) < min_joints] = np.nan  # too few joints in common
    cost = robust_median(dist, min_joints)
    cost[views[:, None] == views[None, :]] = np.inf
    return cost


def cluster(cost: np.ndarray, views: np.ndarray, max_cost: float) -> list[list[int]]:
    """Complete-linkage grouping of detections with at most one per view; groups of ≥ 2 views."""
    n = len(views)
    group = np.arange(n)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    iu = np.triu_indices(n, 1)
    c = cost[iu]
    order = np.argsort(c, kind="stable")
    for k in order:
        if not c[k] <= max_cost:
            break
        a, b = group[iu[0][k]], group[iu[1][k]]
        if a == b:
            continue
        ma, mb = members[a], members[b]
        if set(views[ma]) & set(views[mb]):
            continue
        if np.max(cost[np.ix_(ma, mb)]) > max_cost:
            continue
        members[a] = ma + mb
        group[mb] = a
        del members[b]
    return [sorted(m) for m in members.values() if len(m) >= 2]
