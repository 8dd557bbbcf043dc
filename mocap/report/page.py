"""``report/report.html``: one self-contained page (SVG and JPEG inline, no network, no script) that
explains its numbers: the verdict names each failed metric, its threshold and the setting; per
camera a table and the frames where its error is worst (detections vs reprojection); plots with
whole legends; front and side skeleton snapshots; with several people a timeline and a section each."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

import numpy as np

from mocap.keypoint_sets import get_keypoint_set
from mocap.report import svg
from mocap.report.cameras import flag_text
from mocap.report.crops import CROP_CAMERAS, SIDE_CSS, Crop
from mocap.report.metrics import ONE_VIEW_RUN_S, bone_lengths, reprojection
from mocap.report.stats import per_frame
from mocap.report.verdict import describe
from mocap.view.scene import LEFT, RIGHT, keypoint_segments, segment_sides, side_of

SETTINGS = {"reprojection_mm.median": "report.max_reprojection_mm",
            "reprojection_px.median": "report.max_reprojection_px", "bone_length_cv.mean": "report.max_bone_length_cv",
            "reconstructed.points": "report.min_points_reconstructed",
            "reconstructed.points_two_views": "report.min_points_two_views",
            "reconstructed.points_one_view_long": "report.max_points_one_view_long"}
STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
td{padding:2px 10px;vertical-align:top} table{border-collapse:collapse} tr:nth-child(even){background:#f4f4f4}
.ok{color:#080;font-weight:bold} .bad{color:#b00;font-weight:bold} svg{margin:4px;max-width:100%;height:auto}
figure{display:inline-block;margin:4px 6px;vertical-align:top} figcaption{font-size:12px;max-width:320px}
.crops img{height:300px;border:1px solid #999} .key span{display:inline-block;width:14px;height:8px;margin:0 4px}
.verdict li{margin:2px 0}"""


@dataclass
class PersonData:
    """What one person's section shows."""

    index: int
    name: str
    metrics: dict
    err: np.ndarray  # (F, C, J) reprojection error, detections after the left/right repair
    err_raw: np.ndarray | None  # the same with the detections as detected (None: no repair ran)
    crops: list[Crop]


def _check_items(checks: list[dict], setting: str = "") -> str:
    items = []
    for f in checks:
        where = f"metric <code>{escape(f['metric'])}</code>"
        metric = re.sub(r"^persons\.\d+\.", "", f["metric"])  # one of several people: the same settings
        if metric in SETTINGS:
            where += f", threshold setting <code>{escape(SETTINGS[metric])}</code>"
        elif metric.startswith("cameras."):
            where += ", threshold setting <code>report.camera_flag_ratio</code>"
        items.append(f"<li>{escape(describe(f))} ({where}{setting})</li>")
    return "".join(items)


def verdict_html(failed: list[dict], limited: list[dict] = ()) -> str:
    """The verdict's paragraph: PASS or FAIL with each failed check, and the checks limited by resolution or by
    occlusion."""
    pixels = [f for f in limited if f.get("why", "resolution") == "resolution"]
    hidden = [f for f in limited if f.get("why") == "occlusion"]
    note = "" if not pixels else (
        "<p>Limited by the images' resolution, not a fault: the error at the person is above its threshold, but in "
        "pixels it is within what a keypoint detector gives at best (the people are small in the images: farther "
        "or wider cameras, or fewer pixels). Closer cameras, longer lenses or more pixels would make it smaller:</p>"
        f"<ul class=verdict>{_check_items(pixels, ', floor setting <code>report.resolution_floor_px</code>')}</ul>")
    note += "" if not hidden else (
        "<p>Limited by occlusion: these points were seen by one camera (or none) for half a second or longer, and "
        "refine estimated them from that view, the bone lengths and the motion: most within tens of millimetres, "
        "some up to half a metre off. More cameras, or cameras placed to see around the people, would measure "
        "them:</p>" f"<ul class=verdict>{_check_items(hidden)}</ul>")
    if not failed:
        return ("<p class=ok>PASS: looks usable (every check within its threshold"
                + (", or limited: below" if limited else "") + ").</p>" + note)
    return ("<p class=bad>FAIL: " + escape("; ".join(describe(f) for f in failed)) + ".</p>"
            "<p>The checks that failed (value, threshold, and where the threshold is set):</p>"
            f"<ul class='verdict bad'>{_check_items(failed)}</ul>"
            "<p>Check before use: these are beyond what a good capture gives.</p>" + note)


