"""The interactive view (an OpenCV window): play/pause, step, scrub, orbit and zoom.

Keys: space play/pause · ← → or , . step one frame · Home/End first/last frame · drag with the left
button to orbit · wheel or + − to zoom · r reset the view · q or Esc quit. The trackbar scrubs.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
HELP = "space play/pause | <- -> step | drag orbit | wheel zoom | r reset | q quit"
LEFT_KEYS, RIGHT_KEYS = {81, 2424832, 65361, ord(",")}, {83, 2555904, 65363, ord(".")}
HOME_KEYS, END_KEYS = {80, 2359296, 65360}, {87, 2293760, 65367}


def private_runtime_dir() -> None:
    """Qt wants XDG_RUNTIME_DIR to be a directory of ours with mode 0700 and says so on stderr
    otherwise ("XDG_RUNTIME_DIR is invalid"): give it a private one when the environment's is not, removed
    when the process ends (one was left in /tmp per view opened)."""
    cur = os.environ.get("XDG_RUNTIME_DIR")
    try:
        st = os.stat(cur) if cur else None
        ok = st is not None and st.st_uid == os.getuid() and (st.st_mode & 0o777) == 0o700
    except OSError:
        ok = False
    if not ok:
        own = tempfile.mkdtemp(prefix="mocap-runtime-")  # mkdtemp makes it 0700
        os.environ["XDG_RUNTIME_DIR"] = own
        atexit.register(shutil.rmtree, own, True)
    os.environ.setdefault("QT_LOGGING_RULES", "*.debug=false;qt.qpa.*=false")


class Controls:
    """Window state: frame, playing, orbit angles, zoom."""

    def __init__(self, frames: int, azimuth: float, elevation: float):
        self.frames, self.t, self.playing = frames, 0, True
        self.az0, self.el0 = azimuth, elevation
        self.azimuth, self.elevation, self.zoom = azimuth, elevation, 1.0
        self.drag: tuple[int, int] | None = None
        self.changed = True

    def key(self, k: int) -> bool:
        """Apply a key; False to quit."""
        if k in (ord("q"), 27):
            return False
        if k == ord(" "):
            self.playing = not self.playing
        elif k in LEFT_KEYS or k in RIGHT_KEYS:
            self.playing = False
            self.t = int(np.clip(self.t + (1 if k in RIGHT_KEYS else -1), 0, self.frames - 1))
        elif k in HOME_KEYS or k in END_KEYS:
            self.t = 0 if k in HOME_KEYS else self.frames - 1
        elif k in (ord("+"), ord("=")):
            self.zoom *= 1.15
        elif k == ord("-"):
            self.zoom /= 1.15
        elif k == ord("r"):
            self.azimuth, self.elevation, self.zoom = self.az0, self.el0, 1.0
        self.changed = True
        return True

    def mouse(self, event: int, x: int, y: int, flags: int) -> None:
        import cv2

        if event == cv2.EVENT_LBUTTONDOWN:
            self.drag = (x, y)
        elif event == cv2.EVENT_LBUTTONUP:
            self.drag = None
        elif event == cv2.EVENT_MOUSEMOVE and self.drag is not None:
            dx, dy = x - self.drag[0], y - self.drag[1]
            self.azimuth -= dx * 0.01
            self.elevation = float(np.clip(self.elevation + dy * 0.01, np.radians(-10), np.radians(85)))
            self.drag = (x, y)
            self.changed = True
        elif event == cv2.EVENT_MOUSEWHEEL:
            self.zoom *= 1.15 if cv2.getMouseWheelDelta(flags) > 0 else 1 / 1.15
            self.changed = True


def show(scene, size: tuple[int, int], grid: bool = False) -> None:
    """Run the window until closed."""
    private_runtime_dir()
    import cv2

    from mocap.quiet import native_stderr_to_log
    from mocap.view import ELEVATION, GridComposer
    from mocap.view.render import View, render, text

    title = f"mocap view: {Path(scene.session.root).name}"
    comp = GridComposer(scene, size) if grid else None
    vsize = comp.layout.view[2:] if comp is not None else size
    ctl = Controls(scene.frames, scene.azimuth, ELEVATION)
    framing = scene.views(vsize)  # where to look and from how far, per frame (once: orbiting keeps them)

    def view_at(t: int) -> View:
        v = framing[t]
        return View(v.target, v.distance / ctl.zoom, ctl.azimuth, ctl.elevation, v.size)

    with native_stderr_to_log(log):  # what Qt prints while the window lives goes to the log, not the terminal
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
        cv2.resizeWindow(title, *size)
        cv2.createTrackbar("frame", title, 0, max(scene.frames - 1, 1), lambda v: _scrub(ctl, v))
        cv2.setMouseCallback(title, lambda e, x, y, f, _: ctl.mouse(e, x, y, f))
        delay = max(1, int(round(1000 / scene.fps)))
        try:
            while cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) >= 1:
                if ctl.changed or ctl.playing:
                    v = view_at(ctl.t)
                    img = comp.frame(ctl.t, v) if comp is not None else render(scene.figures, scene.stage, v, ctl.t,
                                                                               scene.fps)
                    text(img, HELP, (10, img.shape[0] - 40), 0.45 * img.shape[0] / 720)
                    cv2.setTrackbarPos("frame", title, ctl.t)
                    cv2.imshow(title, img)
                    ctl.changed = False
                k = cv2.waitKeyEx(delay)
                if k != -1 and not ctl.key(k):
                    break
                if ctl.playing:
                    ctl.t = (ctl.t + 1) % scene.frames
        finally:
            if comp is not None:
                comp.close()
            cv2.destroyAllWindows()


def _scrub(ctl: Controls, v: int) -> None:
    if v != ctl.t:
        ctl.t, ctl.playing, ctl.changed = int(v), False, True
