import shutil

import cv2
import numpy as np
import pytest

from calibration.boards import Board, load_board, save_board_image
from calibration.calibrate import CalibrateConfig, calibrate
from calibration.compare import rig_errors
from calibration.detect import Detections, detect_board, detect_source
from calibration.intrinsics import calibrate_intrinsics
from calibration.synthetic import BoardTakeSpec, board_trajectory, camera_rays, make_rig, project_take, render_view
from mocap.cli import main as cli
from mocap.io.rig_files import read_rig


@pytest.fixture(scope="module")
def take():
    board = load_board("charuco_a1")
    spec = BoardTakeSpec(n_cameras=5, frames=200, size=(1280, 720), noise_px=0.3, seed=4)
    rig = make_rig(spec)
    poses = board_trajectory(board, spec)
    return board, spec, rig, poses, project_take(board, rig, poses, spec)


def test_board_presets_and_validation(tmp_path):
    b = load_board("charuco_a4")
    assert b.n_corners == 4 * 6 and np.allclose(b.object_points[5], [0.035, 0.035, 0])
    c = load_board("checkerboard_9x6_25mm")
    assert (c.corners_x, c.corners_y, c.n_corners) == (9, 6, 54)
    with pytest.raises(ValueError, match="looks the same turned by 180°"):
        Board("sym", "checkerboard", 9, 7, 0.02)
    with pytest.raises(ValueError, match="unknown ArUco dictionary 'DICT_9X9_1'"):
        Board("b", "charuco", 5, 7, 0.04, 0.03, "DICT_9X9_1")
    bad = tmp_path / "b.toml"
    bad.write_text('type = "charuco"\ndictionary = "DICT_4X4_50"\nsquares_x = 5\nsquares_y = 7\nsquare_size = 0.04\n'
                   'marker_size = 0.03\nthickness = 2\n')
    with pytest.raises(ValueError, match="unknown key 'thickness'"):
        load_board(str(bad))
    with pytest.raises(ValueError, match="unknown boards preset 'nope'"):
        load_board("nope")


@pytest.mark.slow
def test_printable_board_has_exact_physical_size(tmp_path):
    from PIL import Image

    board = load_board("charuco_a4")
    path = save_board_image(board, tmp_path / "board.png", dpi=300, paper="a4")
    img = Image.open(path)
    assert img.size == (2480, 3508) and abs(img.info["dpi"][0] - 300) < 0.01
    gray = np.asarray(img)
    found, _ = detect_board(board, gray)
    assert found is not None and np.isfinite(found).all()
    spacing = np.linalg.norm(np.diff(found[: board.corners_x], axis=0), axis=1)
    assert np.allclose(spacing, 0.035 / 0.0254 * 300, atol=0.3)  # 35 mm at 300 dpi = 413.4 px
    with pytest.raises(ValueError, match="does not fit on a4"):
        load_board("charuco_a1").render(300, "a4")


@pytest.mark.slow
def test_rendered_views_are_detected_to_subpixel_accuracy(take):
    board, spec, rig, poses, _ = take
    cam = rig[0]
    rng = np.random.default_rng(0)
    rays = camera_rays(cam)
    errors = []
    for T in poses[::5]:
        X = board.object_points @ T[:3, :3].T + T[:3, 3]
        if np.dot(cam.center - T[:3, 3], T[:3, 2]) >= 0 or np.isnan(cam.project(X)).any():
            continue
        pts, _ = detect_board(board, render_view(board, cam, T, rng, rays))
        if pts is not None:
            errors.append(np.linalg.norm(pts - cam.project(X), axis=1))
    errors = np.concatenate(errors)
    assert len(errors) > 100
    assert np.nanmedian(errors) < 0.15 and np.nanpercentile(errors, 90) < 0.3


def test_checkerboard_orientation_is_consistent_when_turned():
    board = load_board("checkerboard_9x6_25mm")
    img = cv2.copyMakeBorder(board.image(40), 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=255)
    img = cv2.GaussianBlur(img, (0, 0), 0.7)
    a, _ = detect_board(board, img)
    b, _ = detect_board(board, cv2.rotate(img, cv2.ROTATE_180))
    h, w = img.shape
    b_back = np.stack([w - 1 - b[:, 0], h - 1 - b[:, 1]], axis=1)  # undo the rotation
    assert np.allclose(a, b_back, atol=0.1)