def _num(x, f: str) -> str:
    return "—" if x is None or not np.isfinite(x) else format(x, f)


def _move_text(move: dict | None) -> str:
    if not move:
        return "—"
    text = f"{move['deg']:.2f}° / {move['mm']:.0f} mm"
    if move.get("aligned_deg") is not None and move.get("aligned_mm") is not None:  # older reports lack it
        aligned = f"{move['aligned_deg']:.2f}° / {move['aligned_mm']:.0f} mm"
        if aligned != text:  # the same when the whole rig did not move: said once (16 rows of 5 lines)
            text += f" ({aligned} with the whole rig aligned)"
    return text + ("" if move["applied"] else " (not applied)")


def camera_table(cameras: dict[str, dict], anchor: str, shown=()) -> str:
    """The per-camera table (header and rows); ``shown``: the cameras whose worst frames the page shows."""
    head = ("<tr><td>camera</td><td>median px</td><td>median mm at the person</td><td>median / others' (at the "
            "person)</td><td>P95 px</td><td>detections</td>"
            "<td>kept</td><td>sync offset (frames)</td><td>left/right swaps repaired</td><td>calibration move</td>"
            "<td>flag</td><td>worst frames</td></tr>")
    return f"<table>{head}{camera_rows(cameras, anchor, shown)}</table>"


def camera_rows(cameras: dict[str, dict], anchor: str, shown=()) -> str:
    """One escaped row per camera; a flagged camera in red with what fired and what to check; its worst frames
    linked ("see below") when ``shown`` (the cameras whose worst frames the page shows) holds it, else "—"."""
    rows = []
    for name, r in cameras.items():
        cells = [escape(c) for c in (
            name, _num(r["median_px"], ".1f"), _num(r.get("median_mm"), ".1f"),
            _num(r.get("ratio_to_others"), ".2f") + "×", _num(r["p95_px"], ".1f"),
            str(r["detections"]), _num(r["kept_share"], ".0%"), f"{r['sync_offset_frames']:+.2f}",
            "—" if r["swaps_repaired"] is None else str(r["swaps_repaired"]), _move_text(r.get("calibration_move")),
            f"FLAGGED: {flag_text(name, r)}. {r['hint']}" if r["flagged"]
            else f"saw no one: {r['hint']}" if r.get("unseen")
            else r["hint"] if r.get("missed") or r.get("behind") or r.get("lost")
            else "ok")]
        cells.append(f'<a href="#{escape(quote(anchor + "-" + name))}">see below</a>' if name in shown else "—")
        cls = " class=bad" if r["flagged"] or r.get("behind") else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(rows)


def crops_html(crops: list[Crop], cameras: list[str], anchor: str) -> str:
    if not crops:
        return "<p>(no frame to show: worst frames are off, <code>report.worst_frames = 0</code>)</p>"
    key = (f"<p class=key>Thick translucent lines: the 3D points reprojected through the camera; dots joined by thin "
           f"lines: the detector's 2D keypoints as detected (before any left/right repair); "
           f"<span style='background:{SIDE_CSS[LEFT]}'></span>left <span style='background:{SIDE_CSS[RIGHT]}'>"
           "</span>right <span style='background:#ddd;border:1px solid #999'></span>centre. Red dots on blue "
           "lines (and blue on red): left and right exchanged; dots on another body: a wrong person; every dot "
           "shifted the same way: calibration or sync.</p>")
    out = [key]
    left_out = len(cameras) > CROP_CAMERAS  # the others' worst frames: not shown (mocap.report.crops.crop_frames)
    for cam in cameras:
        mine = [c for c in crops if c.camera == cam]
        if not mine:
            out.append(f"<p>{escape(cam)}: no frame to show (" + (
                f"worst frames shown for the {CROP_CAMERAS} cameras with the highest P95 error" if left_out else
                "no detection of this person compared in it") + ").</p>")
            continue
        figs = []
        for c in mine:
            src = f"video frame {c.video_frame}" if c.video_frame is not None else "no video: drawn on grey"
            cap = f"{cam}, frame {c.frame} ({src}): median error {c.error_px:.1f} px"
            if c.repaired:
                cap += (f"; left/right repaired here ({c.repaired}): {c.error_repaired_px:.1f} px after the repair")
            figs.append(f'<figure><img alt="{escape(cap)}" src="{c.data_uri()}"><figcaption>{escape(cap)}'
                        "</figcaption></figure>")
        out.append(f'<h4 id="{escape(quote(anchor + "-" + cam))}">{escape(cam)}</h4><div class=crops>'
                   + "".join(figs) + "</div>")
    return "".join(out)


