"""mocap run --scheduler: detection chunks on a Dask cluster give what a local run gives."""

import contextlib
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("distributed")

import scale_helpers as helpers  # noqa: E402

from mocap.cli import main as cli  # noqa: E402
from mocap.distributed import ClusterOptions, connect, plan_chunks, use_scheduler  # noqa: E402
from mocap.io.hdf5 import read_keypoints2d  # noqa: E402


def test_chunk_plan_covers_every_frame_once():
    plan = plan_chunks({"a": 10, "b": 7}, 4)
    assert plan == [("a", 0, 4), ("a", 4, 8), ("a", 8, 10), ("b", 0, 4), ("b", 4, 7)]
    assert plan_chunks({"a": 10, "b": 7}, 0) == [("a", 0, 10), ("b", 0, 7)]  # whole cameras
    with pytest.raises(ValueError, match="must be ≥ 0, got -1"):
        ClusterOptions(chunk_frames=-1)


def test_unreachable_scheduler_is_a_clear_error_after_the_timeout(tmp_path, capsys):
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"could not reach the Dask scheduler at 'tcp://127.0.0.1:9' within 1 s"):
        connect("tcp://127.0.0.1:9", timeout_s=1.0)
    assert cli(["run", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"]) == 2
    assert time.perf_counter() - t0 < 15  # two tries of 1 s each, not a hang
    err = capsys.readouterr().err
    assert "could not reach the Dask scheduler at 'tcp://127.0.0.1:9' within 1 s" in err and "--scheduler" in err
    assert "README: Scale-out on Dask" in err  # a section the README has
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "### Scale-out on Dask" in readme


def test_addresses_that_are_no_scheduler(capsys):
    import socket

    with pytest.raises(RuntimeError, match=r"at 'nonsense' within 1 s \(ValueError: missing port number"):
        connect("nonsense", 1.0)
    with pytest.raises(RuntimeError, match=r"at 'bogus://h:1' within 1 s \(ValueError: unknown address scheme 'bogus'"):
        connect("bogus://h:1", 1.0)
    server = socket.create_server(("127.0.0.1", 0))  # accepts, never answers: a timeout, not a hang
    try:
        t0 = time.perf_counter()
        with pytest.raises(RuntimeError, match=r"at 'tcp://127.0.0.1:\d+' within 1 s \(TimeoutError: no answer"):
            connect(f"tcp://127.0.0.1:{server.getsockname()[1]}", 1.0)
        assert time.perf_counter() - t0 < 10
    finally:
        server.close()


def test_an_http_server_given_as_the_scheduler_is_named_so(capsys):
    """The dashboard's port (HTTP, 8787) given for the scheduler's: it answers, in another protocol. The message
    said "could not reach ... within 10 s (MemoryError: Unable to allocate 3.07 EiB ...)" after 2 s."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def answer():
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                with conn:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        t0 = time.perf_counter()
        with pytest.raises(RuntimeError) as e:
            connect(address, 2.0)
        assert time.perf_counter() - t0 < 10
    finally:
        server.close()
    msg = str(e.value)
    assert msg.startswith(f"'{address}' answered but is not a Dask scheduler"), msg
    assert "8786" in msg and "8787" in msg and "EiB" not in msg and "could not reach" not in msg
    assert "another service on that port" in msg and "MemoryError" not in msg  # not a memory problem


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    yield c
    c.close()


@pytest.fixture(scope="module")
def local_run(shared_data, tmp_path_factory):
    """A session with videos detected and processed by a plain local `mocap run`."""
    helpers.register()
    root = tmp_path_factory.mktemp("local")
    session, truth = helpers.video_session(root / "take", shared_data / "bvh" / "cmu_01_01.bvh")
    assert cli(["run", str(session)] + helpers.replay_sets(truth)) == 0
    return session, truth


def same_pose2d(a: Path, b: Path) -> None:
    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert sorted(fa) == sorted(fb) and sorted(fa.attrs) == sorted(fb.attrs)
        for k in fa.attrs:
            assert np.array_equal(fa.attrs[k], fb.attrs[k]), k
        for k in fa:
            assert np.array_equal(fa[k][()], fb[k][()], equal_nan=True), k


def copy_without_results(session: Path, to: Path) -> Path:
    to.mkdir()
    for name in ("videos", "calibration", "session.toml"):
        src = session / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, to / name)
    return to


@pytest.mark.slow
@pytest.mark.shared_data
def test_scheduler_run_is_identical_to_the_local_run(local_run, cluster, tmp_path):
    session, truth = local_run
    other = copy_without_results(session, tmp_path / "take")
    assert cli(["run", str(other), "--scheduler", cluster.scheduler_address, "--chunk-frames", "16"]
               + helpers.replay_sets(truth)) == 0
    same_pose2d(session / "pose2d.h5", other / "pose2d.h5")
    assert np.isfinite(read_keypoints2d(other / "pose2d.h5").data).mean() > 0.5  # a real take, not all NaN
    for bvh in ("take_body22.bvh", "take_mixamo.bvh"):
        assert (session / "export" / bvh).read_bytes() == (other / "export" / bvh).read_bytes()
    # where it ran is not a setting: a plain local run afterwards finds everything up to date
    assert cli(["run", str(other)] + helpers.replay_sets(truth)) == 0
    state = (other / ".mocap" / "state.json").read_text()
    assert '"status": "started"' not in state


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_worker_dying_mid_chunk_is_retried_and_nothing_is_duplicated(local_run, cluster, tmp_path):
    session, truth = local_run
    die = Path(str(truth) + ".die")
    die.touch()
    other = copy_without_results(session, tmp_path / "take")
    assert cli(["run", str(other), "--scheduler", cluster.scheduler_address, "--chunk-frames", "16"]
               + helpers.replay_sets(truth)) == 0
    assert not die.exists()  # a worker did die at that frame
    same_pose2d(session / "pose2d.h5", other / "pose2d.h5")
    assert (session / "export" / "take_body22.bvh").read_bytes() == (other / "export" / "take_body22.bvh").read_bytes()


@pytest.mark.slow
@pytest.mark.shared_data
def test_more_workers_than_chunks(local_run, cluster, tmp_path):
    from mocap.stages import detect

    session, truth = local_run
    one = tmp_path / "one"
    (one / "videos").mkdir(parents=True)
    cam = sorted((session / "videos").iterdir())[0]
    shutil.copy(cam, one / "videos" / cam.name)
    cfg = detect.Config(detector="replay", model_path=str(truth), overlay=True)
    with use_scheduler(cluster.scheduler_address, ClusterOptions(chunk_frames=16)):  # overlay: one chunk, 2 workers
        out = detect.main(one, cfg)
    assert (one / "review" / f"{cam.stem}_pose2d.mp4").is_file()
    got = read_keypoints2d(out).data[:, 0]
    want = read_keypoints2d(session / "pose2d.h5").data[:, 0]
    assert np.array_equal(got, want, equal_nan=True)


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_video_cut_short_fails_its_camera_not_the_others_on_the_cluster(local_run, cluster, tmp_path):
    """As locally: a camera whose video cannot be read to its end no longer cancels the others' chunks; they are
    kept, and once the video is mended the next run (here a local one) detects only that camera."""
    from mocap.io.hdf5 import keypoints2d_status

    session, truth = local_run
    other = copy_without_results(session, tmp_path / "take")
    video = sorted((other / "videos").iterdir())[1]
    whole = video.read_bytes()
    video.write_bytes(whole[: len(whole) // 3])
    assert cli(["run", str(other), "--scheduler", cluster.scheduler_address, "--chunk-frames", "16"]
               + helpers.replay_sets(truth)) == 2
    done = keypoints2d_status(other / ".mocap" / "pose2d.partial.h5")[0]
    assert not done[1] and done[[0, *range(2, len(done))]].all(), done
    video.write_bytes(whole)
    assert cli(["run", str(other)] + helpers.replay_sets(truth)) == 0
    same_pose2d(session / "pose2d.h5", other / "pose2d.h5")