@pytest.mark.slow
def test_bundle_adjustment_recovers_the_rig(take):
    board, spec, rig, poses, dets = take
    cal = calibrate(board, dets, CalibrateConfig())
    e = rig_errors(cal.rig, rig)
    assert cal.summary.usable, cal.summary.message
    assert abs(cal.summary.final_rms_px - np.sqrt(2) * spec.noise_px) < 0.05  # residuals at the noise level
    # the solution fits the detections at least as well as the true rig and board poses do
    truth_err = [np.linalg.norm(rig[n].project(board.object_points @ poses[f][:3, :3].T + poses[f][:3, 3]) - uv, axis=1)
                 for n, d in dets.items() for f, uv in zip(d.frames, d.corners, strict=True)]
    truth_rms = np.sqrt(np.nanmean(np.concatenate(truth_err) ** 2))
    assert cal.summary.final_rms_px <= truth_rms + 1e-4
    # what that leaves is the information in 200 frames of a small board at 0.3 px
    assert e["centre_mm"].max() < 5 and e["rotation_deg"].max() < 0.5 and e["focal_pct"].max() < 0.2
    for cam, truth in zip(cal.rig, rig, strict=True):
        assert np.allclose(cam.K[:2, 2], truth.K[:2, 2], atol=8.0)  # true principal points are ~13 px off-centre
    # world frame "camera": origin at the first camera, Z up along its image up
    c0 = cal.rig[0]
    assert np.allclose(c0.center, 0, atol=1e-9) and c0.R[1] @ [0, 0, 1] < -0.99


@pytest.mark.slow
def test_fixed_intrinsics_and_board_world_frame(take):
    board, spec, rig, poses, dets = take
    cal = calibrate(board, dets, CalibrateConfig(world=f"board:{dets['cam01'].frames[0]}"),
                    intrinsics={c.name: c for c in rig})
    for cam, truth in zip(cal.rig, rig, strict=True):
        assert np.array_equal(cam.K, truth.K) and np.array_equal(cam.dist, truth.dist)
    assert rig_errors(cal.rig, rig)["centre_mm"].max() < 5
    up = [c.R.T @ [0, 0, 1] for c in cal.rig]  # board frame as the floor: cameras sit above it (z > 0)
    assert all(np.isfinite(u).all() for u in up)


@pytest.mark.slow
def test_errors_name_the_camera(take):
    board, spec, rig, poses, dets = take
    empty = dict(dets)
    empty["cam03"] = Detections("cam03", (1280, 720), np.zeros(0, int), np.zeros((0, board.n_corners, 2)), 123)
    with pytest.raises(ValueError, match=r"camera 'cam03': board 'charuco_a1' never detected in 123 frames searched"):
        calibrate(board, empty)
    wrong = dict(empty)
    wrong["cam03"] = Detections("cam03", (1280, 720), np.zeros(0, int), np.zeros((0, board.n_corners, 2)), 10,
                                foreign_ids=(40, 41))
    with pytest.raises(ValueError, match="does not match the printed board"):
        calibrate(board, wrong)
    few = dict(dets)
    d = dets["cam02"]
    few["cam02"] = Detections("cam02", d.image_size, d.frames[:3], d.corners[:3], d.searched)
    with pytest.raises(ValueError, match="camera 'cam02': only 3 board views"):
        calibrate(board, few)
    lonely = dict(dets)
    d = dets["cam04"]
    shift = d.frames + 10_000  # never simultaneous with anybody
    lonely["cam04"] = Detections("cam04", d.image_size, shift, d.corners, d.searched)
    with pytest.raises(ValueError, match=r"cameras \['cam04'\] never share a board view"):
        calibrate(board, lonely)


def write_rendered_session(root, n_frames=120):
    board = load_board("charuco_a1")
    spec = BoardTakeSpec(n_cameras=4, frames=n_frames, radius=2.0, size=(1280, 720), seed=2)
    rig = make_rig(spec)
    poses = board_trajectory(board, spec)
    rng = np.random.default_rng(1)
    for cam in rig:
        folder = root / "calibration" / "board" / cam.name
        folder.mkdir(parents=True)
        rays = camera_rays(cam)
        for f, T in enumerate(poses):
            visible = np.dot(cam.center - T[:3, 3], T[:3, 2]) < 0
            img = render_view(board, cam, T, rng, rays) if visible else np.full((720, 1280), 110, np.uint8)
            cv2.imwrite(str(folder / f"{f:05d}.png"), img)
    return board, rig


