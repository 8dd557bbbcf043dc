"""A camera moved mid-take (a bumped tripod), found and read back (the rig_refine stage's computation).

The camera refinement finds one pose per camera for the whole take. A camera knocked partway through has two:
on CMU 01_01 (2,000 frames at 60 fps, 4 cameras, σ 2 px) one camera turned 0.5° and shifted 10 mm at frame
1,000 left the refined points 12.4 mm off there against 3.8 mm before, with the report's median 2.6 px and no
flag (the other cameras absorb a shift of 7.5 px). So, after the refinement, each camera's detections are judged
against the points the other cameras triangulate (leave one out, frames sampled evenly: ``moves_frames``), their
median error per second; the cut that best splits those into two levels (least absolute deviations, each part
≥ ``moves_min_part_s``) is a candidate when one level is at least ``STEP`` times the other. The camera's pose is
fitted (PnP on the other cameras' points, robust) on the even blocks (``block_s``) of the part with the higher
level and judged on its odd ones: a move when that lowers the part's held-out median error by ``moves_min_gain``
against both the rig's pose and one pose fitted to the whole take the same way (in a rig whose other cameras are
off the errors follow the performer, and any split fits a little better), and the camera's whole held-out error
(mean, clipped at ``max_reproj_px``) by half that. Looked for on the refined rig and on the given one (a refinement
on such a take averages the two poses and the other cameras make up for it); the candidate that explains its
camera best wins, its part is hidden and the cameras refined again without it, then the next camera. The moved
part's detections are read back into the rig's pose (:mod:`mocap.geometry.camera_moves`), so every later stage
works on one rig. When sync shifts cameras in time (the refinement then ran on keypoints shifted back), the
search runs on those too and each move's frames are told in its camera's own. With several people every search
reads one association of the take per rig, every person who moves, each one's joints after another's (who is in
which slot is the association's choice; keypoints with a part hidden, associated anew, may choose otherwise, and
a moved part fitted to another person's points read 119° / 10 m). A part whose pose is further from the rig's than
``max_move_deg`` / ``max_move_m`` is not a bump: not read back (a warning). One move per camera; not looked for when
sync reads a camera's parts at different offsets (a camera that lost frames: its parts are sync's).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import cv2
import numpy as np

from mocap.geometry.camera import pixels_to_normalised
from mocap.geometry.camera_moves import CameraMove
from mocap.geometry.normal_terms import finite
from mocap.geometry.rig_errors import points3d
from mocap.geometry.rotations import geodesic_deg
from mocap.optim.rig_refine import moves as pose_moves
from mocap.stages.rig_lags import check_people
from mocap.stages.rig_refine_kept import rig_off
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
STEP = 1.15  # a cut is a candidate when one part's median error is at least this many times the other's
CLEAR_STEP = 1.5  # ... and the given rig is searched too when a camera's step on the refined one is this clear
BLOCK_S = 1.0  # the error's level is judged on blocks this long


def check_moves_config(cfg) -> None:
    """rig_refine's settings of this search (its Config's ``moves_*``), or a clear error."""
    if not (cfg.moves_min_part_s >= 0 and 0 < cfg.moves_min_gain < 1 and cfg.moves_frames >= 10):
        raise ValueError(f"rig_refine: moves_min_part_s must be ≥ 0 (0: off), moves_min_gain in (0, 1) and "
                         f"moves_frames ≥ 10; got {cfg.moves_min_part_s}, {cfg.moves_min_gain}, {cfg.moves_frames}")


def look_for_moves(given: Rig, refined: Rig | None, kp: Keypoints2D, cfg, report: dict,
                   observations: Callable[[Keypoints2D, Rig], np.ndarray],
                   refit: Callable[[Keypoints2D], tuple[Rig | None, dict]]
                   ) -> tuple[Rig | None, list[CameraMove], dict]:
    """For the rig_refine stage: the cameras moved mid-take, on the keypoints ``kp``, after the refinement
    (``refined``: its rig, None when not applied; ``report``: its report). ``observations(kp, rig)``: the used
    joints' pixels (F, C, J, 2) (several people: each one's J after another's); ``refit(kp)``: the refinement
    again (rig or None when not applied, report).
    Looked for on the rig at hand and, the first time, on the given one too (a refinement on a take whose camera
    moved averages its two poses and the other cameras make up for it: its errors follow the performer); each move
    found (the largest held-out gain first) hides that camera's moved part and the cameras are refined again
    without it, then the next. Returns (the rig to write: the last refinement's, or the given one; None when no
    move; the moves, in the world of that rig; the report: the last refinement's, with ``camera_moves`` and
    ``rig_refined`` (that refinement's own verdict); ``applied`` when a camera moved)."""
    if not cfg.enabled or report.get("refused") or rig_off(report):  # on a rig whose cameras are off,
        why = ("the rig's cameras are off further than the refinement may move them" if rig_off(report)
               else "the camera refinement did not run")  # errors follow the performer: any split fits better
        return refined, [], report | {"camera_moves": {"searched": False, "moves": [], "reason": why}}
    lags = report.get("lags") or {}
    if lags.get("refined_on_parts"):  # a camera whose offset changes mid-take: parts in time are sync's
        why = "sync reads a camera's parts at different time offsets: the cameras were refined on those parts"
        return refined, [], report | {"camera_moves": {"searched": False, "moves": [], "reason": why}}
    lag = {n: float(d) for n, d in (lags.get("applied_frames") or {}).items() if d}
    if lag:  # refined on the keypoints shifted back by sync's offsets: searched on them too, the moves' frames
        from mocap.stages.sync import apply_offsets  # told in the camera's own (as detected) afterwards

        kp = apply_offsets(kp, lag)
    skip: set[str] = set()
    rig, hidden, spans, found = refined if refined is not None else given, kp, {}, {}
    seen, first = _one_association(kp, observations), report
    while True:
        tried = [search(rig, seen(rig, spans), kp.fps, cfg, skip | set(spans))]
        stepped = any("cut_frame" in c and max(c["levels_px"]) >= CLEAR_STEP * min(c["levels_px"])
                      for c in tried[0].get("cameras", {}).values())
        if stepped and not spans and rig is not given:  # a clear step on the refined rig: the given one too
            tried.append(search(given, seen(given, spans), kp.fps, cfg, skip))
        info = max(tried, key=lambda t: t["gain"])
        if not info.get("best"):
            break
        name, span = info["best"]
        c = rig.names.index(name)
        again, new = refit(_hide(hidden, c, span))
        now = again if again is not None else given
        if not _still_moved(now, seen(now, spans), c, span, kp.fps, cfg):  # a split of a rig that averaged
            skip.add(name)  # the two poses may vanish once the cameras are refined without it: not a move
            continue
        spans[name], found[name] = span, info["cameras"][name]
        hidden, rig = _hide(hidden, c, span), now
        report = new | {k: report[k] for k in ("lags",) if k in report}
    if not spans:
        return refined, [], report | {"camera_moves": tried[0]}
    raw, xy = seen(rig, {}), seen(rig, spans)  # each move's pose on the final rig: its camera's detections of
    moves = []  # that part, the points of the others (their own moved parts left out)
    for n, span in spans.items():
        c = rig.names.index(n)
        m = _move(rig, np.concatenate([xy[:, :c], raw[:, c:c + 1], xy[:, c + 1:]], axis=1), c, span, cfg)
        centre = -m.cam_from_world[:3, :3].T @ m.cam_from_world[:3, 3]
        found[n] |= {"turn_deg": float(geodesic_deg(m.cam_from_world[:3, :3], rig[n].R)),
                     "shift_mm": float(1000 * np.linalg.norm(centre - rig[n].center))}
        if found[n]["turn_deg"] > cfg.max_move_deg or found[n]["shift_mm"] > 1000 * cfg.max_move_m:
            found[n]["rejected"] = (f"its pose there is {found[n]['turn_deg']:.1f}° / {found[n]['shift_mm']:.0f} mm "
                                    f"from the rig's, more than a bump (rig_refine.max_move_deg = {cfg.max_move_deg}°, "
                                    f"max_move_m = {cfg.max_move_m} m)")
            log.warning("rig_refine: camera %s seems to change pose in frames %d–%d, but %s: its detections there are "
                        "not read back (recalibrate that part, or leave it out with start/stop)", n, span[0],
                        span[1] - 1, found[n]["rejected"])
            continue
        moves.append(m)
    moves = [_as_detected(m, lag.get(m.camera, 0.0), kp.shape[0]) for m in moves]
    for m in moves:
        h = found[m.camera]["heldout_px"]
        log.warning("rig_refine: camera %s was elsewhere in frames %d–%d (%.2f° / %.0f mm from its pose in the "
                    "others): its detections there are read back into that pose (held-out error there %.2f → %.2f px)",
                    m.camera, m.from_frame, m.last_frame(kp.shape[0]), found[m.camera]["turn_deg"],
                    found[m.camera]["shift_mm"], h["rig_pose"], h["own_pose"])
    if not moves:  # every one further than a bump: the first refinement stands
        return refined, [], first | {"camera_moves": {"searched": True, "moves": [], "rejected": found}}
    rig_refined = bool(report["applied"])
    deg, mm = pose_moves(rig, given)
    names = ", ".join(m.camera for m in moves)
    report |= {"moves_deg": deg, "moves_mm": mm, "applied": True, "rig_refined": rig_refined,
               "reason": f"camera {names} moved mid-take" + ("; held-out frames improve" if rig_refined else
                                                              f"; the other cameras keep their given poses "
                                                              f"({report.get('reason', '')})"),
               "camera_moves": {"searched": True, "cameras": found, "moves": [
                   {"camera": m.camera, "from_frame": m.from_frame, "to_frame": m.last_frame(kp.shape[0]) + 1,
                    "depth_m": m.depth_m, "turn_deg": found[m.camera]["turn_deg"],
                    "shift_mm": found[m.camera]["shift_mm"]} for m in moves]}}
    return rig, moves, report


def _as_detected(m: CameraMove, lag: float, frames: int) -> CameraMove:
    """A move found on keypoints shifted back by sync's offset ``lag`` (frames: the camera's frame t + lag is the
    others' t) in the camera's own frames, as detected (what ``moves.json`` holds and the later stages read back)."""
    if not lag:
        return m
    end = None if m.to_frame is None else int(np.clip(round(m.to_frame + lag), 1, frames))
    return dataclasses.replace(m, from_frame=int(np.clip(round(m.from_frame + lag), 0, frames - 1)), to_frame=end)


def _one_association(kp: Keypoints2D, observations: Callable[[Keypoints2D, Rig], np.ndarray]
                     ) -> Callable[[Rig, dict], np.ndarray]:
    """``seen(rig, parts)``: the used joints' pixels of ``kp`` through ``rig`` with the cameras' ``parts``
    ({camera: (first, end) frames}) left out, from one association per rig: with several people who is in which
    slot is the association's choice, and keypoints with a part hidden, associated anew, may choose otherwise (a
    camera's moved part fitted to the other cameras' points of someone else read 119° / 10 m)."""
    memo: dict[int, tuple[Rig, np.ndarray]] = {}

    def seen(rig: Rig, parts: dict) -> np.ndarray:
        if id(rig) not in memo:
            memo[id(rig)] = (rig, observations(kp, rig))  # the rig kept: its id is not reused while it lives
        xy = memo[id(rig)][1].copy()
        for name, (a, b) in parts.items():
            xy[a:b, rig.names.index(name)] = np.nan
        return xy

    return seen


def callbacks(given: Rig, cfg, people: dict, refine: Callable, observations: Callable) -> tuple[Callable, Callable]:
    """The rig_refine stage's ``observations(kp, rig)`` and ``refit(kp)`` for :func:`look_for_moves`: on the people
    sync works on, and every associated person refined (``people``: the stage's ``synced_on`` / ``refined_on``
    when a view holds several), ``refine(rig, kp, cfg, refined_on)`` (:func:`mocap.stages.rig_people.run`: the
    people associated through the given rig, then again through the refined one) and ``observations(kp, cfg)``
    its own."""
    one, on = people.get("synced_on"), people.get("refined_on")

    def seen(kp: Keypoints2D, rig: Rig) -> np.ndarray:  # several people: each one's joints one after another
        check_people(kp, one)
        k = kp if one is None else one(kp, rig)
        return np.concatenate([observations(Keypoints2D(k.data[:, :, p:p + 1], k.camera_names, k.keypoint_set,
                                                        k.fps), cfg)[0] for p in range(k.shape[2])], axis=2)

    def refit(kp: Keypoints2D) -> tuple[Rig | None, dict]:
        return refine(given, kp, cfg, on)

    return seen, refit


def search(rig: Rig, xy: np.ndarray, fps: float, cfg, skip: set[str] = frozenset()) -> dict:
    """Each camera's step in time and its judgement on the observations xy (F, C, J, 2) (NaN: unusable) of the
    used joints; ``cfg``: rig_refine's Config; ``skip``: cameras not looked at. ``best``: (camera, (first, end)
    frames of the part whose pose differs) of the move that lowers its camera's held-out error most (``gain``), or
    None."""
    F, C = xy.shape[:2]
    part = int(round(cfg.moves_min_part_s * fps))
    report: dict = {"searched": False, "moves": [], "best": None, "gain": 0.0}
    if cfg.moves_min_part_s <= 0:
        return report | {"reason": "switched off (rig_refine.moves_min_part_s = 0)"}
    if 2 * part > F or C < 3:
        return report | {"reason": f"take shorter than twice rig_refine.moves_min_part_s ({cfg.moves_min_part_s:g} "
                                   "s) or fewer than 3 cameras"}
    frames = _sampled(0, F, cfg.moves_frames)
    report |= {"searched": True, "cameras": {}}
    for c, cam in enumerate(rig.cameras):
        if cam.name in skip:
            continue
        X, uv, fr = _leave_one_out(rig, xy, frames, c, cfg.max_reproj_px)
        cut, levels = _cut(fr, np.linalg.norm(cam.project(X) - uv, axis=-1), fps, part) if len(fr) >= 10 else \
            (None, [])
        report["cameras"][cam.name] = info = {"levels_px": levels}
        if cut is None:
            continue
        cut = _exact_cut(rig, xy, c, cut, max(1, int(round(BLOCK_S * fps))), levels, cfg.max_reproj_px)
        span = (0, int(cut)) if levels[0] > levels[1] else (int(cut), F)  # the part whose error is higher
        info |= {"cut_frame": int(cut), "span": list(span)} | _judge(cam, X, uv, fr, span, fps, cfg)
        if info["moved"] and info["camera_gain"] > report["gain"]:
            report["best"], report["gain"] = (cam.name, span), info["camera_gain"]
    return report


def _still_moved(rig: Rig, xy: np.ndarray, c: int, span: tuple[int, int], fps: float, cfg) -> bool:
    """Whether camera c's part ``span`` still differs (:func:`_judge`) on ``rig``, refined without it."""
    X, uv, fr = _leave_one_out(rig, xy, _sampled(0, xy.shape[0], cfg.moves_frames), c, cfg.max_reproj_px)
    return len(fr) >= 10 and _judge(rig.cameras[c], X, uv, fr, span, fps, cfg)["moved"]


def _exact_cut(rig: Rig, xy: np.ndarray, c: int, cut: int, block: int, levels: list[float], max_px: float) -> int:
    """The cut found between blocks, to the frame: every frame of the blocks either side judged (the least absolute
    deviation from the two levels)."""
    X, uv, fr = _leave_one_out(rig, xy, np.arange(max(1, cut - block), min(xy.shape[0], cut + block)), c, max_px)
    e = np.linalg.norm(rig.cameras[c].project(X) - uv, axis=-1)
    cands = np.unique(fr)
    costs = [np.nansum(np.abs(e[fr < k] - levels[0])) + np.nansum(np.abs(e[fr >= k] - levels[1])) for k in cands]
    return int(cands[int(np.argmin(costs))]) if len(cands) else cut


def _sampled(first: int, end: int, most: int) -> np.ndarray:
    """At most ``most`` frames of first … end − 1, evenly spread."""
    return np.arange(first, end, max(1, int(np.ceil((end - first) / most))))


def _hide(kp: Keypoints2D, c: int, span: tuple[int, int]) -> Keypoints2D:
    """``kp`` without camera c's detections of frames span[0] … span[1] − 1."""
    data = np.array(kp.data, dtype=float)
    data[span[0]:span[1], c] = np.nan
    return Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)


def _move(rig: Rig, xy: np.ndarray, c: int, span: tuple[int, int], cfg) -> CameraMove:
    """Camera c's pose in frames span[0] … span[1] − 1, fitted to the points the other cameras of ``rig``
    triangulate (at most ``moves_frames`` frames)."""
    X, uv, _ = _leave_one_out(rig, xy, _sampled(span[0], span[1], cfg.moves_frames), c, cfg.max_reproj_px)
    cam = rig.cameras[c]
    pose = _pose(cam, X, uv, cam.cam_from_world)
    depth = np.median((X @ pose[:3, :3].T + pose[:3, 3])[:, 2])
    end = None if span[1] >= xy.shape[0] else int(span[1])
    return CameraMove(cam.name, int(span[0]), pose, float(depth), end)


def _leave_one_out(rig: Rig, xy: np.ndarray, frames: np.ndarray, c: int, max_px: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera c's detections of ``frames`` (N, 2), the points the other cameras triangulate for them (N, 3)
    (at least two of them seeing the joint) and each one's frame (N,)."""
    others = [k for k in range(len(rig)) if k != c]
    sub = xy[frames]  # (n, C, J, 2)
    n, _, J, _ = sub.shape
    uv_o = sub[:, others].transpose(0, 2, 1, 3).reshape(-1, len(others), 2)
    uv_c = sub[:, c].reshape(-1, 2)
    keep = (finite(uv_o).sum(axis=1) >= 2) & finite(uv_c)
    fr = np.repeat(frames, J)[keep]
    X = points3d(rig.subset([rig.names[k] for k in others]), uv_o[keep], max_px)
    ok = finite(X)
    return X[ok], uv_c[keep][ok], fr[ok]


def _cut(fr: np.ndarray, e: np.ndarray, fps: float, part: int) -> tuple[int | None, list[float]]:
    """The first frame of the block where the error e (N,) of points of frames fr (N,) best splits into two levels
    (each part ≥ ``part`` frames), or None when the levels differ by less than ``STEP``; the two levels (px)."""
    ok = np.isfinite(e)
    fr, e = fr[ok], e[ok]
    block = max(1, int(round(BLOCK_S * fps)))
    ids = fr // block
    first = np.unique(ids)
    med = np.array([np.median(e[ids == b]) for b in first])
    per = int(np.ceil(part / block))
    best, best_cost = None, np.inf
    for i in range(per, len(first) - per + 1):
        a, b = med[:i], med[i:]
        cost = np.abs(a - np.median(a)).sum() + np.abs(b - np.median(b)).sum()
        if cost < best_cost:
            best, best_cost = i, cost
    if best is None:
        return None, []
    lo, hi = float(np.median(med[:best])), float(np.median(med[best:]))
    return (None if max(lo, hi) < STEP * min(lo, hi) else int(first[best] * block)), [lo, hi]


def _judge(cam, X: np.ndarray, uv: np.ndarray, fr: np.ndarray, span: tuple[int, int], fps: float, cfg) -> dict:
    """Whether camera ``cam`` was elsewhere in frames span[0] … span[1] − 1: its pose fitted to that part's even
    blocks, against the rig's pose and against one pose fitted to the whole take, on the part's odd blocks."""
    block = max(1, int(round(cfg.block_s * fps)))
    # even and odd blocks among those with samples: frames sampled every two blocks or more (a long take) would
    # else all fall in even ones, nothing held out (every such take's move missed)
    est = np.unique(fr // block, return_inverse=True)[1].ravel() % 2 == 0
    inside = (fr >= span[0]) & (fr < span[1])
    single = _pose(cam, X[est], uv[est], cam.cam_from_world)  # one pose for the whole take fitted the same way:
    own = _pose(cam, X[est & inside], uv[est & inside], single)  # in a rig whose other cameras are off, the error
    held = ~est & inside  # follows the performer, and any split fits a little better

    def err(T, m=held):
        e = np.linalg.norm(cam.with_pose(T).project(X[m]) - uv[m], axis=-1)
        return float(np.nanmedian(e)) if m.any() else float("nan")

    e = {"rig_pose": err(cam.cam_from_world), "one_pose": err(single), "own_pose": err(own)}
    gain = 1 - e["own_pose"] / min(e["rig_pose"], e["one_pose"])
    gain = float(gain) if np.isfinite(gain) else 0.0
    # the whole camera's held-out error, mean of errors clipped at max_reproj_px, before / after: which of the
    # candidates explains the camera best (a split on a rig that averaged the two poses explains little of it)
    e_all = np.minimum(np.linalg.norm(cam.project(X[~est]) - uv[~est], axis=-1), cfg.max_reproj_px)
    e_split = np.where(inside[~est], np.minimum(np.linalg.norm(cam.with_pose(own).project(X[~est]) - uv[~est],
                                                               axis=-1), cfg.max_reproj_px), e_all)
    overall = float(1 - np.nanmean(e_split) / np.nanmean(e_all)) if (~est).any() else 0.0
    moved = gain >= cfg.moves_min_gain and overall >= cfg.moves_min_gain / 2
    return {"heldout_px": e, "gain": gain, "camera_gain": overall, "moved": moved} | (
        {} if moved else {"reason": f"its own pose on frames {span[0]}–{span[1] - 1} lowers their held-out error "
                                    f"by less than {100 * cfg.moves_min_gain:.0f} %"})


def _pose(cam, X: np.ndarray, uv: np.ndarray, start: np.ndarray, rounds: int = 3) -> np.ndarray:
    """cam_from_world (4, 4) fitting the points X (N, 3) to the pixels uv (N, 2) (robust: the points beyond
    3× the median error and 2 px left out, re-solved), from ``start``; ``start`` with fewer than 6 points."""
    if len(X) < 6:
        return start
    xn = pixels_to_normalised(cam, uv)
    f = float(cam.K[0, 0])
    rvec, tvec = cv2.Rodrigues(start[:3, :3])[0], start[:3, 3].reshape(3, 1).copy()
    keep = np.ones(len(X), bool)
    for _ in range(rounds):
        ok, rvec, tvec = cv2.solvePnP(X[keep].astype(np.float64), xn[keep].astype(np.float64), np.eye(3), None,
                                      rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
        if not ok:
            return start
        proj = cv2.projectPoints(X.astype(np.float64), rvec, tvec, np.eye(3), None)[0][:, 0]
        r = f * np.linalg.norm(proj - xn, axis=-1)
        keep = r <= max(3 * np.median(r), 2.0)
        if keep.sum() < 6:
            return start
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = cv2.Rodrigues(rvec)[0], tvec.ravel()
    return T
