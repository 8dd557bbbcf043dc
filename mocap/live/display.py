"""What the operator sees: the 3D skeleton (front view from the first camera's side, and from above) and a
per-camera health table, drawn with OpenCV into one image; shown in a window, or served headless as an
MJPEG stream (``http://host:PORT/``) or written as a PNG that is replaced in place."""

from __future__ import annotations

import html
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from mocap.labels import drawable

log = logging.getLogger(__name__)
W, H = 960, 600
GREEN, AMBER, RED, GREY = (80, 200, 80), (0, 180, 255), (60, 60, 230), (150, 150, 150)
# several people: person N drawn in PEOPLE[(N - 1) % len(PEOPLE)] (BGR), its number (and cameras) beside its head
PEOPLE = ((80, 200, 80), (230, 160, 40), (60, 120, 240), (200, 90, 200), (40, 210, 220), (180, 180, 180))


def _panel(points: np.ndarray, limbs, axes: tuple[int, int], flip: tuple[bool, bool], box, centre, scale,
           img: np.ndarray, colour=GREEN, label: str = "") -> None:
    x0, y0, w, h = box
    uv = np.full((len(points), 2), np.nan)
    for k, (a, f) in enumerate(zip(axes, flip, strict=True)):
        uv[:, k] = (points[:, a] - centre[a]) * scale * (-1 if f else 1)
    uv += [x0 + w / 2, y0 + h / 2]
    for a, b in limbs:
        if np.isfinite(uv[[a, b]]).all():
            cv2.line(img, tuple(int(v) for v in uv[a]), tuple(int(v) for v in uv[b]), colour, 2, cv2.LINE_AA)
    seen = uv[np.isfinite(uv).all(1)]
    for p in seen:
        cv2.circle(img, (int(p[0]), int(p[1])), 3, (255, 255, 255), -1, cv2.LINE_AA)
    if label and len(seen):
        top = seen[np.argmin(seen[:, 1])]
        cv2.putText(img, drawable(label), (int(top[0]) + 8, int(top[1]) - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1,
                    cv2.LINE_AA)


def render(update, health: list[dict], limbs, summary: dict | None = None) -> np.ndarray:
    """One preview image (H × W BGR) of the latest 3D update (every person, when it holds several) and the
    cameras' health."""
    img = np.full((H, W, 3), 24, np.uint8)
    several = update is not None and update.people is not None
    people = (update.people if several else update.points[None]) if update is not None else None
    if people is not None and np.isfinite(people).any():
        flat = people.reshape(-1, 3)
        centre = np.nanmedian(flat, axis=0)
        extent = max(float(np.nanmax(np.abs(flat - centre))), 0.5)
        scale = 180 / extent
        for box in ((10, 10, 460, 400), (490, 10, 460, 400)):
            cv2.rectangle(img, box[:2], (box[0] + box[2], box[1] + box[3]), (60, 60, 60), 1)
        for k, pts in enumerate(people):
            colour = PEOPLE[(update.numbers[k] - 1) % len(PEOPLE)] if several else GREEN
            label = ""  # several: "person N (C cams)": a person two cameras see is one camera from being lost
            if several:
                label = f"person {update.numbers[k]}" + (f" ({update.seen_by[k]} cams)" if update.seen_by else "")
            _panel(pts, limbs, (0, 2), (False, True), (10, 10, 460, 400), centre, scale, img, colour, label)  # front
            _panel(pts, limbs, (0, 1), (False, True), (490, 10, 460, 400), centre, scale, img, colour)  # top
        cv2.putText(img, "front (x, z)", (16, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, GREY, 1)
        cv2.putText(img, "top (x, y)", (496, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, GREY, 1)
        if several:
            cv2.putText(img, f"{len(people)} of {summary.get('persons', '?') if summary else '?'} people",
                        (16, 402), cv2.FONT_HERSHEY_SIMPLEX, 0.5, GREY, 1)
    elif several:
        cv2.putText(img, "nobody seen by two cameras", (300, 210), cv2.FONT_HERSHEY_SIMPLEX, 0.8, AMBER, 2)
    else:
        cv2.putText(img, "no 3D skeleton yet", (340, 210), cv2.FONT_HERSHEY_SIMPLEX, 0.8, AMBER, 2)
    y = 440
    for row in health:
        ok = row["state"] == "running"
        persons = (summary or {}).get("persons", 1)
        if persons > 1:  # several people: how many this camera detects (median of its last detections)
            colour = GREEN if ok and row.get("recent_people", 0) >= persons else AMBER if ok else RED
            seen = f"people {row.get('recent_people', 0)}/{persons}"
        else:
            colour = GREEN if ok and row["recent_found"] > 0.8 else AMBER if ok else RED
            seen = f"person {100 * row['recent_found']:>3.0f}%"
        text = (f"{row['camera'][:12]:<12} read {row['read']:>6}  detected {row['detected']:>6}  dropped "
                f"{row['dropped']:>5}  {seen}  {row['state'][:40]}")
        cv2.putText(img, drawable(text), (14, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
        y += 20
    if summary:
        cv2.putText(img, f"3D {summary['update_fps']:.1f} fps, latency median {summary['latency_ms_median']:.0f} ms",
                    (14, H - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5, GREY, 1, cv2.LINE_AA)
    return img


class PngSink:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def show(self, img: np.ndarray) -> bool:
        from mocap.io.atomic import atomic_write

        ok, buf = cv2.imencode(".png", img)
        atomic_write(self.path, lambda tmp: Path(tmp).write_bytes(buf.tobytes()))
        return True

    def close(self) -> None:
        pass


class WindowSink:
    def __init__(self, title: str = "mocap live"):
        self.title = title

    def show(self, img: np.ndarray) -> bool:
        cv2.imshow(self.title, img)
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)  # q / Esc ends live

    def close(self) -> None:
        cv2.destroyWindow(self.title)


class MjpegSink:
    """``http://HOST:PORT/`` serves the preview as multipart JPEG (any browser shows it)."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.frame = b""
        self.cond = threading.Condition()
        self.closed = False
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet: the CLI owns the terminal
                pass

            def do_GET(self) -> None:
                if self.path not in ("/", "/stream.mjpg"):
                    self.send_error(404)
                    return
                if self.path == "/":
                    body = (f"<html><body style='background:#181818'><img src='/stream.mjpg' alt="
                            f"'{html.escape('mocap live')}'></body></html>").encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not sink.closed:
                        with sink.cond:
                            sink.cond.wait(timeout=1.0)
                            jpg = sink.frame
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + jpg + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="mjpeg")
        self.thread.start()
        self.address = f"http://{host}:{self.server.server_address[1]}/"

    def show(self, img: np.ndarray) -> bool:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
        with self.cond:
            self.frame = buf.tobytes()
            self.cond.notify_all()
        return True

    def close(self) -> None:
        """Stop serving; open streams end (their viewers see the stream stop)."""
        self.closed = True
        with self.cond:
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
