"""Hands: 21 MediaPipe hand landmarks per hand, placed by the body (offline, from the mediapipe wheel's tflite).

For each person and side, the hand crop comes from, in order: the previous frame's hand landmarks (when
still near the body's wrist), the body's elbow / wrist / index / pinky keypoints re-cropped by Holistic's
``hand_recrop.tflite``; when the landmark model finds no hand there, MediaPipe's palm detector runs on a
wider crop around the body's wrist (fallback). The crop is rotated so the hand points up, as the landmark model expects.
Left / right come from the body: a hand belongs to the side whose body wrist is nearest its landmark
wrist (the hand model's handedness guess is not used); two crops landing on the same hand keep one.

Output per person: 42 rows (left 21 then right 21, MediaPipe hand-landmark order, names in
``configs/keypoints/blazepose33_hands.toml``): x, y (pixels, centre of the top-left pixel at (0, 0)) and
the landmark model's hand-presence score, NaN where no hand was found; a landmark placed outside the image
keeps its x, y (the next frame's crop follows the whole hand) with a NaN score: not seen, not triangulated.
Nothing is downloaded: the models are the ``hand_landmark_*.tflite`` / ``hand_recrop.tflite`` /
``palm_detection_*.tflite`` files of the installed mediapipe package; the landmark and re-crop models run through
onnxruntime (:mod:`mocap.detect.hand_onnx`, both hands' crops of a frame in one call), the palm detector and, without
onnxruntime, all three through mediapipe's own calculators (:mod:`mocap.detect.hand_graphs`).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from mocap.detect.hand_graphs import VARIANTS, HandLandmarks, HandRecrop, PalmDetector, _mediapipe  # noqa: F401
from mocap.keypoint_sets import HAND_POINTS  # noqa: F401 - the 21 names per hand, in the model's order

log = logging.getLogger(__name__)
SIDES = ("left", "right")
# BlazePose 33 indices: side → (elbow, wrist, pinky, index)
BODY_HAND = {"left": (13, 15, 17, 19), "right": (14, 16, 18, 20)}
INPUT = 224  # the hand landmark model's input size
PALM_INPUT = 192
RECROP_INPUT = 256


def body_roi(body: np.ndarray, side: str, min_score: float = 0.3) -> np.ndarray | None:
    """The hand crop (cx, cy, size, angle) from BlazePose's elbow / wrist / pinky / index of one side, or
    None when the wrist or both knuckle points are unseen. ``angle``: the image direction (radians) from
    the wrist towards the fingers; the crop is centred near the knuckles and spans the whole hand."""
    e, w, p, i = (body[k] for k in BODY_HAND[side])
    if not (np.isfinite(w).all() and w[2] >= min_score):
        return None
    knuckles = [q[:2] for q in (p, i) if np.isfinite(q).all() and q[2] >= min_score]
    forearm = np.linalg.norm(w[:2] - e[:2]) if np.isfinite(e).all() else 0.0
    if knuckles:
        mid = np.mean(knuckles, axis=0)
        d = mid - w[:2]
        palm = np.linalg.norm(d)
    elif forearm > 0:  # no knuckles: the hand continues the forearm
        d = w[:2] - e[:2]
        palm = 0.0
    else:
        return None
    # a hand is about 0.75 forearm and 0.38 torso long; BlazePose's knuckles on a small person are short and a
    # forearm pointing at the camera is foreshortened, so the size takes the largest estimate (the ROI of
    # Holistic's pose → hand step is ~2.7 palm lengths)
    size = max(2.7 * palm, 0.9 * forearm, 0.45 * _torso(body), 16.0)
    angle = float(np.arctan2(d[1], d[0])) if np.linalg.norm(d) > 0 else -np.pi / 2
    centre = w[:2] + 0.45 * size * np.array([np.cos(angle), np.sin(angle)])
    return np.array([centre[0], centre[1], size, angle])


def _torso(body: np.ndarray, min_score: float = 0.3) -> float:
    """Pixels from the shoulders' midpoint to the hips' (0 when one is unseen)."""
    pts = body[[11, 12, 23, 24]]
    if not (np.isfinite(pts).all() and (pts[:, 2] >= min_score).all()):
        return 0.0
    return float(np.linalg.norm(pts[:2, :2].mean(0) - pts[2:, :2].mean(0)))


def overlaps_image(roi: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether a hand crop's inscribed circle reaches into the image (a body wrist placed outside the frame by
    BlazePose gives a crop with no hand pixels in it: not worth a model run)."""
    cx, cy, size, _ = roi
    h, w = shape[:2]
    r = 0.5 * size
    return bool(-r < cx < w - 1 + r and -r < cy < h - 1 + r)


