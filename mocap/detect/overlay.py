"""Review videos: detections drawn over the camera image."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from mocap.io.atomic import part_name, sweep_once
from mocap.types import KeypointSet

COLOURS = [(0, 200, 255), (255, 120, 0), (80, 220, 80), (220, 80, 220), (255, 255, 0)]  # BGR, one per person


def draw_keypoints(image: np.ndarray, people: np.ndarray, kps: KeypointSet, min_score: float = 0.3) -> np.ndarray:
    """Draw (P, J, 3) keypoints on a BGR image (in place) and return it."""
    scale = max(1, round(max(image.shape[:2]) / 600))
    for p, person in enumerate(people):
        colour = COLOURS[p % len(COLOURS)]
        ok = np.isfinite(person[:, 0]) & (np.nan_to_num(person[:, 2]) >= min_score)
        pts = np.round(np.nan_to_num(person[:, :2])).astype(int)
        for a, b in kps.limbs:
            if ok[a] and ok[b]:
                cv2.line(image, tuple(pts[a]), tuple(pts[b]), colour, 2 * scale, cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            cv2.circle(image, tuple(pts[j]), 3 * scale, (255, 255, 255), -1, cv2.LINE_AA)
    return image


class OverlayWriter:
    """Writes an MP4 under a temporary name and renames it when closed without error."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sweep_once(self.path.parent)
        self.tmp = self.path.with_name(part_name(self.path, keep_suffix=True))  # cv2 picks the container by suffix
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise ValueError(f"{self.path}: cannot write video")

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)

    def close(self, ok: bool = True) -> None:
        self.writer.release()
        if ok:
            os.replace(self.tmp, self.path)
        elif self.tmp.exists():
            self.tmp.unlink()
