"""A person's detection with left and right exchanged as a whole (a detector that takes the person's back
for its front): the tracker compares keypoints with the joints of the same name, so such a detection costs
as much as another person's and the person goes unseen in that view, although detected, while it lasts.

After tracking, :func:`rejoin_mirrored` looks at the views a person seen by two views or more has no
detection in: a free detection there whose cost against the person's skeleton of that frame is within the
tracker's gate with its left and right exchanged (and not as given: that one the tracker had its chance
at), nearly as well as the person's usual detections fit (within :data:`MIRRORED_COSTS` times its usual cost:
a body the detector mirrors is seen from behind or side-on, and its keypoints are rougher), and which fits no
other person of that frame as well, is the person's. The labels are left as
detected: the swap repair after the association exchanges them back against the other views
(:mod:`mocap.geometry.swaps_repair`), and refine checks each view's body sides again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mocap.keypoint_sets import get_keypoint_set
from mocap.multi.body import body_cost
from mocap.multi.merged import RECENT
from mocap.multi.rays import point_ray_distance

if TYPE_CHECKING:
    from mocap.multi.track import Tracker
    from mocap.multi.tracklets import Track

# A mirrored detection is the person's within this many of their usual costs: on real two-person footage (the man
# seen from behind in cam02 for 40 frames, his other views two) his mirrored detections cost 1.7-3.6 × his usual,
# the other person 12 × (the cap); at 2 × (a merged detection's rule) most were left out.
MIRRORED_COSTS = 4.0


def rejoin_mirrored(tr: Tracker, tracks: list[Track], slots: np.ndarray, keypoint_set: str) -> int:
    """Gives each person (``tracks``, the persons axis of ``slots`` (F, C, P), changed in place) the mirrored
    detections of its own in the views it has none in (see the module); they count as checked
    (``Track.checked``: the tracker's keypoint check compares joints of the same name, which a mirrored
    detection's are not). Returns how many views were given."""
    flip = np.asarray(get_keypoint_set(keypoint_set).flip_permutation)
    if not tracks or len(flip) != tr.J or np.all(flip == np.arange(tr.J)):
        return 0
    gate = tr.cfg.track_max_m / 2  # the tracker's: the mean capped distance of a detection of this person
    taken = np.zeros(tr.usable.shape, bool)
    f_, c_, p_ = np.nonzero(slots >= 0)
    taken[f_, c_, slots[f_, c_, p_]] = True
    free = tr.usable & ~taken  # (F, C, S)
    n_views = (slots >= 0).sum(axis=1)  # (F, P)
    given = 0
    for f in np.flatnonzero(free.any(axis=(1, 2))):
        people = [p for p, t in enumerate(tracks) if f in t.skel]
        if not people:
            continue
        X = np.stack([tracks[p].skel[f] for p in people])  # (T, J, 3)
        for c in np.flatnonzero(free[f].any(axis=1)):
            want = [k for k, p in enumerate(people) if slots[f, c, p] < 0 and n_views[f, p] >= 2]
            if not want:
                continue
            sl = np.flatnonzero(free[f, c])
            R = tr.rays[f, c, sl]  # (S', J, 3)
            o = tr.origins[c][None, None, None]
            d = point_ray_distance(X[:, None], o, R[None])  # (T, S', J)
            dm = point_ray_distance(X[:, None], o, R[None][:, :, flip])  # joint j against keypoint flip[j]
            as_given = body_cost(d, tr.cfg.track_max_m, tr.torso, tr.cfg.min_joints)  # (T, S')
            mirrored = body_cost(dm, tr.cfg.track_max_m, tr.torso, tr.cfg.min_joints)
            best = np.fmin(as_given, mirrored)
            for i in np.argsort(np.where(np.isfinite(mirrored), mirrored, np.inf), axis=None):
                k, s = np.unravel_index(i, mirrored.shape)
                if not mirrored[k, s] <= gate:
                    break
                p = people[k]
                if not mirrored[k, s] <= MIRRORED_COSTS * tracks[p].noise(RECENT):
                    continue  # nearly as well as this person's usual detections fit
                others = np.delete(best[:, s], k)
                if k not in want or slots[f, c, p] >= 0 or not free[f, c, sl[s]] or as_given[k, s] <= gate \
                        or np.any(others <= mirrored[k, s]):
                    continue
                slots[f, c, p] = sl[s]
                free[f, c, sl[s]] = False
                tracks[p].checked.add((int(f), int(c), int(sl[s])))
                given += 1
    return given