def per_camera_series(err: np.ndarray, err_raw: np.ndarray | None, names, swaps: dict) -> tuple[dict, frozenset]:
    series, dashed = {}, set()
    for i, c in enumerate(names):
        series[c] = per_frame(err[:, i], 1)
        if err_raw is not None and swaps.get(c):
            label = f"{c} as detected (before the left/right repair)"
            series[label] = per_frame(err_raw[:, i], 1)
            dashed.add(label)
    return series, frozenset(dashed)


def snapshots(X: np.ndarray, keypoint_set: str, n: int, title: str = "") -> str:
    """Front and side views of ``n`` frames spread over the take, facing the performer."""
    kps = get_keypoint_set(keypoint_set)
    segs, mids = keypoint_segments(kps)
    sides = segment_sides(tuple(kps.joints) + ("",) * len(mids), segs)
    ok_frames = np.flatnonzero(np.isfinite(X).all(axis=-1).any(axis=-1))
    if not ok_frames.size or n <= 0:
        return "<p>(no 3D pose to show)</p>"
    frames = ok_frames[np.linspace(0, len(ok_frames) - 1, n).round().astype(int)]
    left = [i for i, j in enumerate(kps.joints) if side_of(j) == LEFT and j.replace("left", "right") in kps.joints]
    right = [kps.joints.index(kps.joints[i].replace("left", "right")) for i in left]
    out = []
    for f in sorted(set(frames.tolist())):
        P = X[f]
        if mids:
            P = np.concatenate([P, np.array([(P[a] + P[b]) / 2 for a, b in mids])])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no left/right pair seen in this frame
            lat = np.nanmean(X[f, left] - X[f, right], axis=0) if left else np.array([1.0, 0, 0])
        lat = np.nan_to_num(np.asarray(lat, float))
        lat[2] = 0
        lat = lat / np.linalg.norm(lat) if np.linalg.norm(lat) > 1e-9 else np.array([1.0, 0, 0])
        face = np.cross(lat, [0.0, 0.0, 1.0])
        # seen from the front, the performer's left is on the viewer's right
        out.append("<span style='white-space:nowrap'>"
                   + svg.skeleton(P, segs, f"{title}frame {f}: front", sides=sides, axis=lat)
                   + svg.skeleton(P, segs, f"{title}frame {f}: side (from their right)", sides=sides, axis=face)
                   + "</span>")
    return ("<p class=key>Orthographic views facing the performer (front: their left on your right) and "
            "from their right (side: facing right); "
            f"<span style='background:{SIDE_CSS[LEFT]}'></span>left <span style='background:{SIDE_CSS[RIGHT]}'>"
            "</span>right.</p>" + "".join(out))


