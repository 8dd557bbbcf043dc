"""The report page's edges: a spike above the error plot's axis is marked and its maximum stated, a joint no camera
detected has no bar, metrics.json is strict JSON (null for NaN), review videos are linked only where written, and
"see below" only where the worst frames are shown."""

import json
import logging
import re
import shutil
from urllib.parse import unquote

import h5py
import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap import report
from mocap.keypoint_sets import get_keypoint_set
from mocap.report.svg import bars, lines
from mocap.session import Session
from mocap.stages import triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.synth.groundtruth import SyntheticTake, write_session
from mocap.types import Keypoints2D

JOINTS = get_keypoint_set("blazepose33").joints
FEET = [JOINTS.index(j) for j in JOINTS if "heel" in j or "foot" in j]


def _session(root, frames=60, mutate=None, size=(640, 480)):
    """A ring of four cameras watching a synthetic performer (1 px of noise), triangulated."""
    X = blazepose_keypoints(body_motion(frames, 30.0))
    rig = ring_rig(RigSpec(n_cameras=4, size=size), X.reshape(-1, 3))
    data, masks = corrupt(np.moveaxis(rig.project(X), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.0, 0.0, seed=0))
    if mutate:
        mutate(data)
    kp = Keypoints2D(data, rig.names, "blazepose33", 30.0)
    session = Session(write_session(SyntheticTake(rig, kp, X, masks), root, json_2d=False))
    triangulate.write_outputs(triangulate.run(rig, kp), session.points3d("triangulated"))
    return session, rig


def _build(session, **cfg):
    return report.build(session, cfg=report.Config(**({"overlay_videos": False} | cfg)))


def _html(session) -> str:
    return (session.root / "report" / "report.html").read_text()


def _svg_after(html: str, heading: str) -> str:
    return html.split(f"{heading}</h2>")[1].split("</svg>")[0]


# 1: the error-over-time plot keeps a readable scale but never hides a spike


def test_a_spike_above_the_axis_is_marked_and_its_maximum_stated():
    rng = np.random.default_rng(0)
    series = {f"cam0{i}": rng.normal(1.0, 0.15, 600) for i in range(1, 5)}
    series["cam01"][300:302] = [140.0, 142.6]
    series["cam04"][300:302] = [222.0, 225.0]
    out = lines(series, "median over joints", "time (s)", "pixels", 1 / 30)
    title = re.search(r'font-size="13">([^<]*)</text>', out).group(1)
    assert re.fullmatch(r"median over joints: axis cut at 1\.\d+ pixels; 4 values above it \(▲\), up to 225 pixels "
                        r"\(cam04\)", title), title
    ticks = [float(t) for t in re.findall(r'text-anchor="end">([0-9.e+]+)</text>', out)]
    assert max(ticks) < 2  # the bulk stays readable: not scaled to 225
    marks = re.findall(r"▲<title>([^<]*)</title>", out)
    assert marks == ["cam01: 143 pixels in frame 301 (time (s) = 10), above the axis",
                     "cam04: 225 pixels in frame 301 (time (s) = 10), above the axis"], marks
    assert ">max 225 pixels (cam04)</text>" in out


def test_values_near_the_top_scale_the_axis_to_their_maximum_with_no_mark():
    v = np.ones(600)
    v[10] = 1.9  # above 1.1 × the 99.5th percentile, within twice it: the axis reaches it, nothing is cut
    out = lines({"a": v}, "t", "time (s)", "px")
    assert "▲" not in out and "axis cut" not in out
    ticks = [float(t) for t in re.findall(r'text-anchor="end">([0-9.e+]+)</text>', out)]
    assert ticks == [0, 0.5, 1, 1.5]  # round values up to the axis's top (1.05 × 1.9): not "0.499, 0.998, 1.5, 2"
    points = [float(p.split(",")[1]) for p in re.search(r'points="([^"]+)"', out).group(1).split()]
    top, bottom = 24, 280 - 34  # the plot's top edge and axis: the peak drawn where it is, 1/1.05 of the way up
    assert min(points) == pytest.approx(bottom - (bottom - top) / 1.05, abs=0.2)


def test_a_3d_glitch_in_the_page_is_marked_with_its_true_error(tmp_path):
    """Two frames of 0.8 m off in 3D (the reviewer's case): the plot's title states the highest per-frame
    median error of any camera there (149 px here, the axis cut at 1.51 px) and how many values are above the axis
    (2 frames × 4 cameras), and the plot marks them at its top edge."""
    from mocap.io.hdf5 import read_points3d
    from mocap.report.metrics import reprojection
    from mocap.report.stats import per_frame

    session, rig = _session(tmp_path / "spike", frames=600)
    shutil.copy(session.points3d("triangulated"), session.points3d("refined"))
    with h5py.File(session.points3d("refined"), "r+") as f:
        xyz = f["xyz"][...]
        xyz[300:302, 0] += np.array([0.8, 0.0, 0.0])
        f["xyz"][...] = xyz
    _build(session)
    kp, _ = triangulate.read_session_keypoints(session, rig, single_performer=True)
    err = reprojection(rig, kp, read_points3d(session.points3d("refined")))
    worst = max((float(np.nanmax(per_frame(err[:, c], 1))), rig.names[c]) for c in range(len(rig)))
    assert worst[0] > 50
    plot = _svg_after(_html(session), "Reprojection error per camera over time")
    title = re.search(r'font-size="13">([^<]*)</text>', plot).group(1)
    assert title.endswith(f"; 8 values above it (▲), up to {worst[0]:.3g} pixels ({worst[1]})"), title
    assert plot.count("▲<title>") >= 4 and f">max {worst[0]:.3g} pixels ({worst[1]})</text>" in plot