@pytest.mark.slow
def test_calibrate_command_on_rendered_session(tmp_path, capsys):
    board, truth = write_rendered_session(tmp_path)
    assert cli(["calibrate", str(tmp_path), "--board", "charuco_a1"]) == 0
    out = capsys.readouterr().out
    assert "cam01: RMS" in out and "usable" in out
    rig = read_rig(tmp_path / "calibration" / "rig.toml")
    assert rig.names == truth.names
    assert rig_errors(rig, truth)["centre_mm"].max() < 10  # 120 frames, 4 cameras: a small take
    for name in ("report.json", "residuals.png", "layout.png"):
        assert (tmp_path / "calibration" / "report" / name).stat().st_size > 0
    assert read_rig(tmp_path / "calibration" / "calibration.toml").names == truth.names
    # a second run does nothing
    stamp = (tmp_path / "calibration" / "rig.toml").stat().st_mtime_ns
    assert cli(["calibrate", str(tmp_path), "--board", "charuco_a1"]) == 0
    assert (tmp_path / "calibration" / "rig.toml").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_calibrate_command_refuses_bad_takes(tmp_path, capsys):
    write_rendered_session(tmp_path, n_frames=12)
    (tmp_path / "calibration" / "board" / "cam02" / "00011.png").unlink()
    assert cli(["calibrate", str(tmp_path), "--board", "charuco_a1"]) == 2
    assert "different lengths" in capsys.readouterr().err
    assert not (tmp_path / "calibration" / "rig.toml").exists()
    assert cli(["calibrate", str(tmp_path)]) == 2
    assert "pass --board NAME" in capsys.readouterr().err
    (tmp_path / "calibration" / "board" / "cam01" / "00011.png").unlink()  # same lengths again
    (tmp_path / "calibration" / "board" / "cam03" / "00011.png").unlink()
    (tmp_path / "calibration" / "board" / "cam04" / "00011.png").unlink()
    assert cli(["calibrate", str(tmp_path), "--board", "charuco_a4"]) == 2  # the A1 board was filmed
    assert "does not match the printed board" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_checkerboard_photos_match_reference_focal(shared_data, tmp_path):
    board = load_board("checkerboard_9x6_25mm")
    for side in ("left", "right"):
        folder = tmp_path / side
        folder.mkdir()
        for p in (shared_data / "calib_stereo").glob(f"{side}*.jpg"):
            shutil.copy(p, folder)
        det = detect_source(board, folder, side)
        assert len(det.frames) == 13
        intr = calibrate_intrinsics(board, det)
        assert abs(intr.K[0, 0] / 534.80 - 1) < 0.005, (side, intr.K[0, 0])
        assert intr.rms_px < 0.5


@pytest.mark.slow
@pytest.mark.shared_data
def test_pose2sim_intrinsics_agree_with_qualisys(shared_data):
    board = load_board("checkerboard_4x7_60mm")
    qualisys = read_rig(shared_data / "pose2sim_demo" / "calibration" / "Calib.qca.txt")
    for folder in sorted((shared_data / "pose2sim_demo" / "calibration" / "intrinsics").iterdir()):
        det = detect_source(board, folder, folder.name)
        intr = calibrate_intrinsics(board, det, min_views=3)
        name = folder.name.removeprefix("int_").removesuffix("_img")
        assert abs(intr.K[0, 0] / qualisys[name].K[0, 0] - 1) < 0.02, (name, intr.K[0, 0], qualisys[name].K[0, 0])


def test_images_of_one_camera_must_share_a_size_and_way_up(tmp_path):
    board = load_board("checkerboard_9x6_25mm")
    for i, shape in enumerate([(48, 64), (48, 64), (64, 48)]):  # the third photo turned (a phone held upright)
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full(shape, 128, np.uint8))
    with pytest.raises(ValueError, match=r"frame 2 is 48×64, the first 64×48: every image of a camera must be"):
        detect_source(board, tmp_path, "cam1")


