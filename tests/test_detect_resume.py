"""Detection resumed camera by camera (mocap.detect.resume): a video cut short fails its camera, not the others;
once the file is mended the runner resumes (its settings unchanged, one input changed) and detects only the
cameras whose video is not the one they were detected from."""

import logging

import numpy as np
import pytest
from test_detect_pool import fakes, ramp_video, session_with  # noqa: F401 (fakes: a fixture)

from mocap.io.hdf5 import keypoints2d_info, keypoints2d_status, read_keypoints2d
from mocap.pipeline import run_stages
from mocap.settings import load_config


def _detected(caplog) -> list[str]:
    return sorted(r.getMessage().split(":")[0].split()[-1] for r in caplog.records
                  if r.name == "mocap.stages.detect" and r.getMessage().startswith("camera ")
                  and " frames, person in " in r.getMessage())


def test_a_mended_video_is_the_only_camera_detected_again(tmp_path, fakes, caplog):  # noqa: F811
    root = session_with(tmp_path / "s", [24, 24, 24])
    settings = load_config(root, sets=["detect.detector=still", "detect.workers=1"])[0]
    cam2 = root / "videos" / "cam2.avi"
    whole = cam2.read_bytes()
    cam2.write_bytes(whole[: len(whole) // 2])  # cut short: its header promises 24 frames
    with caplog.at_level(logging.INFO), pytest.raises(ValueError) as e:
        run_stages(root, settings, only=["detect"], progress=False)
    assert "cam2.avi: truncated or corrupt video" in str(e.value) and "detects only cam2 again" in str(e.value)
    partial = root / ".mocap" / "pose2d.partial.h5"
    assert keypoints2d_status(partial)[0].tolist() == [True, False, True]  # cam1 and cam3 kept
    assert _detected(caplog) == ["cam1", "cam3"]
    caplog.clear()
    cam2.write_bytes(whole)  # mended; and cam3 replaced by another take of the same length
    ramp_video(root / "videos" / "cam3.avi", 24, seed=7)
    with caplog.at_level(logging.INFO):
        r = run_stages(root, settings, only=["detect"], progress=False)
    assert r.status["detect"] == "ran" and "resuming" in caplog.text
    assert _detected(caplog) == ["cam2", "cam3"]  # not cam1: its video is the one it was detected from
    assert "camera(s) cam3: the video changed since it was detected: detected again" in caplog.text
    # the same as a detection from scratch of these videos
    fresh = session_with(tmp_path / "f", [24, 24, 24])
    ramp_video(fresh / "videos" / "cam3.avi", 24, seed=7)
    run_stages(fresh, load_config(fresh, sets=["detect.detector=still", "detect.workers=1"])[0], only=["detect"],
               progress=False)
    a, b = read_keypoints2d(root / "pose2d.h5").data, read_keypoints2d(fresh / "pose2d.h5").data
    assert np.array_equal(a, b, equal_nan=True)
    assert keypoints2d_info(root / "pose2d.h5")["videos"] == keypoints2d_info(fresh / "pose2d.h5")["videos"]


def test_other_settings_or_other_cameras_start_again(tmp_path, fakes, caplog):  # noqa: F811
    """Resuming is for the same settings (a changed setting redoes every camera, as before) and the same cameras
    and frames (a camera added: the partial file cannot hold it, detected from the start)."""
    root = session_with(tmp_path / "s", [24, 24])
    cam2 = root / "videos" / "cam2.avi"
    whole = cam2.read_bytes()
    cam2.write_bytes(whole[: len(whole) // 2])
    settings = load_config(root, sets=["detect.detector=still", "detect.workers=1"])[0]
    with pytest.raises(ValueError):
        run_stages(root, settings, only=["detect"], progress=False)
    cam2.write_bytes(whole)
    caplog.clear()
    other = load_config(root, sets=["detect.detector=still", "detect.workers=1", "detect.stride=2"])[0]
    with caplog.at_level(logging.INFO):
        run_stages(root, other, only=["detect"], progress=False)
    assert _detected(caplog) == ["cam1", "cam2"] and "stage detect: running" in caplog.text
    assert read_keypoints2d(root / "pose2d.h5").data.shape[0] == 12
    caplog.clear()
    cam2.write_bytes(whole[: len(whole) // 2])  # fails again, then a third camera comes
    with pytest.raises(ValueError):
        run_stages(root, other, only=["detect"], progress=False, force=True)
    cam2.write_bytes(whole)
    ramp_video(root / "videos" / "cam3.avi", 24, seed=3)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run_stages(root, other, only=["detect"], progress=False)
    assert _detected(caplog) == ["cam1", "cam2", "cam3"] and "detected again from the start" in caplog.text
    assert read_keypoints2d(root / "pose2d.h5").data.shape[:2] == (12, 3)


def test_a_shorter_camera_says_its_share_of_its_own_frames(tmp_path, fakes, caplog):  # noqa: F811
    """A camera with fewer frames than the others is padded (missing) to the take's length: its log line said
    "person in 50.0%" for a person seen in every one of its frames (the share of the padded length)."""
    from mocap.stages import detect

    root = session_with(tmp_path, [24, 12])
    with caplog.at_level(logging.INFO):
        detect.main(root, detect.Config(detector="still", workers=1, max_length_difference_s=1.0))
    assert "camera cam2: 12 frames, person in 100.0%" in caplog.text, caplog.text
    assert read_keypoints2d(root / "pose2d.h5").data.shape[0] == 24


def test_videos_left_in_the_session_folder_are_named(tmp_path, capsys):
    """A first session often has its videos beside calibration/ rather than in videos/: the error said only that
    videos/ held none."""
    from mocap.cli import main as cli
    from mocap.io.rig_files import write_rig
    from mocap.types import Camera, Rig

    (tmp_path / "calibration").mkdir()
    K = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
    write_rig(Rig(tuple(Camera(name=c, K=K, dist=np.zeros(5), cam_from_world=np.eye(4), size=(64, 48))
                        for c in ("cam01", "cam02"))), tmp_path / "calibration" / "rig.toml")
    for c in ("cam01", "cam02"):
        ramp_video(tmp_path / f"{c}.avi", 4, 0)
    assert cli(["run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"no camera videos in {tmp_path / 'videos'}" in err
    videos = tmp_path / "videos"
    assert f"2 video(s) lie in the session folder itself (cam01.avi, cam02.avi): move them into {videos}/" in err, err


def test_progress_lines_when_no_terminal_shows_the_bars(tmp_path, fakes, monkeypatch, caplog):  # noqa: F811
    """Under nohup, a batch job or CI (stderr not a terminal) tqdm draws no bars: nothing was said between "stage
    detect: running" and the end of each camera (on an hour-long take, for hours). The workers count their
    frames in a shared array; the stage logs frames done of all, cameras done, the rate and the time left."""
    from mocap.detect import progress
    from mocap.stages import detect

    monkeypatch.setattr(progress, "EVERY_S", 0.02)
    monkeypatch.setattr(progress, "wanted", lambda: True)  # as under nohup (also with pytest -s on a terminal)
    root = session_with(tmp_path, [300, 300, 300])
    with caplog.at_level(logging.INFO):
        detect.main(root, detect.Config(detector="still", workers=2))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("detection: ")]
    assert lines, caplog.text
    done = [int(x.split()[1].replace(",", "")) for x in lines]
    assert all(x.split(" of ")[1].startswith("900 frames") for x in lines) and done == sorted(done) and done[-1] > 0
    assert all(" of 3 cameras done, " in x and " frames/s" in x for x in lines)
    r = progress.Reporter([450, 0], 900, 3, lambda: 1, every_s=60)
    r.t0 -= 10.0
    assert r.line() == "detection: 450 of 900 frames (50%), 1 of 3 cameras done, 45.0 frames/s, about 10 s left"
    monkeypatch.undo()
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert not progress.wanted()  # on a terminal: the bars


def test_a_changed_rig_or_a_finished_file_is_not_resumed_camera_by_camera(tmp_path, fakes, caplog):  # noqa: F811
    """Only the videos are checked camera by camera: a rig changed since the interrupted run (the second pass looks
    through it) redoes the detection; and a finished pose2d.h5 whose video changed is redone in a partial file (its
    second pass was made with the old detections; the last good 2D stays until the new one is done)."""
    from mocap.io.rig_files import write_rig
    from mocap.stages import detect
    from mocap.types import Camera, Rig

    def rig(f: float):
        K = np.array([[f, 0, 32], [0, f, 24], [0, 0, 1]])
        return Rig(tuple(Camera(name=c, K=K, dist=np.zeros(5), cam_from_world=np.eye(4), size=(64, 48))
                         for c in ("cam1", "cam2", "cam3")))

    root = session_with(tmp_path / "s", [24, 24, 24])
    (root / "calibration").mkdir()
    write_rig(rig(60.0), root / "calibration" / "rig.toml")
    settings = load_config(root, sets=["detect.detector=still", "detect.workers=1"])[0]
    cam2 = root / "videos" / "cam2.avi"
    whole = cam2.read_bytes()
    cam2.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError):
        run_stages(root, settings, only=["detect"], progress=False)
    cam2.write_bytes(whole)
    write_rig(rig(61.0), root / "calibration" / "rig.toml")  # recalibrated meanwhile
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run_stages(root, settings, only=["detect"], progress=False)
    assert "stage detect: running" in caplog.text and _detected(caplog) == ["cam1", "cam2", "cam3"]
    # a finished file, one of its videos replaced, resumed (as the runner does after a failure before any frame)
    before = (root / "pose2d.h5").read_bytes()
    ramp_video(root / "videos" / "cam1.avi", 24, seed=9)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        detect.main(root, detect.Config(detector="still", workers=1))
    assert "changed since it was finished: detected again from the start" in caplog.text
    assert _detected(caplog) == ["cam1", "cam2", "cam3"] and (root / "pose2d.h5").read_bytes() != before
