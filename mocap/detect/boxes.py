"""Person boxes: the square crop around a skeleton's projected joints (with a margin), the crop itself
resized for the landmark model, and keypoints found in a crop mapped back to the image (pixel centres at
integer coordinates in both). Used by :mod:`mocap.detect.recover`."""

from __future__ import annotations

import numpy as np


def person_box(uv: np.ndarray, size: tuple[int, int], margin: float, min_inside: float,
               min_joints: int) -> np.ndarray | None:
    """Square box (x0, y0, side) in pixels around projected joints uv (J, 2) (NaN: unknown), grown by
    ``margin`` of its extent on each side; None when fewer than ``min_joints`` joints are known or fewer
    than ``min_inside`` of them fall inside the image of ``size`` (width, height)."""
    ok = np.all(np.isfinite(uv), axis=-1)
    if ok.sum() < min_joints:
        return None
    p = uv[ok]
    w, h = size
    inside = (p[:, 0] >= -0.5) & (p[:, 0] <= w - 0.5) & (p[:, 1] >= -0.5) & (p[:, 1] <= h - 0.5)
    if inside.mean() < min_inside:
        return None
    lo, hi = p.min(axis=0), p.max(axis=0)
    side = float(np.max(hi - lo)) * (1 + 2 * margin)
    if not side > 0:
        return None
    c = 0.5 * (lo + hi)
    return np.array([c[0] - side / 2, c[1] - side / 2, side])


def crop_matrix(box: np.ndarray, crop_px: int) -> np.ndarray:
    """(2, 3) affine map image pixels → crop pixels (pixel centres at integers in both), for cv2.warpAffine."""
    x0, y0, side = box
    s = crop_px / side
    return np.array([[s, 0.0, s * (0.5 - x0) - 0.5], [0.0, s, s * (0.5 - y0) - 0.5]])


def crop_image(image: np.ndarray, box: np.ndarray, crop_px: int) -> np.ndarray:
    """The square person box of ``image`` resized to crop_px × crop_px (black outside the image)."""
    import cv2

    return cv2.warpAffine(image, crop_matrix(box, crop_px), (crop_px, crop_px), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def to_image(kp_crop: np.ndarray, box: np.ndarray, crop_px: int) -> np.ndarray:
    """Keypoints (..., 3) found in a crop → image pixels (scores kept)."""
    x0, y0, side = box
    s = crop_px / side
    out = np.array(kp_crop, float, copy=True)
    out[..., 0] = (kp_crop[..., 0] + 0.5) / s + x0 - 0.5
    out[..., 1] = (kp_crop[..., 1] + 0.5) / s + y0 - 0.5
    return out