def summary_rows(m: dict) -> str:
    rp, rec = m["reprojection_px"], m["reconstructed"]
    body = " (body; hands apart)" if "hands_points" in rec else ""
    rows = [("reprojection error, median / P95 (all detections)", f"{rp['median']:.2f} / {rp['p95']:.2f} px"),
            ("reprojection error at the person, median / P95 (pixels × depth ÷ focal length)",
             _num(m.get("reprojection_mm", {}).get("median"), ".1f") + " / "
             + _num(m.get("reprojection_mm", {}).get("p95"), ".1f") + " mm"),
            ("reprojection error, median over the views kept", f"{rp['median_views_used']:.2f} px "
             f"({rp['views_used_share']:.0%} of detections kept)"),
            ("frames with every joint" + body, f"{rec['frames_all_joints']:.1%}"),
            ("points reconstructed" + body, f"{rec['points']:.1%}"),
            *([("points seen by two cameras or more (the others estimated from one view, the bone lengths and the "
                "motion)" + body, f"{rec['points_two_views']:.1%}")] if "points_two_views" in rec else []),
            *([(f"points without two cameras for {ONE_VIEW_RUN_S:g} s or longer (the motion no longer bridges them: "
                "tens of mm to half a metre off)" + body, f"{rec['points_one_view_long']:.1%}")]
              if "points_one_view_long" in rec else []),
            *([("frames away (seen nowhere for a while: not counted above)", f"{rec['frames_away']}")]
              if rec.get("frames_away") else []),
            *([("frames before the person was first seen or after the last (not counted above)",
                f"{rec['frames_outside']} (seen in frames {rec['first_frame']}–{rec['last_frame']})")]
              if rec.get("frames_outside") else []),
            ("bone-length CV, mean / max" + (" (body; hands apart)" if "hands_mean" in m["bone_length_cv"] else ""),
             f"{m['bone_length_cv']['mean']:.2%} / {m['bone_length_cv']['max']:.2%}")]
    if "hands_points" in rec:
        rows.append(("hand points reconstructed", f"{rec['hands_points']:.1%}, in {rec['hands_frames_any']:.1%} of "
                     "frames" if rec["hands_frames_any"] > 0 else "none: no camera saw a hand in the whole take "
                     "(the body is unaffected)"))
    if "hands_mean" in m["bone_length_cv"] and rec.get("hands_frames_any", 1) > 0:
        rows.append(("bone-length CV of the hands, mean / max", _num(m["bone_length_cv"]["hands_mean"], ".2%")
                     + " / " + _num(m["bone_length_cv"]["hands_max"], ".2%")))
    if m.get("knees_moved"):
        rows.append(("one-view ankles refine moved to their ray's other side (the knee bent backwards there)",
                     f"{m['knees_moved']} (frame, leg)"))
    if m.get("toes_moved"):
        rows.append(("one-view toes refine moved to their ray's other side (the foot pointing away from the shin)",
                     f"{m['toes_moved']}"))
    rows.append(("jitter (mean acceleration)", _num(m["jitter_mean_accel_m_s2"], ".2f") + " m/s²"))  # NaN: < 3 frames
    if "groundtruth" in m:
        gt = m["groundtruth"]
        rows.append(("error against ground truth (MPJPE / P95)", f"{gt['mpjpe_mm']:.1f} / {gt['p95_mm']:.1f} mm")
                    if "p95_mm" in gt else ("error against ground truth (MPJPE)", f"{gt['mpjpe_mm']:.1f} mm"))
    if m.get("sync_offsets_frames"):
        steps, late = m.get("sync_steps") or {}, m.get("late_cameras") or {}
        rows.append(("camera time offsets (frames)", ", ".join(
            f"{k} {v:+.2f}" + (" then " + ", ".join(f"{d:+.2f} from frame {f}" for f, d in steps[k][1:])
                               + " (frames lost)" if steps.get(k) else "")
            + (f" (its video {abs(late[k]['frames']):.0f} frames {'shorter' if late[k]['frames'] < 0 else 'longer'}: "
               + (f"frames {'dropped' if late[k]['frames'] < 0 else 'repeated'} mid-take?" if late[k].get("mid_take")
                  else f"started {'late' if late[k]['frames'] < 0 else 'early'}?") + " no offset proven)"
               if k in late else "")
            for k, v in m["sync_offsets_frames"].items())))
    if m.get("repeated_frames"):
        rows.append(("frames a camera repeated (frozen video; their detections not used)", ", ".join(
            f"{k} {r['text']} ({r['frames']}{': too many for a freeze, kept' if r.get('used') else ''})"
            for k, r in m["repeated_frames"].items())))
    if m.get("blank_frames"):
        rows.append(("black frames of a video (undecodable: a damaged file? no detection there)", ", ".join(
            f"{k} {r['text']} ({r['frames']})" for k, r in m["blank_frames"].items())))
    if m.get("videos_not_used"):
        rows.append(("videos not used (no camera of that name in the rig)", ", ".join(m["videos_not_used"])))
    return "<table>" + "".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td></tr>" for a, b in rows) + "</table>"


