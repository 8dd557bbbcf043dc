"""``mocap bench robustness``: what the robustness stages of issue 14 cost next to triangulate + refine.

One synthetic take (CMU clip → BlazePose keypoints → ring of cameras → σ px noise, outliers, dropouts,
optionally left/right swaps and a time shift of one camera) is given to the pipeline through a rig whose
cameras but the reference are turned by 1–2° and moved by 5–10 cm (``move_rig``). The stages run in the
pipeline's order on the pure ``run`` functions (no files): camera refinement from the performer
(``rig_refine``, with sync's test on its rig, refined again on keypoints shifted back when a camera lags:
:mod:`mocap.stages.rig_lags`), sync (on the rig the refinement gave: as in one process of ``mocap run``,
it reuses that test's result), left/right swap repair (as the triangulate stage
reads the keypoints), triangulate (reusing the swap repair's undistorted detections and the points of the
rows it did not change, and settling suspect points from the views' consensus before the camera-pair search,
as the stage does), refine; then triangulate alone, as it runs with the robustness
off (on the same rig and keypoints: the least it costs; refine's input is then the same points to 1e-9 m,
checked, so its time is the one measured). Each stage's wall and CPU seconds are recorded (each the least
of ``repeats`` runs), with every OpenBLAS at ``blas_threads`` threads as ``mocap run`` runs the stages after
detection (:mod:`mocap.blas_threads`: more only spin between the stages' small products, which counted
that spinning as CPU and, on a busy machine, wall time: at 8 cameras 0.43× end to end with the library's own
threads, 0.34× at one). Two cost figures: per stage, (rig_refine + sync + swap repair) / (triangulate alone +
refine); end to end, what issue 14 asks, (chain on − chain off) / chain off, with chain on = rig_refine +
sync + swap repair + triangulate + refine and chain off = triangulate alone + refine. Gap bridging (the fit
stage) works only on frames where a joint is unseen in every view, none here.

Accuracy, so that a speed-up that costs accuracy shows: the refined rig's camera centre and rotation errors
after the similarity best aligning it onto the true rig, the sync offsets against the true shift, the
share of swapped views repaired and of the others falsely changed, and the refined points' MPJPE (after
a similarity alignment: the refined rig keeps the given rig's world frame and scale) against the same
keypoints triangulated and refined through the true rig.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mocap import blas_threads
from mocap.bench.common import SyntheticTakeConfig
from mocap.geometry.align import aligned_camera_errors as rig_errors  # tests import it from here too
from mocap.geometry.camera_moves import apply_moves
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.geometry.swaps import SwapConfig, swap_groups
from mocap.geometry.swaps_repair import repair_keypoints
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages import refine, rig_refine, sync, triangulate
from mocap.stages.rig_lags import refine_with_lags
from mocap.stages.rig_moves import look_for_moves
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
EXTRA = ("rig_refine", "sync", "swap_repair")  # what issue 14 added
BASE = ("triangulate", "refine")  # the rest of the chain with the robustness on (triangulate reusing its work)
OFF = "triangulate alone"  # triangulate as it runs with the robustness off
BASE_OFF = (OFF, "refine")  # the chain with the robustness off


@dataclass(frozen=True)
class RobustnessBenchConfig(SyntheticTakeConfig):
    move_rig: bool = True  # every camera but the reference turned 1–2° and moved 5–10 cm in the given rig
    shift_frames: float = 0.0  # the second camera sees at t + shift what the others see at t
    repeats: int = 1  # each stage is timed this many times; the fastest counts
    blas_threads: int = 1  # every OpenBLAS at this many threads while a stage is timed, as in mocap run (0: as is)

    def __post_init__(self) -> None:
        if self.cameras < 3:
            raise ValueError(f"bench robustness: cameras must be ≥ 3 (rig refinement needs 3), got {self.cameras}")
        if self.frames < 60:
            raise ValueError(f"bench robustness: frames must be ≥ 60, got {self.frames}")
        if self.repeats < 1:
            raise ValueError(f"bench robustness: repeats must be ≥ 1, got {self.repeats}")
        if isinstance(self.blas_threads, bool) or not isinstance(self.blas_threads, int) or self.blas_threads < 0:
            raise ValueError(f"bench robustness: blas_threads must be a whole number ≥ 0 (0: the libraries' own), "
                             f"got {self.blas_threads!r}")


def moved_rig(rig: Rig, seed: int = 3, deg: tuple[float, float] = (1.0, 2.0),
              metres: tuple[float, float] = (0.05, 0.10)) -> Rig:
    """Every camera but the first turned by ``deg`` degrees and moved by ``metres`` (uniform in the ranges,
    random directions)."""
    rng = np.random.default_rng(seed)
    cams = [rig.cameras[0]]
    for c in rig.cameras[1:]:
        axis, move = rng.normal(size=3), rng.normal(size=3)
        R = axis_angle_to_matrix(axis / np.linalg.norm(axis) * np.radians(rng.uniform(*deg))) @ c.R
        centre = c.center + move / np.linalg.norm(move) * rng.uniform(*metres)
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, -R @ centre
        cams.append(c.with_pose(T))
    return Rig(tuple(cams))


def aligned_mpjpe_mm(X: np.ndarray, truth: np.ndarray) -> float:
    """Mean joint error (mm) of (F, J, 3) points after the similarity best aligning them onto the truth."""
    ok = np.isfinite(X).all(-1) & np.isfinite(truth).all(-1)
    if not ok.any():
        return float("nan")
    A, B = X[ok], truth[ok]
    ma, mb = A.mean(0), B.mean(0)
    U, S, Vt = np.linalg.svd((B - mb).T @ (A - ma))
    D = np.diag([1, 1, np.linalg.det(U @ Vt)])
    R = U @ D @ Vt
    s = np.trace(np.diag(S) @ D) / np.sum((A - ma) ** 2)
    return float(np.mean(np.linalg.norm(s * (A - ma) @ R.T + mb - B, axis=-1)) * 1000)


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[Any, float, float]:
    """(result of the last run, fastest wall seconds, least CPU seconds: this process, all threads). Each
    is the least over the runs on its own: on a shared machine other processes only ever add to both, and
    not always to the same run."""
    wall = cpu = np.inf
    out = None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return out, wall, cpu


def timed_as_run(fn: Callable[[], Any], cfg: RobustnessBenchConfig) -> tuple[Any, float, float]:
    """:func:`timed` with every OpenBLAS at ``cfg.blas_threads`` threads (as ``mocap run`` runs the stages after
    detection; 0: as they are)."""
    with blas_threads.limited(cfg.blas_threads) if cfg.blas_threads > 0 else contextlib.nullcontext():
        return timed(fn, cfg.repeats)


def repair(rig: Rig, kp: Keypoints2D, work: dict | None = None) -> tuple[Keypoints2D, dict]:
    """The swap repair as the triangulate stage does it with its defaults (``work``: what triangulate reuses)."""
    cfg = triangulate.Config()
    return repair_keypoints(rig, kp, get_keypoint_set(kp.keypoint_set), cfg.min_score,
                            SwapConfig(max_reproj_px=cfg.max_reproj_px or 15.0), work=work)


def swap_scores(info: dict, truth_mask: np.ndarray, kp: Keypoints2D, cameras: np.ndarray | None = None) -> dict:
    """Share of the swapped views repaired (every group with detections exchanged back) and of the others
    falsely changed, over the ``cameras`` (C,) bool (all by default)."""
    ks = get_keypoint_set(kp.keypoint_set)
    member = swap_groups(ks)[1]
    G = member.shape[1]
    swapped = np.zeros(truth_mask.shape + (G,), bool)
    for f, c, _, bits in info["swap_repairs"]["views"]:
        swapped[f, c] = [(bits >> g) & 1 for g in range(G)]
    w = triangulate.observation_weights(kp, triangulate.Config().min_score)[:, :, 0]
    has = ((w > 0)[..., None] & member).any(axis=2)
    right = np.all(~has | (swapped == truth_mask[..., None]), axis=2)
    scored = np.ones(truth_mask.shape, bool) if cameras is None else np.broadcast_to(cameras, truth_mask.shape)
    hit, clean = truth_mask & scored, ~truth_mask & scored
    return {"swapped_views": int(hit.sum()), "repaired": float(right[hit].mean()) if hit.any() else None,
            "false_repairs": float(swapped.any(axis=2)[clean].mean())}


def run(cfg: RobustnessBenchConfig, progress: Callable[[str], None] | None = None) -> dict:
    step = progress or (lambda text: None)
    step("synthetic take")
    take = cfg.take()
    truth_rig, kp = take.rig, take.keypoints
    if cfg.shift_frames:
        data = kp.data.copy()
        data[:, 1] = sync.shift_tracks(data[:, 1], -cfg.shift_frames)
        kp = Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)
    given = moved_rig(truth_rig, seed=cfg.seed + 3) if cfg.move_rig else truth_rig
    stages: dict[str, dict] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        step(name)
        out, wall, cpu = timed_as_run(fn, cfg)
        stages[name] = {"wall_s": wall, "cpu_s": cpu}
        log.info("%s: %.2f s wall, %.2f s CPU", name, wall, cpu)
        return out

    # as the stages run in mocap run: the refinement checks sync's test on its rig (and refines again on keypoints
    # shifted back when a camera lags); the sync stage then reuses that test's result (the same rig)
    def refine_rig():  # sync's check computed in every repeat (the fastest would else be a reused result)
        sync.forget_remembered()
        c = rig_refine.Config()
        refined, report = refine_with_lags(given, kp, c, sync.Config())
        return look_for_moves(given, refined, kp, c, report, lambda k, r: rig_refine._observations(k, c)[0],
                              lambda k: rig_refine.run(given, k, c))  # a camera moved mid-take, as the stage

    refined, moves, calib = stage("rig_refine", refine_rig)
    kp = apply_moves(kp, refined, moves) if moves else kp
    rig = refined if refined is not None else given
    synced = stage("sync", lambda: sync.remembered_run(rig, kp))
    kp_s = sync.apply_offsets(kp, synced["offsets_frames"]) if any(synced["offsets_frames"].values()) else kp
    work: dict = {}
    kp_r, swaps = stage("swap_repair", lambda: repair(rig, kp_s, work))
    tri = stage("triangulate", lambda: triangulate.run(rig, kp_r, swap_work=work))
    points, summaries = stage("refine", lambda: refine.run(rig, kp_r, tri))
    # the chain without the robustness: triangulate on its own (on the same rig and keypoints: the least it
    # costs; refine's input is then the same points to rounding, its time the one above)
    alone = stage(OFF, lambda: triangulate.run(rig, kp_r))
    same = bool(np.allclose(alone.xyz, tri.xyz, rtol=0, atol=1e-9, equal_nan=True)
                and np.array_equal(alone.views, tri.views))

    step("reference: the true rig")
    kp_t = sync.apply_offsets(kp, {kp.camera_names[1]: cfg.shift_frames}) if cfg.shift_frames else kp
    kp_t = repair(truth_rig, kp_t)[0]
    ref_points = refine.run(truth_rig, kp_t, triangulate.run(truth_rig, kp_t))[0]

    extra, extra_cpu = (sum(stages[n][k] for n in EXTRA) for k in ("wall_s", "cpu_s"))
    base, base_cpu = (sum(stages[n][k] for n in BASE_OFF) for k in ("wall_s", "cpu_s"))
    on, on_cpu = (sum(stages[n][k] for n in EXTRA + BASE) for k in ("wall_s", "cpu_s"))
    centres, rotations = rig_errors(rig, truth_rig)
    given_centres, given_rotations = rig_errors(given, truth_rig)
    mpjpe = aligned_mpjpe_mm(points.xyz[:, 0], take.truth)
    ref_mpjpe = aligned_mpjpe_mm(ref_points.xyz[:, 0], take.truth)
    offsets = synced["offsets_frames"]
    true_offsets = {n: (cfg.shift_frames if i == 1 else 0.0) for i, n in enumerate(kp.camera_names)}
    accuracy = {
        "rig_refine_applied": bool(calib["applied"]), "rig_refine_reason": calib.get("reason", ""),
        "camera_moves": [m.camera for m in moves],
        "camera_centre_mm_max": float(centres.max()), "camera_rotation_deg_max": float(rotations.max()),
        "camera_centre_mm": centres.tolist(), "camera_rotation_deg": rotations.tolist(),
        "given_centre_mm_max": float(given_centres.max()), "given_rotation_deg_max": float(given_rotations.max()),
        "heldout_px": [calib.get("error_px", {}).get(k, float("nan")) for k in ("heldout_given", "heldout_refined")],
        "rig_refine_points": calib.get("points"), "rig_refine_iterations": calib.get("iterations"),
        "sync_offsets_frames": offsets,
        "sync_error_frames_max": float(max(abs(offsets[n] - true_offsets[n]) for n in offsets)),
        # a shifted camera's views are read between frames (shifted back by sync): its true swaps are not known
        "swaps": swap_scores(swaps, take.masks["swapped"], kp_s,
                             np.arange(cfg.cameras) != 1 if cfg.shift_frames else None),
        "swaps_scored_without_shifted_camera": bool(cfg.shift_frames),
        "mpjpe_mm": mpjpe, "true_rig_mpjpe_mm": ref_mpjpe, "mpjpe_ratio": mpjpe / ref_mpjpe,
        "refine_usable": bool(summaries[0].usable) if summaries else None,
    }
    accuracy["triangulate_reuse_same_points"] = same

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("nan")

    return {"config": asdict(cfg), "stages": stages, "blas_threads_outside": blas_threads.pools(),
            "ratio_wall": ratio(extra, base), "ratio_cpu": ratio(extra_cpu, base_cpu),
            "extra_wall_s": extra, "base_wall_s": base, "extra_cpu_s": extra_cpu, "base_cpu_s": base_cpu,
            "chain_on_wall_s": on, "chain_on_cpu_s": on_cpu,
            "end_to_end_wall": ratio(on - base, base), "end_to_end_cpu": ratio(on_cpu - base_cpu, base_cpu),
            "accuracy": accuracy}


def table_rows(result: dict) -> list[dict]:
    """Rows for :func:`mocap.bench.common.format_table`: one per stage, then the totals (shares of the chain
    with the robustness off, CPU)."""
    st = result["stages"]
    base_wall, base_cpu = result["base_wall_s"], result["base_cpu_s"]

    def share(cpu: float) -> float | None:
        return cpu / base_cpu if base_cpu > 0 else None

    label = {"triangulate": "triangulate (reusing swap repair's work)", OFF: "triangulate alone (robustness off)"}
    rows = [{"stage": label.get(n, n) + (" (added)" if n in EXTRA else ""), "wall": st[n]["wall_s"],
             "cpu": st[n]["cpu_s"], "share": share(st[n]["cpu_s"])} for n in st]
    rows.append({"stage": "added stages (rig_refine + sync + swap repair)", "wall": result["extra_wall_s"],
                 "cpu": result["extra_cpu_s"], "share": result["ratio_cpu"]})
    rows.append({"stage": "chain off: triangulate alone + refine", "wall": base_wall, "cpu": base_cpu,
                 "share": 1.0})
    rows.append({"stage": "chain on: all of the above but triangulate alone", "wall": result["chain_on_wall_s"],
                 "cpu": result["chain_on_cpu_s"], "share": share(result["chain_on_cpu_s"])})
    return rows


COLUMNS = [("stage", "stage", ""), ("wall", "wall s", ".2f"), ("cpu", "CPU s", ".3f"),
           ("share", "CPU ÷ chain off", ".3f")]


def accuracy_lines(result: dict) -> list[str]:
    a = result["accuracy"]
    s = a["swaps"]
    swaps = (f"swaps: {100 * s['repaired']:.1f} % of {s['swapped_views']} swapped views repaired, "
             f"{100 * s['false_repairs']:.2f} % false repairs" if s["repaired"] is not None
             else f"swaps: none injected, {100 * s['false_repairs']:.2f} % false repairs")
    if a["swaps_scored_without_shifted_camera"]:
        swaps += " (the shifted camera not scored)"
    return [
        f"rig_refine: {'applied' if a['rig_refine_applied'] else 'NOT applied (' + a['rig_refine_reason'] + ')'}, "
        f"{a['rig_refine_points']} points, {a['rig_refine_iterations']} iterations; held-out "
        f"{a['heldout_px'][0]:.2f} → {a['heldout_px'][1]:.2f} px",
        f"cameras after similarity alignment: centres ≤ {a['camera_centre_mm_max']:.2f} mm (target 5), rotations ≤ "
        f"{a['camera_rotation_deg_max']:.4f}° (target 0.05); given rig: {a['given_centre_mm_max']:.0f} mm, "
        f"{a['given_rotation_deg_max']:.2f}°",
        f"sync: offsets {({k: round(v, 2) for k, v in a['sync_offsets_frames'].items()})}, largest error "
        f"{a['sync_error_frames_max']:.3f} frames (target 0.1; 0.25 on a synchronised take)",
        swaps,
        f"MPJPE (similarity-aligned) {a['mpjpe_mm']:.2f} mm, through the true rig {a['true_rig_mpjpe_mm']:.2f} mm: "
        f"ratio {a['mpjpe_ratio']:.3f} (target ≤ 1.1)",
        f"cost per stage: (rig_refine + sync + swap repair) / (triangulate alone + refine) = "
        f"{result['ratio_cpu']:.3f} CPU, {result['ratio_wall']:.3f} wall",
        f"cost end to end: (chain on − chain off) / chain off = {result['end_to_end_cpu']:.3f} CPU, "
        f"{result['end_to_end_wall']:.3f} wall (target ≤ 0.20); triangulate's reuse gave the same points: "
        f"{a['triangulate_reuse_same_points']}",
    ]
