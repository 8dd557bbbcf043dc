"""``mocap view`` rendered headless, checked on the pixels as a person would look at it: the
skeleton fills at least half of the frame's height, left and right and each person in their own
colours, the frame number drawn; ``--grid`` shows every camera's video with the skeleton over it;
nothing printed on success; the window's controls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pipeline_synth import synthetic_session
from test_view_synth import FPS, fitted_people, two_person_session, write_videos

from mocap.session import Session
from mocap.stages import triangulate
from mocap.view import load_scene, view
from mocap.view.render import BACKGROUND, CAMERA, TEXT, hud_origin, hud_text, palette, text
from mocap.view.scene import CENTRE, LEFT, RIGHT, side_of

ROOT = Path(__file__).resolve().parents[1]
W, H = 1280, 720


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    root = synthetic_session(tmp_path_factory.mktemp("v") / "take", frames=40)
    s = Session(root)
    rig = s.rig()
    triangulate.write_outputs(triangulate.run(rig, s.keypoints2d(rig)), s.points3d("triangulated"))
    return s


def colour_mask(img: np.ndarray, colour, tol: int = 12) -> np.ndarray:
    return (np.abs(img.astype(int) - np.array(colour)) <= tol).all(axis=-1)


def skeleton_rows(img: np.ndarray, p: int = 0) -> np.ndarray:
    """Rows holding person ``p``'s left or right bone colour (the legend's swatches at the top left excluded)."""
    m = colour_mask(img, palette(p)[LEFT]) | colour_mask(img, palette(p)[RIGHT])
    m[: int(0.25 * img.shape[0]), : int(0.2 * img.shape[1])] = False
    return np.flatnonzero(m.sum(axis=1) >= 2)


def test_side_names():
    assert [side_of(n) for n in ("LeftArm", "left_knee", "upperarm_l", "hand.R", "mixamorig:RightFoot", "Spine",
                                 "mouth_left", "nose")] == [LEFT, LEFT, LEFT, RIGHT, RIGHT, CENTRE, LEFT, CENTRE]


def test_headless_frames_fill_half_the_height_and_draw_the_frame_number(one, tmp_path):
    frames = view(one.root, out=tmp_path / "frames", frames=40, size=(W, H))
    pngs = sorted(frames.glob("*.png"))
    assert len(pngs) == 40
    for t in (0, 13, 39):
        img = cv2.imread(str(pngs[t]))
        assert img.shape == (H, W, 3)
        rows = skeleton_rows(img)
        assert rows.size and rows[-1] - rows[0] >= 0.5 * H, (t, rows[:1], rows[-1:])
        assert colour_mask(img, palette(0)[LEFT]).sum() > 200 and colour_mask(img, palette(0)[RIGHT]).sum() > 200
        assert _frame_number_drawn(img, t, 40) and not _frame_number_drawn(img, t + 1, 40)
        side = int(0.28 * H)  # the map from above at the bottom right: the cameras and the performer
        corner = img[H - side - 10:H - 10, W - side - 10:W - 10]
        assert colour_mask(corner, CAMERA, 10).sum() > 4 * 20 and colour_mask(corner, palette(0)[CENTRE], 10).sum() > 20


def _frame_number_drawn(img: np.ndarray, t: int, frames: int) -> bool:
    """The glyph pixels of 'frame t / …' drawn alone are bright in ``img`` (the HUD's own colour)."""
    ref = np.zeros_like(img)
    ref[:] = BACKGROUND
    org, scale, th = hud_origin(*img.shape[:2])
    text(ref, hud_text(t, frames, FPS), org, scale, TEXT, th)
    core = colour_mask(ref, TEXT, 0)
    return core.sum() > 100 and bool(colour_mask(img, TEXT, 30)[core].mean() > 0.98)


def test_png_of_one_frame_and_the_skeleton_follows_the_motion(one, tmp_path):
    a, b = view(one.root, out=tmp_path / "a.png", start=5), view(one.root, out=tmp_path / "b.png", start=35)
    ia, ib = cv2.imread(str(a)), cv2.imread(str(b))
    for img in (ia, ib):  # framed in both, though the performer has moved
        rows = skeleton_rows(img)
        assert rows[-1] - rows[0] >= 0.5 * H
        cols = np.flatnonzero((colour_mask(img, palette(0)[LEFT]) | colour_mask(img, palette(0)[RIGHT])).any(0))
        assert 0.15 * W < cols.mean() < 0.85 * W
    scene = load_scene(one.root)
    X = scene.figures[0].X
    centre = (np.nanmin(X, axis=1) + np.nanmax(X, axis=1)) / 2
    moved = np.linalg.norm(centre[35] - centre[5])  # the skeleton's bounding-box centre
    views = scene.views((W, H))
    assert moved > 0.2 and np.linalg.norm(views[35].target - views[5].target) > 0.5 * moved  # the camera followed


def test_an_output_of_another_kind_is_refused(one, tmp_path):
    """`--out x.gif` made a folder named x.gif of PNG frames and said "rendered: x.gif"."""
    with pytest.raises(ValueError, match=r"x.gif: cannot render a .gif file: give a video \(.mp4"):
        view(one.root, out=tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


def test_two_people_each_in_their_colours(tmp_path):
    session, _ = two_person_session(tmp_path / "two", frames=30)
    img = cv2.imread(str(view(session.root, out=tmp_path / "two.png", start=25, size=(W, H))))
    for p in (0, 1):
        assert colour_mask(img, palette(p)[LEFT]).sum() > 100 and colour_mask(img, palette(p)[RIGHT]).sum() > 100, p
    early = cv2.imread(str(view(session.root, out=tmp_path / "early.png", start=3, size=(W, H))))
    assert colour_mask(early, palette(1)[RIGHT])[200:].sum() == 0  # person2 not there yet (legend aside)
    fitted_people(session, 30)  # the per-person fitted motions win over the points
    scene = load_scene(session.root)
    assert [f.name for f in scene.figures] == ["person1", "person2"] and scene.figures[0].X.shape[1] == 22


def test_grid_shows_every_camera_with_the_skeleton_over_its_video(tmp_path):
    session, _ = two_person_session(tmp_path / "g", frames=20)
    write_videos(session, 20)
    img = cv2.imread(str(view(session.root, out=tmp_path / "grid.png", grid=True, start=17, size=(1280, 720))))
    from mocap.view import GridComposer

    comp = GridComposer(load_scene(session.root), (1280, 720))
    comp.close()
    tiles = comp.layout.tiles
    assert len(tiles) == 4 and comp.layout.view[2] >= 0.4 * 1280
    for x, y, w, h in tiles:
        tile = img[y:y + h, x:x + w]
        assert colour_mask(tile, (90, 90, 90), 10).sum() > 0.2 * w * h  # the video's grey (after compression)
        for p in (0, 1):
            assert colour_mask(tile, palette(p)[LEFT], 20).sum() > 20, (x, y, p)


def test_view_prints_nothing_on_success(one, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR="/nonexistent")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    r = subprocess.run([sys.executable, "-m", "mocap", "view", str(one.root), "--out", str(tmp_path / "v.mp4"),
                        "--frames", "5"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout.strip() == f"rendered: {tmp_path / 'v.mp4'}"
    assert (tmp_path / "v.mp4").stat().st_size > 1000


def test_bad_requests_say_what_is_wrong(one, tmp_path):
    with pytest.raises(ValueError, match=r"start frame must be in 0\.\.39, got 40"):
        view(one.root, out=tmp_path / "x.png", start=40)
    with pytest.raises(ValueError, match="--grid needs the cameras' videos"):
        view(one.root, out=tmp_path / "x.mp4", grid=True)
    empty = tmp_path / "empty"
    (empty / "calibration").mkdir(parents=True)
    (empty / "calibration" / "rig.toml").write_bytes((one.root / "calibration" / "rig.toml").read_bytes())
    with pytest.raises(FileNotFoundError, match="nothing to show yet"):
        view(empty, out=tmp_path / "x.png")


def test_window_controls_and_private_runtime_dir(monkeypatch):
    from mocap.view.window import Controls, private_runtime_dir

    c = Controls(10, 0.3, 0.2)
    assert c.playing and c.key(ord(" ")) and not c.playing
    c.key(ord(".")), c.key(ord(".")), c.key(ord(","))
    assert c.t == 1
    for _ in range(20):
        c.key(ord("."))
    assert c.t == 9 and c.key(ord("q")) is False
    c.mouse(cv2.EVENT_LBUTTONDOWN, 100, 100, 0)
    c.mouse(cv2.EVENT_MOUSEMOVE, 150, 100, 0)
    assert c.azimuth == pytest.approx(0.3 - 0.5)
    c.key(ord("r"))
    assert c.azimuth == 0.3 and c.zoom == 1.0
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/nonexistent")
    private_runtime_dir()
    d = os.environ["XDG_RUNTIME_DIR"]
    assert d != "/nonexistent" and os.stat(d).st_mode & 0o777 == 0o700
    os.rmdir(d)


def test_the_private_runtime_dir_is_removed_when_the_process_ends(tmp_path):
    """One mocap-runtime-* folder was left in /tmp by every view opened without a usable XDG_RUNTIME_DIR."""
    import subprocess
    import sys

    code = ("from mocap.view.window import private_runtime_dir as p; import os; p(); "
            "print(os.environ['XDG_RUNTIME_DIR'])")
    env = dict(os.environ, XDG_RUNTIME_DIR="/nonexistent")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "mocap-runtime-" in out and not os.path.exists(out.strip())


def test_window_plays_steps_scrubs_and_quits(one, monkeypatch):
    """The window's loop driven by scripted keys (OpenCV's GUI calls replaced: no display here)."""
    from mocap.view import window

    shown, keys, bar = [], [-1, -1, ord(" "), ord("."), ord("."), ord(","), "scrub", -1, ord("q")], {}
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/nonexistent")
    for name in ("namedWindow", "resizeWindow", "setMouseCallback", "destroyAllWindows"):
        monkeypatch.setattr(cv2, name, lambda *a, **k: None)
    monkeypatch.setattr(cv2, "createTrackbar", lambda name, win, v, top, cb: bar.update(top=top, cb=cb))
    monkeypatch.setattr(cv2, "setTrackbarPos", lambda name, win, v: bar.update(pos=v))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "imshow", lambda win, img: shown.append((bar.get("pos"), img.shape)))

    def key(delay):
        k = keys.pop(0)
        if k == "scrub":  # the user drags the trackbar to frame 30
            bar["cb"](30)
            return -1
        return k

    monkeypatch.setattr(cv2, "waitKeyEx", key)
    window.show(load_scene(one.root), (640, 360))
    assert bar["top"] == 39 and all(s == (360, 640, 3) for _, s in shown)
    # playing: 0, 1, 2; paused on 2; steps to 3, 4, back to 3; scrubbed to 30 (paused: no redraw after it)
    assert [t for t, _ in shown] == [0, 1, 2, 2, 3, 4, 3, 30], shown


def test_an_unreachable_display_renders_instead(one, monkeypatch, caplog):
    monkeypatch.setenv("DISPLAY", ":97")  # no X server there: Qt would abort the process
    out = view(one.root, frames=3)
    assert out == one.root / "review" / "view.mp4" and out.stat().st_size > 1000
    assert "display :97 cannot be reached: rendering instead" in caplog.text


def test_cli_size_is_checked(one, tmp_path, capsys):
    from mocap.cli import main

    with pytest.raises(SystemExit):
        main(["view", str(one.root), "--size", "12x"])
    assert "expected WIDTHxHEIGHT of at least 64x64, like 1280x720; got '12x'" in capsys.readouterr().err
    assert main(["view", str(one.root), "--size", "320x200", "--out", str(tmp_path / "s.png")]) == 0
    assert cv2.imread(str(tmp_path / "s.png")).shape == (200, 320, 3)


def test_video_frames_follow_the_detections_start_and_stride(tmp_path):
    """Keypoint frame t of a take detected from frame 10 with stride 2 is video frame 10 + 2 (t + offset): the
    grid view, the report's crops and its review videos show the frame the keypoints came from."""
    from mocap.io.hdf5 import create_keypoints2d
    from mocap.session import Session
    from mocap.view.grid import video_frame

    assert video_frame(3, 0.5, 10, 2) == 17 and video_frame(3, 0.0) == 3
    s = Session(tmp_path)
    assert s.video_sampling() == (0, 1)  # no detection: keypoints given frame by frame
    create_keypoints2d(s.pose2d_h5, 5, ["cam01"], 1, "blazepose33", 15.0, {"start": 10, "stride": 2})
    assert s.video_sampling() == (10, 2)