def test_given_intrinsics_are_fitted_to_the_board_takes_image_size():
    """Intrinsics calibrated on other images: the same within 10 % (codec padding) kept, the same shape at another
    resolution scaled, another shape refused (they were used unchecked: a principal point off the image)."""
    from calibration.calibrate import sized_intrinsics
    from mocap.types import Camera

    K = np.array([[1070.0, 0, 671.5], [0, 1068.0, 481.5], [0, 0, 1]])
    cam = Camera("c", K, np.zeros(5), np.eye(4), (1280, 960))
    assert np.array_equal(sized_intrinsics("c", cam, (1280, 1000)), K)
    half = sized_intrinsics("c", cam, (640, 480))
    assert np.allclose(half, [[535.0, 0, 335.5], [0, 534.0, 240.5], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"camera 'c': its intrinsics are for 1280×960 images, its board take is "
                                         r"960×1280: another camera's intrinsics, or the take turned\?"):
        sized_intrinsics("c", cam, (960, 1280))


@pytest.mark.parametrize("world", ["floor", "board:abc", "Board:1"])
def test_a_malformed_world_is_refused_before_any_detection(world):
    """It was read after detection and bundle adjustment (14 s on the stereo photos), board:abc as int()'s error."""
    with pytest.raises(ValueError, match=r"calibrate: world must be 'camera', 'camera:NAME' or 'board:FRAME'"):
        CalibrateConfig(world=world)
    for fine in ("camera", "camera:cam02", "board", "board:12"):
        assert CalibrateConfig(world=fine).world == fine


def test_free_intrinsics_are_checked_before_any_detection():
    """``--free fx,zz`` (or k4 on a pinhole rig, p1 on a fisheye one) was refused by the bundle adjustment,
    after the board's detection; k4 on a pinhole rig was silently ignored."""
    from calibration.stage import Config

    with pytest.raises(ValueError, match=r"calibrate: free has 'zz', not an intrinsic of the pinhole model; "
                                         r"choose among fx,fy,cx,cy,k1,k2,p1,p2,k3"):
        Config(free=("fx", "zz"))
    with pytest.raises(ValueError, match=r"'k4', not an intrinsic of the pinhole model"):
        Config(free=("k4",))
    with pytest.raises(ValueError, match=r"'p1', not an intrinsic of the fisheye model"):
        Config(model="fisheye", free=("p1",))
    assert Config(model="fisheye", free=("fx", "k4")).free == ("fx", "k4")


def test_world_camera_name_is_checked_before_any_detection(tmp_path, monkeypatch):
    """``--world camera:cam09`` on a rig of cam01–cam03 was refused only after the board's detection."""
    import calibration.detect
    import calibration.sources
    from calibration.stage import calibrate_session

    root = tmp_path / "S"
    (root / "calibration" / "board").mkdir(parents=True)
    names = ["cam01", "cam02", "cam03"]
    monkeypatch.setattr(calibration.sources, "find_sources", lambda folder: {n: folder / n for n in names})
    monkeypatch.setattr(calibration.sources, "check_same_length", lambda sources: None)

    def detect_all(*a, **k):
        raise AssertionError("the board was detected before the world was checked")

    monkeypatch.setattr(calibration.detect, "detect_all", detect_all)
    with pytest.raises(ValueError, match=r"calibrate: world 'camera:cam09' names no camera of the board take "
                                         r".*\(cameras: cam01, cam02, cam03\)"):
        calibrate_session(root, CalibrateConfig(world="camera:cam09"), board="charuco_a1")


def test_intrinsics_only_summary_is_of_this_run_not_the_last_full_calibration(take, tmp_path, monkeypatch):
    """``mocap calibrate --intrinsics-only`` printed the last full calibration's report.json (its RMS, views and
    focal lengths) under the new intrinsics.toml; it now writes and prints its own (report/intrinsics.json)."""
    import json

    import calibration.detect
    import calibration.sources
    from calibration.stage import Config, calibrate_session, summary
    from mocap.session import Session
    from mocap.settings import as_settings

    board, spec, rig, poses, dets = take
    dets = {name: d for name, d in list(dets.items())[:2]}
    root = tmp_path / "S"
    (root / "calibration" / "board").mkdir(parents=True)
    stale = {"usable": True, "message": "converged", "cameras": {n: {"rms_px": 9.9, "views_used": 99, "fx": 1.0,
                                                                      "intrinsics_rms_px": None} for n in dets}}
    (root / "calibration" / "report").mkdir()
    (root / "calibration" / "report" / "report.json").write_text(json.dumps(stale))
    monkeypatch.setattr(calibration.sources, "find_sources", lambda folder: {n: folder / n for n in dets})
    monkeypatch.setattr(calibration.detect, "detect_all", lambda b, sources, *a, **k: dets)
    out = calibrate_session(root, board=str(board.name), intrinsics_only=True)
    assert out.name == "intrinsics.toml"
    lines = summary(Session(root), as_settings(Config(intrinsics_only=True)))
    assert len(lines) == 3 and lines[-1].startswith("intrinsics only (no camera poses) — report: ")
    for name, line in zip(dets, lines, strict=False):
        fx = read_rig(out)[name].K[0, 0]
        assert line.startswith(f"  {name}: RMS 0.") and f"f = {fx:.1f} px" in line and "99 views" not in line


def test_intrinsics_only_needs_only_the_intrinsics_photos(tmp_path):
    """`calibrate --intrinsics-only` with the photos in calibration/intrinsics/<camera>/ (as the README lays out)
    and no board/ folder was refused: "missing calibration: … the board take in …/board/<camera>.mp4"."""
    from calibration.stage import Config, inputs, needed
    from mocap.session import Session
    from mocap.settings import as_settings

    root = tmp_path / "S"
    (root / "calibration" / "intrinsics" / "cam01").mkdir(parents=True)
    settings = as_settings(Config(intrinsics_only=True))
    assert needed(Session(root), settings) is None
    assert inputs(Session(root), settings) == [root / "calibration" / "intrinsics"]
    (root / "calibration" / "intrinsics" / "cam01").rmdir()
    (root / "calibration" / "intrinsics").rmdir()
    with pytest.raises(FileNotFoundError, match=r"--intrinsics-only needs each camera's board images in .*"
                                                r"calibration/intrinsics/<camera>/"):
        needed(Session(root), settings)
