"""Quality report of a session: ``report/metrics.json``, ``report/report.html`` (plots inline, no
network) and ``review/<camera>_reprojected.mp4`` (the 3D skeleton projected over each video)."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import quote

import numpy as np

from mocap.io.atomic import atomic_write_text
from mocap.keypoint_sets import get_keypoint_set
from mocap.report import svg
from mocap.report.cameras import flag_text
from mocap.report.metrics import bone_lengths, compute, describe, reprojection, verdict
from mocap.session import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    overlay_videos: bool = True  # review/<camera>_reprojected.mp4
    snapshots: int = 4  # 3D skeleton views in the HTML
    person: int = 0
    max_reprojection_px: float = 8.0  # the verdict: median reprojection error over all detections
    max_bone_length_cv: float = 0.05  # mean coefficient of variation of the bone lengths
    min_points_reconstructed: float = 0.9  # share of (frame, keypoint) points in 3D
    camera_flag_ratio: float = 2.5  # a camera whose median (or P95) error is above this × the others' is flagged

    def __post_init__(self) -> None:
        if not self.camera_flag_ratio > 1:
            raise ValueError(f"report: camera_flag_ratio must be above 1, got {self.camera_flag_ratio}")


def outputs(session: Session, cfg: Config) -> list[Path]:
    return [session.root / "report" / "metrics.json", session.root / "report" / "report.html"]


def _groundtruth(session: Session, pts) -> dict | None:
    path = session.groundtruth_dir / "points3d.h5"
    if not path.is_file():
        return None
    from mocap.io.hdf5 import read_points3d

    truth = read_points3d(path).xyz[:, 0]
    X = pts.xyz[:, 0]
    true_rig = session.groundtruth_dir / "rig.toml"
    aligned = False
    if true_rig.is_file() and session.rig_path() != true_rig:  # a calibrated rig has its own world frame
        from mocap.geometry.align import rig_alignment
        from mocap.io.rig_files import read_rig

        rig, truth_rig = session.rig(), read_rig(true_rig)
        if len([n for n in truth_rig.names if n in rig.names]) >= 3:
            R, t, _ = rig_alignment(rig, truth_rig)
            X = X @ R.T + t
            aligned = True
    e = np.linalg.norm(X - truth, axis=-1)
    if not np.isfinite(e).any():
        return None
    half = len(X) // 2  # a constant offset per keypoint (definition bias) from the first half, scored on the second
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # keypoints the truth does not have are all NaN
        bias = np.nanmean((X - truth)[:half], axis=0)
    e_bc = np.linalg.norm(X[half:] - np.nan_to_num(bias) - truth[half:], axis=-1)
    return {"mpjpe_mm": float(np.nanmean(e) * 1000), "p95_mm": float(np.nanpercentile(e, 95) * 1000),
            "mpjpe_bias_corrected_mm": float(np.nanmean(e_bc) * 1000),
            "keypoints_compared": int(np.isfinite(truth).all(axis=-1).any(axis=0).sum()),
            "aligned_by_camera_centres": aligned}


def _swaps_repaired(session: Session, pts) -> dict | None:
    """{camera: left/right swaps repaired} from the points' info, or the triangulated points' (where the
    repair runs) when the refined ones do not carry it; None when no repair ran."""
    from mocap.io.hdf5 import read_points3d

    found = pts.info.get("swaps_repaired")
    tri = session.points3d("triangulated")
    if not isinstance(found, dict) and tri.is_file() and pts.info.get("stage") != "triangulated":
        found = read_points3d(tri).info.get("swaps_repaired")
    return found if isinstance(found, dict) else None


def build(session: Session, timings: dict[str, float] | None = None, extra: dict | None = None,
          cfg: Config = Config()) -> dict:
    """Compute the metrics and write the report files (the overlay videos rendered meanwhile, where out of
    date); returns the metrics."""
    from mocap.io.hdf5 import read_points3d
    from mocap.stages.sync import read_offsets

    rig = session.rig()
    src = session.points3d("refined") if session.points3d("refined").is_file() else session.points3d("triangulated")
    pts = read_points3d(src)
    offsets = read_offsets(session)
    videos = None
    if cfg.overlay_videos:  # rendered in threads while the metrics and the page are made
        from mocap.report import overlay

        videos = overlay.start(session, rig, pts, offsets, cfg.person)
    try:
        metrics = _metrics(session, rig, pts, src, offsets, timings, extra, cfg)
        if videos is not None:
            metrics["overlay_videos"] = [str(p) for p in videos.result()]
    except BaseException:
        if videos is not None:
            videos.cancel()
        raise
    return metrics


def _metrics(session: Session, rig, pts, src: Path, offsets: dict, timings, extra, cfg: Config) -> dict:
    from mocap.stages import triangulate

    kp = triangulate.session_keypoints(session, rig)
    metrics = compute(rig, kp, pts, cfg.person, offsets, cfg.camera_flag_ratio, _swaps_repaired(session, pts))
    metrics["points_source"] = src.name
    metrics["timings_s"] = timings or {}
    metrics["sync_offsets_frames"] = offsets
    gt = _groundtruth(session, pts)
    if gt:
        metrics["groundtruth"] = gt
    metrics |= extra or {}
    calib = (extra or {}).get("calibration_refinement")
    for name, row in metrics["cameras"].items():  # the camera refinement's move, when it ran
        row["calibration_move"] = None if not calib or name not in calib.get("moves_deg", {}) else {
            "deg": calib["moves_deg"][name], "mm": calib["moves_mm"][name], "applied": bool(calib.get("applied"))}
    metrics["verdict"] = verdict(metrics, cfg.max_reprojection_px, cfg.max_bone_length_cv,
                                 cfg.min_points_reconstructed)
    if metrics["verdict"]["failed"]:
        log.warning("report verdict: %s", metrics["verdict"]["summary"])
    for name, row in metrics["cameras"].items():
        if row["flagged"]:
            log.warning("camera flagged: %s; %s", flag_text(name, row), row["hint"])
    out = session.root / "report"
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1, default=float))
    atomic_write_text(out / "report.html", _html(session, rig, kp, pts, metrics, cfg))
    return metrics


def overlay_videos(session: Session, rig, pts, offsets: dict[str, float], cfg: Config) -> list[Path]:
    """The refined 3D skeleton projected over each camera's video (with its sync offset); cameras in
    parallel, each only when out of date (:mod:`mocap.report.overlay`)."""
    from mocap.report import overlay

    return overlay.overlay_videos(session, rig, pts, offsets, cfg.person)


def _move_text(move: dict | None) -> str:
    if not move:
        return "—"
    return f"{move['deg']:.2f}° / {move['mm']:.0f} mm" + ("" if move["applied"] else " (not applied)")


def _calibration_html(calib: dict | None) -> str:
    """What the camera refinement from the performer did (``calibration/refined/report.json``)."""
    if not calib:
        return ""
    e = calib.get("error_px") or {}
    if not e:
        return f"<p>Camera refinement from the performer: not done ({escape(str(calib.get('reason', '')))}).</p>"
    verdict = "applied" if calib.get("applied") else "not applied"
    return (f"<p>Camera refinement from the performer: {verdict} ({escape(str(calib.get('reason', '')))}); "
            f"median error on the frames it did not use {e.get('heldout_given', float('nan')):.2f} px with the "
            f"given rig, {e.get('heldout_refined', float('nan')):.2f} px with the refined one (on the frames it "
            f"used: {e.get('used_given', float('nan')):.2f} → {e.get('used_refined', float('nan')):.2f} px).</p>")


def _camera_rows(cameras: dict[str, dict]) -> str:
    """One escaped table row per camera; a flagged camera in red with what fired and what to check."""
    def num(x, f: str) -> str:
        return "—" if x is None or not np.isfinite(x) else format(x, f)

    out = []
    for name, r in cameras.items():
        cells = [name, num(r["median_px"], ".1f"), num(r.get("ratio_to_others"), ".2f") + "×",
                 num(r["p95_px"], ".1f"), str(r["detections"]),
                 num(r["kept_share"], ".0%"), f"{r['sync_offset_frames']:+.2f}",
                 "—" if r["swaps_repaired"] is None else str(r["swaps_repaired"]),
                 _move_text(r.get("calibration_move")),
                 f"FLAGGED: {flag_text(name, r)}. {r['hint']}" if r["flagged"] else "ok"]
        cls = " class=bad" if r["flagged"] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return "".join(out)


def _gaps_html(gaps: dict | None) -> str:
    """The fit's gap frames per joint (``motion/<skeleton>.gaps.json``): where a joint was unseen and bridged."""
    if not gaps:
        return ""
    rows = "".join(f"<tr><td>{escape(str(j))}</td><td>{int(g.get('frames', 0))}</td><td>"
                   + escape(", ".join(f"{a}–{b - 1}" for a, b in g.get("ranges", [])))
                   + "</td></tr>" for j, g in sorted(gaps.get("joints", {}).items()))
    if not rows:
        return "<h2>Gaps</h2><p>Every joint was seen in every fitted frame.</p>"
    return ("<h2>Gaps</h2><p>Frames where a joint was seen by no camera: the fit bridged them from the joints "
            "that were seen and the neighbouring frames; check them before use.</p>"
            f"<table><tr><td>joint</td><td>frames</td><td>frames (ranges)</td></tr>{rows}</table>")