def person_section(d: PersonData, pts, rig, fps: float, snapshots_n: int, heading: str) -> str:
    m = d.metrics
    anchor = f"worst-{d.name}"
    swaps = {k: r.get("swaps_repaired") for k, r in m["cameras"].items()}
    series, dashed = per_camera_series(d.err, d.err_raw, rig.names, swaps)
    names, L = bone_lengths(pts, d.index)
    h = heading
    return f"""{summary_rows(m)}
<{h}>Cameras</{h}>
<p>Error over all detections of each camera; a camera far above the others is flagged with what to check
(from the time profile of its error). Swaps repaired: views where the detector's left and right were exchanged
and put back before triangulation.</p>
{camera_table(m["cameras"], anchor, {c.camera for c in d.crops})}
<{h}>Worst frames per camera</{h}>
{crops_html(d.crops, list(rig.names), anchor)}
<{h}>Reprojection error per camera over time</{h}>
{svg.lines(series, "median over joints", "time (s)", "pixels", 1 / fps, dashed=dashed)}
<{h}>Reprojection error per joint</{h}>
{svg.bars(m["reprojection_px"]["per_joint_median"], "median over frames and cameras", "px")}
<{h}>Bone lengths over time</{h}>
{svg.lines({n: L[:, i] * 100 for i, n in enumerate(names)}, "keypoint-set bones", "time (s)", "cm", 1 / fps)}
<{h}>3D skeleton</{h}>{snapshots(pts.xyz[:, d.index], pts.keypoint_set, snapshots_n)}"""


def page(title: str, m: dict, people: list[PersonData], pts, rig, cfg, extra_html: str, videos: list[str]) -> str:
    fps = pts.fps
    cams = escape(", ".join(rig.names))
    if len(people) == 1:
        body = person_section(people[0], pts, rig, fps, cfg.snapshots, "h2")
    else:
        spans = {t["name"]: [tuple(s) for s in t["spans"]] for t in m.get("timeline", [])}
        body = "<h2>Who is where</h2>" + svg.timeline(spans, m["frames"], fps)
        for d in people:
            present = next((t["frames_present"] for t in m.get("timeline", []) if t["name"] == d.name), 0)
            body += (f'<h2 id="{escape(quote(d.name))}">{escape(d.name)}</h2><p>{present} of {m["frames"]} frames '
                     "present.</p>" + person_section(d, pts, rig, fps, cfg.snapshots, "h3"))
    links = "".join(f'<li><a href="../review/{escape(quote(v))}">{escape(v)}</a></li>' for v in videos)
    timing = "".join(f"<tr><td>{escape(k)}</td><td>{v:.2f} s</td></tr>" for k, v in m.get("timings_s", {}).items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>mocap report: {escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<p>{m['frames']} frames at {fps:g} fps, cameras {cams}; 3D points: {escape(m['points_source'])}; {len(people)}
{'person' if len(people) == 1 else 'people'}.</p>
{verdict_html(m["verdict"]["failed"], m["verdict"].get("limited", ()))}
{body}
{extra_html}
<h2>Review videos</h2><ul>{links or '<li>(no review videos: no camera videos, or report.overlay_videos off)</li>'}</ul>
<h2>Stage timings</h2><table>{timing}</table>
<h2>Versions</h2><p>{escape(', '.join(f'{k} {v}' for k, v in m['versions'].items()))}</p>
</body></html>"""


def errors(rig, kp, kp_raw, pts, p: int) -> tuple[np.ndarray, np.ndarray | None]:
    return reprojection(rig, kp, pts, person=p), (None if kp_raw is None else reprojection(rig, kp_raw, pts, person=p))