# 4: a joint no camera detected is no 0 px bar


def test_a_joint_with_no_value_has_no_bar_and_says_not_detected():
    out = bars({"nose": 1.0, "left_heel": float("nan"), "right_heel": None, "left_knee": 2.0}, "median", "px")
    assert [t for t in re.findall(r"<title>([^<]*)</title>", out)] == [
        "nose: 1 px", "left_heel: not detected (no value)", "right_heel: not detected (no value)", "left_knee: 2 px"]
    assert out.count("<rect x=") == 2 and ">not detected<title>" in out


def test_undetected_feet_are_not_drawn_as_the_best_joints(tmp_path):
    def no_feet(data):
        data[:, :, :, FEET] = np.nan

    session, _ = _session(tmp_path / "nofeet", mutate=no_feet)
    _build(session)
    chart = _svg_after(_html(session), "Reprojection error per joint")
    for k in FEET:
        assert f"<title>{JOINTS[k]}: not detected (no value)</title>" in chart
        assert f"<title>{JOINTS[k]}: 0 px" not in chart and f"<title>{JOINTS[k]}: nan" not in chart
    assert chart.count("<rect x=") == len(JOINTS) - len(FEET)


# 2: metrics.json is strict JSON


def _no_camera_3(data):
    data[:, 2] = np.nan


def _strict(text: str):
    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_metrics_json_has_null_where_a_value_is_nan(tmp_path):
    session, _ = _session(tmp_path / "nan_cam", mutate=_no_camera_3)
    metrics = _build(session)
    text = (session.root / "report" / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    on_disk = _strict(text)
    cam = on_disk["cameras"]["cam03"]
    assert cam["detections"] == 0 and cam["median_px"] is None and cam["p95_px"] is None
    assert np.isnan(metrics["cameras"]["cam03"]["median_px"])  # the metrics returned keep NaN (a number)
    assert on_disk["cameras"]["cam01"]["median_px"] == pytest.approx(metrics["cameras"]["cam01"]["median_px"])


def test_json_safe_turns_non_finite_numbers_to_null_at_any_depth():
    from mocap.report import json_safe

    x = {"a": [1.0, float("nan"), {"b": float("inf"), "c": np.float32("nan")}], "d": (np.int64(3), np.bool_(True)),
         "e": np.array([1.5, np.nan]), "f": -np.inf, "g": "NaN", "h": None, "i": np.float64(2.5)}
    out = json_safe(x)
    assert out == {"a": [1.0, None, {"b": None, "c": None}], "d": [3, True], "e": [1.5, None], "f": None, "g": "NaN",
                   "h": None, "i": 2.5}
    assert type(out["d"][0]) is int and out["d"][1] is True
    json.dumps(out, allow_nan=False)


# 5: "see below" only where the worst frames are on the page


def _links_resolve(html: str) -> list[str]:
    ids = set(re.findall(r'id="([^"]+)"', html))
    targets = re.findall(r'href="#([^"]+)"', html)
    assert all(t in ids for t in targets), (targets, ids)
    return targets


def _worst_cells(html: str) -> dict[str, str]:
    table = html.split("<td>worst frames</td></tr>")[1].split("</table>")[0]
    return {re.match(r"<td>([^<]*)</td>", row).group(1): re.findall(r"<td>(.*?)</td>", row)[-1]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table)}


def test_no_see_below_link_when_worst_frames_are_off(tmp_path):
    session, _ = _session(tmp_path / "wf0")
    _build(session, worst_frames=0)
    html = _html(session)
    assert "see below" not in html and _links_resolve(html) == []
    assert _worst_cells(html) == {c: "—" for c in ("cam01", "cam02", "cam03", "cam04")}
    assert "report.worst_frames = 0" in html


def test_a_camera_with_no_worst_frame_gets_no_link(tmp_path):
    session, _ = _session(tmp_path / "nan_cam", mutate=_no_camera_3)
    _build(session)
    html = _html(session)
    cells = _worst_cells(html)
    assert cells["cam03"] == "—"
    assert all(cells[c] == f'<a href="#worst-person1-{c}">see below</a>' for c in ("cam01", "cam02", "cam04"))
    assert len(_links_resolve(html)) == 3
    assert "cam03: no frame to show (no detection of this person compared in it)." in html


# 3: review videos linked only where written