def _html(session: Session, rig, kp, pts, m: dict, cfg: Config) -> str:
    err = reprojection(rig, kp, pts, person=cfg.person)  # (F, C, J)
    fps = pts.fps
    per_cam = {}
    for i, c in enumerate(rig.names):
        e = err[:, i]
        ok = np.isfinite(e).any(axis=1)
        per_cam[c] = np.full(len(e), np.nan)
        per_cam[c][ok] = np.nanmedian(e[ok], axis=1)
    names, L = bone_lengths(pts, cfg.person)
    kps = get_keypoint_set(pts.keypoint_set)
    X = pts.xyz[:, cfg.person]
    frames = np.linspace(0, len(X) - 1, cfg.snapshots).round().astype(int)
    snaps = "".join(svg.skeleton(X[f], kps.limbs, f"frame {f} ({view})", view=view)
                    for f in frames for view in ("front",))
    rp = m["reprojection_px"]
    rows = [("reprojection error, median / P95 (all detections)", f"{rp['median']:.2f} / {rp['p95']:.2f} px"),
            ("reprojection error, median over the views kept", f"{rp['median_views_used']:.2f} px "
             f"({rp['views_used_share']:.0%} of detections kept)"),
            ("frames with every joint", f"{m['reconstructed']['frames_all_joints']:.1%}"),
            ("points reconstructed", f"{m['reconstructed']['points']:.1%}"),
            ("bone-length CV, mean / max", f"{m['bone_length_cv']['mean']:.2%} / {m['bone_length_cv']['max']:.2%}"),
            ("jitter (mean acceleration)", f"{m['jitter_mean_accel_m_s2']:.2f} m/s²")]
    if "groundtruth" in m:
        rows.append(("error against ground truth (MPJPE / P95)",
                     f"{m['groundtruth']['mpjpe_mm']:.1f} / {m['groundtruth']['p95_mm']:.1f} mm"))
    if m.get("sync_offsets_frames"):
        rows.append(("camera time offsets (frames)",
                     ", ".join(f"{k} {v:+.2f}" for k, v in m["sync_offsets_frames"].items())))
    table = "".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td></tr>" for a, b in rows)
    camera_rows = _camera_rows(m["cameras"])
    timing = "".join(f"<tr><td>{escape(k)}</td><td>{v:.2f} s</td></tr>" for k, v in m.get("timings_s", {}).items())
    videos = "".join(f'<li><a href="../review/{escape(quote(c + "_reprojected.mp4"))}">{escape(c)}</a></li>'
                     for c in rig.names) if cfg.overlay_videos and (session.root / "videos").is_dir() else ""
    cams = escape(", ".join(rig.names))
    failed = m["verdict"]["failed"]
    verdict_html = ("<p class=ok>PASS: looks usable.</p>" if not failed else
                    "<p class=bad>FAIL: " + escape("; ".join(describe(f) for f in failed)) + ".</p>"
                    "<p>Check before use: these are beyond what a good capture gives.</p>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>mocap report: {escape(session.name)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}} td{{padding:2px 12px}}
.ok{{color:#080;font-weight:bold}} .bad{{color:#b00;font-weight:bold}} svg{{margin:4px}}</style></head><body>
<h1>{escape(session.name)}</h1>
<p>{m['frames']} frames at {fps:g} fps, cameras {cams}; 3D points: {escape(m['points_source'])}.</p>
{verdict_html}<table>{table}</table>
<h2>Cameras</h2>
<p>Error over all detections of each camera; a camera far above the others is flagged with what to check
(from the time profile of its error).</p>
<table><tr><td>camera</td><td>median px</td><td>median / others'</td><td>P95 px</td><td>detections</td>
<td>kept</td><td>sync offset (frames)</td><td>swaps repaired</td><td>calibration move</td><td>flag</td></tr>
{camera_rows}</table>{_calibration_html(m.get("calibration_refinement"))}
{_gaps_html(m.get("gaps"))}
<h2>Reprojection error per camera over time</h2>
{svg.lines(per_cam, "median over joints", "time (s)", "pixels", 1 / fps)}
<h2>Reprojection error per joint</h2>
{svg.bars(rp['per_joint_median'], "median over frames and cameras", "px")}
<h2>Bone lengths over time</h2>
{svg.lines({n: L[:, i] * 100 for i, n in enumerate(names)}, "keypoint-set bones", "time (s)", "cm", 1 / fps)}
<h2>3D skeleton</h2>{snaps}
<h2>Review videos</h2><ul>{videos or '<li>(no camera videos in this session)</li>'}</ul>
<h2>Stage timings</h2><table>{timing}</table>
<h2>Versions</h2><p>{escape(', '.join(f'{k} {v}' for k, v in m['versions'].items()))}</p>
</body></html>"""