def in_image(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(N,) whether each landmark (N, 2) lies in the image, [0, w - 1] × [0, h - 1]. Of a hand cut by the border
    the landmark model places all 21 points with the hand's one presence score, some beyond the border (the crop
    hanging off the image is padded black): guesses. The cut-off points it places inside (real frames cut through
    986 hands: 2130 of 7126, 15 px off at the median) keep their score: no score within a quarter palm of a border
    the hand crosses dropped 45 % of them but 17 % of the cut hands' good points, and the triangulated points then
    missed a held-out view by more, not less (+0.1 px, 1609 more points lost; a score lowered near the border alike)."""
    h, w = shape[:2]
    x, y = points[:, 0], points[:, 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def landmark_roi(points: np.ndarray) -> np.ndarray:
    """Crop from a hand's 21 landmarks (pixels): oriented wrist → middle MCP, box of the rotated points grown
    2x (MediaPipe's landmarks → ROI rule), for the next frame."""
    d = points[9] - points[0]
    angle = float(np.arctan2(d[1], d[0]))
    c, s = np.cos(angle), np.sin(angle)
    local = (points - points[0]) @ np.array([[c, -s], [s, c]])  # x along the hand
    lo, hi = local.min(0), local.max(0)
    centre_local = (lo + hi) / 2
    size = 2.0 * max(hi - lo)
    centre = points[0] + np.array([[c, -s], [s, c]]) @ centre_local
    return np.array([centre[0], centre[1], size, angle])


def crop_transform(roi: np.ndarray, out: int) -> np.ndarray:
    """2x3 affine taking image pixels to an ``out``-pixel square crop in which the hand points up (-y)."""
    cx, cy, size, angle = roi
    rot = angle + np.pi / 2  # turn the hand direction onto -y
    c, s = np.cos(rot), np.sin(rot)
    k = out / size
    # x' = k R^T (x - centre) + out/2 - 0.5 (pixel centres at integer coordinates on both sides)
    A = k * np.array([[c, s], [-s, c]])
    b = out / 2 - 0.5 - A @ np.array([cx, cy])
    return np.hstack([A, b[:, None]])


def invert(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    Minv = cv2.invertAffineTransform(M)
    return pts @ Minv[:, :2].T + Minv[:, 2]


def palm_roi(wrist: np.ndarray, middle: np.ndarray, box: float) -> np.ndarray:
    """MediaPipe's palm → hand ROI: the palm box grown 2.6x, shifted half a box towards the fingers."""
    d = middle - wrist
    angle = float(np.arctan2(d[1], d[0]))
    centre = (wrist + middle) / 2 + 0.5 * box * np.array([np.cos(angle), np.sin(angle)])
    return np.array([centre[0], centre[1], 2.6 * box, angle])


BACKENDS = ("auto", "onnxruntime", "mediapipe")


def hand_models(variant: str = "full", backend: str = "auto", recrop: bool = True):
    """The hand landmark model and Holistic's re-crop model (None without ``recrop``): through onnxruntime
    (:mod:`mocap.detect.hand_onnx`: the same networks in ~80 % of the CPU time) or mediapipe's graphs; ``auto``
    takes onnxruntime when it is installed and the models convert."""
    if backend not in BACKENDS:
        raise ValueError(f"hands: backend must be one of {BACKENDS}, got {backend!r}")
    if variant not in VARIANTS:
        raise ValueError(f"hands: variant must be one of {VARIANTS}, got {variant!r}")
    if backend != "mediapipe":
        try:
            from mocap.detect.hand_onnx import OnnxHandLandmarks, OnnxHandRecrop

            return OnnxHandLandmarks(variant), OnnxHandRecrop() if recrop else None
        except (ImportError, NotImplementedError) as e:
            if backend == "onnxruntime":
                raise
            log.info("hands: the hand models run through mediapipe's graphs (onnxruntime path unavailable: %s)", e)
    return HandLandmarks(variant), HandRecrop() if recrop else None


def _rgb(crop_bgr: np.ndarray) -> np.ndarray:
    """A crop in RGB, converted in place (only crops are converted, never the frame)."""
    return cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB, dst=crop_bgr)


class HandDetector:
    """Both hands of every person of a BlazePose result: ``(image, body (P, 33, 3)) → (P, 42, 3)``."""

    def __init__(self, variant: str = "full", min_presence: float = 0.5, palm_fallback: bool = True,
                 recrop: bool = True, min_body_score: float = 0.0, backend: str = "auto"):
        self.landmarks, self.recrop = hand_models(variant, backend, recrop)
        # the body's wrist places the crop whatever its score; the hand model's presence decides. BlazePose's
        # visibility of a wrist it places well can be low for many frames (its smoothed visibility climbs from a
        # low first value by a tenth a frame; a hand hanging against the thigh): gating on it lost visible hands
        self.min_body_score = min_body_score
        self.palms = PalmDetector(variant) if palm_fallback else None
        self.min_presence = min_presence
        self.previous: dict[tuple[int, str], np.ndarray] = {}  # (person, side) → ROI from last frame's hand
        self.palm_wait: dict[tuple[int, str], int] = {}  # frames to skip the palm fallback after it failed
        self.palm_every = 5
        # a hand the body is unsure of (wrist score under unsure_score) and that was not found last frame is tried
        # every unsure_every-th frame: a hidden hand costs half, a hand coming into view is found a frame later
        self.unsure_score, self.unsure_every = 0.3, 2
        self.unsure_wait: dict[tuple[int, str], int] = {}
        # the cost's account: landmark crops, model calls (both hands' crops go in one), re-crops, palm searches and
        # the hands they found, tracked tries (from last frame's landmarks), hands found
        self.stats = {"crops": 0, "calls": 0, "recrops": 0, "palm_runs": 0, "palm_found": 0, "tracked": 0, "found": 0}

    def _landmarks_in(self, bgr: np.ndarray, roi: np.ndarray) -> tuple[np.ndarray, float]:
        return self._landmarks_of(bgr, [roi])[0]

    def _recropped(self, bgr: np.ndarray, roi: np.ndarray) -> np.ndarray:
        """Holistic's re-crop of a body-placed hand ROI: centred on the hand, sized and turned by it."""
        M = crop_transform(roi, RECROP_INPUT)
        crop = _rgb(cv2.warpAffine(bgr, M, (RECROP_INPUT, RECROP_INPUT), flags=cv2.INTER_LINEAR))
        self.stats["recrops"] += 1
        centre, towards_wrist = invert(M, self.recrop(crop))
        d = centre - towards_wrist
        size = 2.0 * float(np.linalg.norm(d))
        if not np.isfinite(size) or not 0.25 * roi[2] < size < 4.0 * roi[2]:
            return roi  # an implausible re-crop: keep the body's
        return np.array([centre[0], centre[1], size, float(np.arctan2(d[1], d[0]))])

    def _palm_fallback(self, bgr: np.ndarray, roi: np.ndarray, wrist: np.ndarray) -> list[np.ndarray]:
        """Hand ROIs from palms found in an upright crop 2x the hand ROI around the body's wrist,
        nearest the wrist first."""
        box = np.array([wrist[0], wrist[1], 2.0 * roi[2], -np.pi / 2])
        M = crop_transform(box, PALM_INPUT)
        crop = _rgb(cv2.warpAffine(bgr, M, (PALM_INPUT, PALM_INPUT), flags=cv2.INTER_LINEAR))
        self.stats["palm_runs"] += 1
        rois = []
        scale = box[2] / PALM_INPUT
        for w, m, size, _score in self.palms(crop):
            w_img, m_img = invert(M, np.stack([w, m]))
            rois.append(palm_roi(w_img, m_img, size * scale))
        rois.sort(key=lambda r: float(np.linalg.norm(r[:2] - wrist)))
        return rois

    def _landmarks_of(self, bgr: np.ndarray, rois: list[np.ndarray]) -> list[tuple[np.ndarray, float]]:
        """The landmark model on several ROIs of one frame, in one call where the runtime takes a batch (both hands'
        crops: ~5 % less CPU per crop than one at a time)."""
        Ms = [crop_transform(roi, INPUT) for roi in rois]
        crops = [_rgb(cv2.warpAffine(bgr, M, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT))
                 for M in Ms]
        self.stats["crops"] += len(rois)
        self.stats["calls"] += 1
        batch = getattr(self.landmarks, "batch", None)
        found = batch(np.stack(crops)) if batch is not None and len(crops) > 1 else [self.landmarks(c) for c in crops]
        return [(invert(M, pts), presence) for M, (pts, presence) in zip(Ms, found, strict=True)]

    def __call__(self, image_bgr: np.ndarray, body: np.ndarray) -> np.ndarray:
        P = body.shape[0]
        out = np.full((P, 42, 3), np.nan)
        for p in range(P):
            wrists = {s: body[p, BODY_HAND[s][1], :2] for s in SIDES}
            tries: dict[str, list] = {}  # side → crops still to try: an ROI, or None (the body's ROI, re-cropped)
            rois, unsure = {}, {}
            for side in SIDES:
                roi = body_roi(body[p], side, self.min_body_score)
                if roi is None or not overlaps_image(roi, image_bgr.shape):  # no crop, or one of no pixels
                    self.previous.pop((p, side), None)
                    continue
                prev = self.previous.get((p, side))
                unsure[side] = body[p, BODY_HAND[side][1], 2] < self.unsure_score
                if unsure[side] and prev is None and self.unsure_wait.get((p, side), 0) > 0:
                    self.unsure_wait[(p, side)] -= 1
                    continue
                rois[side], tries[side] = roi, []
                # last frame's hand is followed while near the body's hand: within half a crop, or a whole one
                # when the body is unsure of its wrist (BlazePose lags a moving arm then, by up to a hand)
                near = 0.5 if body[p, BODY_HAND[side][1], 2] >= 0.5 else 1.0
                if prev is not None and np.linalg.norm(prev[:2] - roi[:2]) < near * roi[2]:
                    tries[side].append(prev)
                    self.stats["tracked"] += 1
                tries[side].append(roi if self.recrop is None else None)
            # the sides' first tries in one model call, then the second tries of those that found no hand
            found: dict[str, tuple[np.ndarray, float]] = {}
            while any(tries.values()):
                sides = [s for s in tries if tries[s]]
                crops = [tries[s].pop(0) for s in sides]
                crops = [self._recropped(image_bgr, rois[s]) if r is None else r
                         for s, r in zip(sides, crops, strict=True)]
                for side, (pts, presence) in zip(sides, self._landmarks_of(image_bgr, crops), strict=True):
                    if presence >= self.min_presence:
                        found[side] = (pts, presence)
                        tries[side] = []
            for side in rois:
                wait = self.palm_wait.get((p, side), 0)
                if side not in found and self.palms is not None and wait == 0:
                    # the nearest palm that is not a hand found already (the wider crop often holds the other
                    # hand too, and an unsure body wrist can lie nearer to it)
                    palms = [r for r in self._palm_fallback(image_bgr, rois[side], wrists[side])
                             if not any(_covers(h[0], r[:2]) for h in found.values())]
                    for r in palms[:1]:
                        pts, presence = self._landmarks_in(image_bgr, r)
                        if presence >= self.min_presence:
                            found[side] = (pts, presence)
                            self.stats["palm_found"] += 1
                    # a hand the palm detector cannot find either is tried again only every few frames
                    self.palm_wait[(p, side)] = 0 if side in found else self.palm_every - 1
                else:
                    self.palm_wait[(p, side)] = max(wait - 1, 0)
                self.unsure_wait[(p, side)] = self.unsure_every - 1 if side not in found and unsure[side] else 0
            hands = [found[s] for s in SIDES if s in found]
            self.stats["found"] += len(hands)
            for side, (pts, presence) in assign_sides(hands, wrists).items():
                k = SIDES.index(side) * 21
                out[p, k:k + 21, :2] = pts
                out[p, k:k + 21, 2] = np.where(in_image(pts, image_bgr.shape), presence, np.nan)
            for side in SIDES:
                k = SIDES.index(side) * 21
                if np.isfinite(out[p, k, 0]):
                    self.previous[(p, side)] = landmark_roi(out[p, k:k + 21, :2])
                else:
                    self.previous.pop((p, side), None)
        return out

    def restart(self) -> None:
        """Be a new detector again (another video or chunk): what it followed from frame to frame and its stats
        forgotten; the models are kept (each call is one crop alone: no state between calls)."""
        for memory in (self.previous, self.palm_wait, self.unsure_wait):
            memory.clear()
        self.stats = dict.fromkeys(self.stats, 0)

    def close(self) -> None:
        self.landmarks.close()
        if self.recrop is not None:
            self.recrop.close()
        if self.palms is not None:
            self.palms.close()


def _covers(points: np.ndarray, xy: np.ndarray) -> bool:
    """Whether ``xy`` lies within a hand's landmarks (their box grown by a quarter of its size)."""
    lo, hi = points.min(0), points.max(0)
    pad = 0.25 * float(np.max(hi - lo))
    return bool(np.all(xy >= lo - pad) and np.all(xy <= hi + pad))


def assign_sides(hands: list[tuple[np.ndarray, float]], wrists: dict[str, np.ndarray]
                 ) -> dict[str, tuple[np.ndarray, float]]:
    """Left / right by the body: each found hand goes to the side whose body wrist is nearest its landmark
    wrist; two hands on the same side (two crops on one hand, or a crossed pair) keep the one nearest that
    wrist, and one that duplicates a hand already kept (wrists within a tenth of the hand's size) is dropped."""
    out: dict[str, tuple[np.ndarray, float]] = {}
    ranked = []
    for pts, presence in hands:
        dist = {s: float(np.linalg.norm(pts[0] - w)) if np.isfinite(w).all() else np.inf for s, w in wrists.items()}
        side = min(dist, key=dist.get)
        ranked.append((dist[side], side, pts, presence))
    for _d, side, pts, presence in sorted(ranked, key=lambda r: r[0]):
        size = float(np.ptp(pts, axis=0).max())
        if side in out or any(np.linalg.norm(pts[0] - q[0][0]) < 0.1 * size for q in out.values()):
            other = SIDES[1 - SIDES.index(side)]
            if other in out or any(np.linalg.norm(pts[0] - q[0][0]) < 0.1 * size for q in out.values()):
                continue
            side = other
        out[side] = (pts, presence)
    return out


class WithHands:
    """A body detector in BlazePose 33 plus both hands: ``(image, t) → (P, 75, 3)`` in ``blazepose33_hands``."""

    keypoint_set = "blazepose33_hands"

    def __init__(self, body, variant: str = "full"):
        if body.keypoint_set != "blazepose33":
            raise ValueError(f"detect.hands: hands are placed from BlazePose's wrist/index/pinky keypoints, but the "
                             f"detector gives {body.keypoint_set}; use detector = 'blazepose' or a whole-body ONNX "
                             f"model (COCO-WholeBody 133 / Halpe 136 keypoints), or set detect.hands = false")
        self.body = body
        self.num_poses = body.num_poses
        self.hands = HandDetector(variant)
        if callable(getattr(body, "restart", None)):  # a pool worker then keeps it for its next chunk
            self.restart = self._restart

    def _restart(self) -> None:
        """Be a new detector again: the body detector restarted (``persons = auto``'s ScanningPose; a tracking
        body detector without ``restart()`` leaves this one without it too), the hands' memory forgotten."""
        self.body.restart()
        self.hands.restart()

    def __call__(self, image_bgr: np.ndarray, timestamp_ms: int) -> np.ndarray:
        body = self.body(image_bgr, timestamp_ms)
        return np.concatenate([body, self.hands(image_bgr, body)], axis=1)

    def close(self) -> None:
        self.body.close()
        self.hands.close()