def test_a_camera_without_video_is_named_and_the_others_are_rendered_and_linked(tmp_path, caplog):
    from test_view_synth import write_videos

    session, _ = _session(tmp_path / "missing_video", frames=20, size=(320, 240))
    write_videos(session, 20)
    (session.root / "videos" / "cam04.mp4").unlink()
    with caplog.at_level(logging.WARNING, logger="mocap.report"):
        metrics = _build(session, overlay_videos=True, overlay_height=0)
    told = [r.getMessage() for r in caplog.records if "has no video" in r.getMessage()]
    assert len(told) == 1 and told[0].startswith("report: camera cam04 has no video in "), told
    assert told[0].endswith("no review video cam04_reprojected.mp4 for it, and any worst frame of it is drawn on grey")
    written = ["cam01_reprojected.mp4", "cam02_reprojected.mp4", "cam03_reprojected.mp4"]
    assert [p.rsplit("/", 1)[-1] for p in metrics["overlay_videos"]] == written
    html = _html(session)
    links = [unquote(h) for h in re.findall(r'href="\.\./review/([^"]+)"', html)]
    assert links == written and all((session.root / "review" / v).is_file() for v in links)
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", html)
    assert any(c.startswith("cam01, frame ") and "(video frame " in c for c in captions)
    assert any(c.startswith("cam04, frame ") and "(no video: drawn on grey)" in c for c in captions)


def test_sixteen_cameras_get_sixteen_colours_and_more_series_repeat_them_dashed():
    """A 16-camera rig's per-camera plot used a 10-colour palette: cam01 and cam11, cam04 and cam14 looked the same.
    Twenty colours, then the same colours dashed (the bone-length plot's 26 series); time ticks at round seconds."""
    from mocap.report.svg import SERIES_COLOURS

    out = lines({f"cam{i:02d}": np.full(600, float(i)) for i in range(1, 17)}, "t", "time (s)", "px", x_scale=1 / 60)
    strokes = re.findall(r'<polyline fill="none" stroke="([^"]+)"', out)
    assert len(strokes) == 16 and len(set(strokes)) == 16 and "stroke-dasharray" not in out
    out = lines({f"bone{i}": np.full(600, float(i)) for i in range(26)}, "t", "time (s)", "m", x_scale=1 / 60)
    dashed = re.findall(r'<polyline fill="none" stroke="([^"]+)" stroke-width="1.3" stroke-dasharray', out)
    assert dashed == SERIES_COLOURS[:6] and out.count('stroke-dasharray="4 3"/>') == 6  # the legend's swatches too
    times = re.findall(r'text-anchor="middle">([0-9.]+)</text>', out)
    assert times == ["0", "2.5", "5", "7.5"], times  # 599 frames at 60 fps: not "0, 2.5, 4.99, 7.49, 9.98"


def test_a_rig_of_many_cameras_shows_the_worst_frames_of_its_eight_worst_cameras():
    """A 16-camera rig's page showed 3 worst frames of every camera and person (48 crops a person, the healthy
    cameras' too: 7.4 MB for 8 people): past 8 cameras, those of the 8 whose frames' P95 error is highest; a camera
    off in every frame (the one a report flags) before healthy cameras with one bad frame each (a review: ranked by
    their single worst frame, 8 such cameras left the flagged one without crops). The others say why."""
    from mocap.report.crops import CROP_CAMERAS, crop_frames
    from mocap.report.page import crops_html
    from mocap.synth import RigSpec, ring_rig
    from mocap.types import Keypoints2D, Points3D

    X = blazepose_keypoints(body_motion(40, 30.0))

    def worst_of(n: int) -> dict:
        rig = ring_rig(RigSpec(n_cameras=n), X)
        uv = np.moveaxis(rig.project(X), 0, 1) + np.random.default_rng(0).normal(0, 1.0, (40, n, 33, 2))
        for c in range(min(n, 9)):
            if c != 3:
                uv[5 + c, c] += 40.0  # one bad frame in each of these cameras
        uv[:, 3] += 12.0  # camera 4 off by 12 px in every frame
        kp = Keypoints2D(np.concatenate([uv, np.ones(uv.shape[:3] + (1,))], axis=-1)[:, :, None], rig.names,
                         "blazepose33", 30.0)
        pts = Points3D(X[:, None], np.zeros((40, 1, 33)), np.ones((40, 1, 33, n), bool), rig.names, "blazepose33",
                       30.0)
        return crop_frames(rig, kp, pts, 0, 3)[1]

    worst = worst_of(12)
    assert len(worst) == CROP_CAMERAS == 8 and 3 in worst, worst
    assert sorted(worst_of(4)) == [0, 1, 2, 3]  # a few cameras: every one
    names = [f"cam{i:02d}" for i in range(1, 13)]
    html = crops_html([], names, "p")  # no crops at all: worst frames off
    assert "report.worst_frames = 0" in html
    from mocap.report.crops import Crop

    html = crops_html([Crop("cam04", 5, 5, 12.0, float("nan"), "", b"")], names, "p")
    assert "cam01: no frame to show (worst frames shown for the 8 cameras with the highest P95 error)" in html
