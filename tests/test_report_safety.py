"""The report escapes every user string in its HTML, and its verdict names the failed checks."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap import report
from mocap.report.svg import bars, lines, skeleton
from mocap.report.verdict import describe, verdict
from mocap.session import Session
from mocap.stages import triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.synth.groundtruth import SyntheticTake, write_session
from mocap.types import Keypoints2D, Rig

EVIL = "<script>alert(1)</script>"
EVIL_ATTR = "\"'><img src=x onerror=alert(2)>"


def _session(root, names, noise_px=1.0):
    X = blazepose_keypoints(body_motion(40, 30.0))
    rig = ring_rig(RigSpec(n_cameras=3, size=(640, 480)), X.reshape(-1, 3))
    rig = Rig(tuple(replace(c, name=n) for c, n in zip(rig, names, strict=True)))
    uv = np.moveaxis(rig.project(X), 0, 1)
    data, masks = corrupt(uv, rig, "blazepose33", CorruptionSpec(noise_px, 0.0, 0.0, seed=0))
    take = SyntheticTake(rig, Keypoints2D(data, rig.names, "blazepose33", 30.0), X, masks)
    session = Session(write_session(take, root, json_2d=False))
    triangulate.write_outputs(triangulate.run(rig, take.keypoints), session.points3d("triangulated"))
    return session, rig


IMG = re.compile(r'<img alt="[^"<>]*" src="data:image/jpeg;base64,[A-Za-z0-9+/=]+">')


def _no_markup_from_user(html: str) -> None:
    for tag in re.findall(r"<img\b[^>]*>", html, re.IGNORECASE):  # the worst-frame crops: inline JPEG only
        assert IMG.fullmatch(tag), tag[:200]
    html = IMG.sub("", html)
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "onerror=" not in html.replace("onerror=alert", "")  # only ever as escaped text
    for tag in re.findall(r"<\s*([a-zA-Z0-9]+)", html):
        assert tag.lower() in {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table", "tr", "td",
                               "ul", "li", "a", "svg", "rect", "text", "line", "polyline", "circle", "h3", "h4",
                               "code", "figure", "figcaption", "div", "span"}, tag


@pytest.fixture(scope="module")
def evil_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("r") / "take<b>&'\""
    session, rig = _session(root, [EVIL, EVIL_ATTR, "cam & co"])
    with pytest.MonkeyPatch.context() as mp:  # the rig reader refuses names that are no file names ('/')
        mp.setattr(Session, "rig", lambda self: rig)
        metrics = report.build(session, timings={"<i>stage</i>": 1.0}, cfg=report.Config(overlay_videos=False))
    return session, metrics


def test_user_strings_are_escaped_in_the_html(evil_report):
    session, metrics = evil_report
    html = (session.root / "report" / "report.html").read_text()
    _no_markup_from_user(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the camera name is shown, as text
    assert "cam &amp; co" in html and "take&lt;b&gt;&amp;" in html and "&lt;i&gt;stage&lt;/i&gt;" in html
    assert list(metrics["cameras"])[0] == EVIL  # the data keeps the names as they are


def test_svg_text_and_attributes_are_escaped():
    series = {EVIL: np.arange(5.0), EVIL_ATTR: np.ones(5)}
    out = lines(series, EVIL, EVIL_ATTR, "<y>") + bars({EVIL: 1.0, EVIL_ATTR: 2.0}, EVIL, "<u>")
    out += skeleton(np.random.default_rng(0).normal(size=(3, 3)), [(0, 1)], EVIL_ATTR)
    _no_markup_from_user(out)
    assert "&lt;script&gt;" in out and "&quot;" in out


def test_verdict_names_the_failed_metric_value_and_threshold(evil_report, tmp_path):
    session, metrics = evil_report
    assert metrics["verdict"]["usable"] and metrics["verdict"]["failed"] == []
    html = (session.root / "report" / "report.html").read_text()
    assert "PASS" in html
    bad, _ = _session(tmp_path / "noisy", ["a", "b", "c"], noise_px=25.0)
    cfg = report.Config(overlay_videos=False, max_reprojection_px=6.0)
    m = report.build(bad, cfg=cfg)
    on_disk = json.loads((bad.root / "report" / "metrics.json").read_text())
    assert on_disk["verdict"] == m["verdict"] and not m["verdict"]["usable"]
    failed = {f["metric"]: f for f in m["verdict"]["failed"]}
    rp = failed["reprojection_px.median"]
    assert rp["value"] == pytest.approx(m["reprojection_px"]["median"]) and rp["value"] > 6
    assert rp["threshold"] == 6.0 and rp["comparison"] == ">" and rp["unit"] == "px"
    text = f"median reprojection {rp['value']:.3g} px &gt; 6 px"
    html = (bad.root / "report" / "report.html").read_text()
    mm = failed["reprojection_mm.median"]  # 25 px of noise is beyond the default threshold at the person too
    assert mm["value"] == pytest.approx(m["reprojection_mm"]["median"]) and mm["value"] > 30 and mm["unit"] == "mm"
    assert f"FAIL: median reprojection at the person {mm['value']:.3g} mm &gt; 30 mm; {text}" in html
    assert m["verdict"]["summary"].startswith(f"FAIL: median reprojection at the person {mm['value']:.3g} mm > 30 mm; "
                                              f"median reprojection {rp['value']:.3g} px > 6 px")


def test_verdict_wording():
    m = {"reprojection_px": {"median": 14.2}, "reprojection_mm": {"median": 41.5}, "bone_length_cv": {"mean": 0.071},
         "reconstructed": {"points": 0.85}}
    v = verdict(m, 30, 0.05, 0.9, max_reprojection_px=6)
    assert v["summary"] == ("FAIL: median reprojection at the person 41.5 mm > 30 mm; median reprojection 14.2 px > "
                            "6 px; mean bone-length variation 7.10% > 5.00%; points reconstructed 85.0% < 90.0%")
    m["reprojection_mm"]["median"] = float("nan")
    assert describe(verdict(m, 30, 0.05, 0.9)["failed"][0]) == \
        "median reprojection at the person could not be computed (needs at most 30 mm)"
    ok = {"reprojection_px": {"median": 1.0}, "reprojection_mm": {"median": 3.0}, "bone_length_cv": {"mean": 0.01},
          "reconstructed": {"points": 1.0}}
    assert verdict(ok, 30, 0.05, 0.9) == {"usable": True, "failed": [], "limited": [], "summary": "PASS"}


def test_the_page_shows_the_error_against_the_ground_truth(tmp_path):
    """The summary on the page shows what metrics.json holds for the take: the error against the ground truth
    (it was only in metrics.json: the page read the person's own metrics, without the take's rows)."""
    session, _ = _session(tmp_path / "s", ["cam01", "cam02", "cam03"])
    m = report.build(session, cfg=report.Config(overlay_videos=False))
    html = (session.root / "report" / "report.html").read_text()
    gt = m["groundtruth"]
    assert f"{gt['mpjpe_mm']:.1f} / {gt['p95_mm']:.1f} mm" in html and "error against ground truth" in html
