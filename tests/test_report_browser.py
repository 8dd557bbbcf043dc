"""report.html opened as a person would: in headless Chromium (Debian's ``chromium``, installed by
.ci/install). The page logs nothing to the console, every image decodes in the browser, every figure
is there, and no text of any chart (legends, axis labels, joint names) runs outside its chart.

Console messages are read from Chromium's own log (``--enable-logging=stderr --v=0`` prints each as
``INFO:CONSOLE``); the checks in the page run in a copy of it with a script appended (the report itself
has none), which writes its findings into the DOM that ``--dump-dom`` prints."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_view_synth import two_person_session, write_videos

from mocap import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package "
                                 "'chromium', installed by .ci/install)")]

CHECK = """<script>window.addEventListener('load', () => {
  const out = {images: [], svgs: 0, figures: document.querySelectorAll('figure').length, cut: []};
  for (const img of document.images) out.images.push([img.complete, img.naturalWidth, img.naturalHeight]);
  for (const svg of document.querySelectorAll('svg')) {
    out.svgs++;
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
        out.cut.push(t.textContent);
    }
  }
  document.body.setAttribute('data-check', JSON.stringify(out));
});</script>"""


def chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                               "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *args,
                               page.resolve().as_uri()], capture_output=True, text=True, timeout=120)


def console(r: subprocess.CompletedProcess) -> list[str]:
    return [line for line in r.stderr.splitlines() if ":CONSOLE" in line]


def in_browser(html: Path, tmp: Path) -> tuple[dict, list[str]]:
    """What the page's own console said, and the in-page checks."""
    checked = tmp / "checked.html"
    checked.write_text(html.read_text().replace("</body>", CHECK + "</body>"))
    r = chromium(checked, "--dump-dom")
    m = re.search(r"data-check=\"([^\"]*)\"", r.stdout)
    assert m, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&")), console(r)


def test_the_console_is_read(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><html><body><script>console.error('broken page'); undefined_name.x = 1"
                   "</script></body></html>")
    lines = console(chromium(bad, "--dump-dom"))
    assert any("broken page" in line for line in lines) and any("ReferenceError" in line for line in lines)


@pytest.mark.parametrize("videos", [True, False])
def test_report_in_headless_chromium(tmp_path, videos):
    session, _ = two_person_session(tmp_path / "take", frames=30)
    if videos:
        write_videos(session, 30)
    m = report.build(session, cfg=report.Config(overlay_videos=videos))
    html = session.root / "report" / "report.html"
    assert html.stat().st_size < 5e6
    out, said = in_browser(html, tmp_path)
    assert said == [], said  # no console message at all: no error, no warning
    assert len(m["persons"]) == 2
    assert len(out["images"]) == 3 * 4 * 2 == out["figures"]  # 3 worst frames × 4 cameras × 2 people
    assert all(done and w > 50 and h == 300 for done, w, h in out["images"]), out["images"]
    # per person: error over time, per joint, bone lengths, 4 front and 4 side snapshots; plus the timeline
    assert out["svgs"] == 2 * (3 + 8) + 1, out["svgs"]
    assert out["cut"] == [], out["cut"]
    shot = tmp_path / "page.png"
    r = chromium(html, f"--screenshot={shot}", "--window-size=1200,3000")
    assert shot.is_file() and shot.stat().st_size > 50_000, r.stderr[-2000:]
