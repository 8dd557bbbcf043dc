"""The report's comparison with a synthetic session's ground truth (``groundtruth/points3d.h5``, and its rig
when the session's own is calibrated): each reconstructed person matched to its true person, the error
(mean, P95, bias-corrected) of the first one that matches."""

from __future__ import annotations

import warnings

import numpy as np

from mocap.persons import person_name
from mocap.session import Session


def groundtruth(session: Session, pts) -> dict | None:
    path = session.groundtruth_dir / "points3d.h5"
    if not path.is_file():
        return None
    from mocap.io.hdf5 import read_points3d

    truths = read_points3d(path).xyz  # (F, P_true, J, 3)
    Xs = pts.xyz
    true_rig = session.groundtruth_dir / "rig.toml"
    aligned = False
    if true_rig.is_file() and session.rig_path() != true_rig:  # a calibrated rig has its own world frame
        from mocap.geometry.align import rig_alignment
        from mocap.io.rig_files import read_rig

        rig, truth_rig = session.rig(), read_rig(true_rig)
        if len([n for n in truth_rig.names if n in rig.names]) >= 3:
            R, t, _ = rig_alignment(rig, truth_rig)
            Xs = Xs @ R.T + t
            aligned = True
    if truths.shape[:1] != Xs.shape[:1] or truths.shape[2:] != Xs.shape[2:]:
        return None
    match = match_people(Xs, truths)  # several people: each reconstructed person's true person
    if not match:
        return None
    first = min(match)  # the headline figures: the first person that is someone (a fragment may match nobody)
    X, truth = Xs[:, first], truths[:, match[first]]
    e = np.linalg.norm(X - truth, axis=-1)
    if not np.isfinite(e).any():
        return None
    half = len(X) // 2  # a constant offset per keypoint (definition bias) from the first half, scored on the second
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # keypoints the truth does not have are all NaN
        bias = np.nanmean((X - truth)[:half], axis=0)
    e_bc = np.linalg.norm(X[half:] - np.nan_to_num(bias) - truth[half:], axis=-1)
    out = {"mpjpe_mm": float(np.nanmean(e) * 1000), "p95_mm": float(np.nanpercentile(e, 95) * 1000),
           "mpjpe_bias_corrected_mm": float(np.nanmean(e_bc) * 1000),
           "keypoints_compared": int(np.isfinite(truth).all(axis=-1).any(axis=0).sum()),
           "aligned_by_camera_centres": aligned}
    if Xs.shape[1] > 1 or truths.shape[1] > 1:
        out["headline_person"] = person_name(first)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out["persons"] = [{"name": person_name(p), "true_person": int(q),
                               "mpjpe_mm": float(np.nanmean(np.linalg.norm(Xs[:, p] - truths[:, q], axis=-1)) * 1000)}
                              for p, q in sorted(match.items())]
    return out


def match_people(X: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    """{reconstructed person: true person}: the assignment of least mean distance over the frames both have
    (one person each: 0 → 0)."""
    P, Q = X.shape[1], truth.shape[1]
    if P == 1 and Q == 1:
        return {0: 0}
    from scipy.optimize import linear_sum_assignment

    cost = np.full((P, Q), 1e9)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for p in range(P):
            for q in range(Q):
                d = np.nanmean(np.linalg.norm(X[:, p] - truth[:, q], axis=-1))
                cost[p, q] = d if np.isfinite(d) else 1e9
    rows, cols = linear_sum_assignment(cost)
    return {int(p): int(q) for p, q in zip(rows, cols, strict=True) if cost[p, q] < 1e9}
