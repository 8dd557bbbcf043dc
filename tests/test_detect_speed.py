"""What detection's speed work must not change: the same RGB bytes, deferred modules that behave as the real
ones, the timeline's accounting of where the CPU went."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mocap.bench.detect import beyond
from mocap.detect.blazepose import to_rgb
from mocap.detect.chunks import timeline_summary


@pytest.mark.parametrize("view", ["whole", "crop", "strided", "reversed"])
def test_rgb_is_the_bgr_image_with_its_channels_swapped(view):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    img = {"whole": img, "crop": img[10:90, 33:177], "strided": img[::2, ::3], "reversed": img[..., ::-1]}[view]
    rgb = to_rgb(img)
    assert rgb.flags.c_contiguous and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, img[..., ::-1])
    assert not np.shares_memory(rgb, img)  # the detector may keep it; the caller may draw on its image


def test_rgb_of_other_images_reverses_the_last_axis():
    img = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(to_rgb(img), img[..., ::-1])


def _run(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_a_deferred_module_and_its_packages_load_on_first_use():
    # neither xml nor xml.dom is imported at start-up: the whole chain is stood in for
    code = ("import sys; from mocap.detect.chunks import defer_import; defer_import('xml.dom.minidom');"
            "kinds = lambda: ''.join(type(sys.modules.get(n)).__name__[0] for n in "
            "('xml', 'xml.dom', 'xml.dom.minidom')); print(kinds());"
            "import xml.dom.minidom as m; print(kinds());"
            "print(m.parseString('<a/>').documentElement.tagName, kinds());"
            "import xml.dom.minidom; print(xml.dom.minidom.parseString('<b/>').documentElement.tagName)")
    assert _run(code) == ["DDD", "DDD", "a", "mmm", "b"]


def test_a_deferred_package_used_first_imports_itself_only():
    code = ("import sys; from mocap.detect.chunks import defer_import; defer_import('xml.dom.minidom');"
            "import xml; print(xml.__all__[0], type(sys.modules['xml']).__name__, 'xml.dom.minidom' in sys.modules);"
            "from xml.dom.minidom import parseString; print(parseString('<c/>').documentElement.tagName)")
    assert _run(code) == ["dom", "module", "False", "c"]


def _chunk(pid, start, end, cpu_start, cpu_end, decode=1.0, infer=4.0, proxy=0.5):
    return {"pid": pid, "start": start, "end": end, "process_cpu_start": cpu_start, "process_cpu_end": cpu_end,
            "decode_cpu_s": decode, "infer_cpu_s": infer, "proxy_cpu_s": proxy, "setup_s": 0.1}


def test_timeline_accounts_for_each_workers_start_up_and_total_cpu():
    # two workers, two chunks each; pool started at t = 100, the stage ended at 112
    chunks = [_chunk(1, 101.0, 105.0, 0.6, 6.2), _chunk(1, 105.0, 110.0, 6.3, 12.0),
              _chunk(2, 101.5, 106.0, 0.5, 6.0), _chunk(2, 106.0, 111.0, 6.1, 11.5)]
    t = timeline_summary(chunks, 100.0, 12.0, 2, 4)
    assert t["startup_s"] == pytest.approx(1.25) and t["tail_s"] == pytest.approx(1.0)
    assert t["after_last_chunk_s"] == pytest.approx(1.0)
    assert t["worker_startup_cpu_s"] == pytest.approx(1.1) and t["worker_cpu_s"] == pytest.approx(23.5)
    assert t["decode_cpu_s"] == 4.0 and t["infer_cpu_s"] == 16.0 and t["proxy_cpu_s"] == 2.0


def test_bench_splits_the_cpu_beyond_decoding_and_inference_into_parts_that_add_up():
    chunks = [_chunk(1, 101.0, 110.0, 0.6, 12.0), _chunk(2, 101.5, 111.0, 0.5, 11.5)]
    run = timeline_summary(chunks, 100.0, 12.0, 2, 2) | {"parent_cpu_s": 0.3, "cpu_s": 24.4}
    parts = beyond(run)
    assert sum(parts.values()) == pytest.approx(run["cpu_s"] - run["decode_cpu_s"] - run["infer_cpu_s"])
    assert parts["worker_startup_cpu_s"] == pytest.approx(1.1) and parts["proxy_cpu_s"] == 1.0
    assert parts["chunks_other_cpu_s"] == pytest.approx(23.5 - 1.1 - 10.0 - 1.0)
    assert parts["worker_exit_cpu_s"] == pytest.approx(24.4 - 0.3 - 23.5)


def test_bundle_name_is_remembered_until_a_model_file_changes(tmp_path, monkeypatch, landmark_model_copy):
    from mocap.detect import blazepose

    model = landmark_model_copy
    first = blazepose.build_bundle("full", model, cache=tmp_path / "cache")
    reads = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or real(self))
    assert blazepose.build_bundle("full", model, cache=tmp_path / "cache") == first
    assert reads == []  # neither tflite file read again, nor hashed
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the same bytes, touched
    assert blazepose.build_bundle("full", model, cache=tmp_path / "cache") == first
    assert sorted(reads) == ["landmarks.tflite", "pose_detection.tflite"]


class SlowToExit:
    """A detector without memory whose worker process takes ``EXIT_S`` to exit (an atexit handler)."""

    keypoint_set = "blazepose33"
    stateless = True

    def __init__(self, variant="full", model_path=None, num_poses=1):
        import atexit
        import time

        self.num_poses = num_poses
        atexit.register(time.sleep, EXIT_S)

    def __call__(self, image_bgr, timestamp_ms):
        return np.full((self.num_poses, 33, 3), float(image_bgr.mean()))

    def close(self):
        pass


EXIT_S = 3.0


@pytest.mark.slow  # a worker pool (a few seconds)
def test_the_stage_returns_without_waiting_for_its_workers_to_exit(tmp_path, monkeypatch):
    import multiprocessing
    import time

    from test_detect_pool import session_with

    from mocap.detect import DETECTORS
    from mocap.io.hdf5 import read_keypoints2d
    from mocap.stages import detect

    monkeypatch.setitem(DETECTORS, "slow_exit", f"{__name__}:SlowToExit")
    # spawned workers: one forked from the fork server (Linux's default) ends with os._exit, no exit handlers
    monkeypatch.setenv("MOCAP_DETECT_START", "spawn")
    session = session_with(tmp_path, [20, 20])
    t0 = time.perf_counter()
    detect.main(session, detect.Config(detector="slow_exit", workers=2))
    shape = read_keypoints2d(session / "pose2d.h5").shape
    assert shape == (20, 2, detect.Config().slots, 33)  # complete before the workers end
    alive = multiprocessing.active_children()  # a stage that waited would have joined them
    for child in alive:
        child.join()
    assert alive and time.perf_counter() - t0 >= EXIT_S  # the workers did take that long to exit, after
    assert detect.last_run["after_last_chunk_s"] < EXIT_S / 2


@pytest.mark.shared_data
def test_bench_detect_gives_its_temporary_session_the_videos_rig(shared_data, tmp_path):
    """Without a rig the detect stage's second pass warned "no rig" in the bench's session (no user's session
    lacks one): the videos' session's rig, those cameras, is written there; a camera it does not know: none."""
    from mocap.bench.detect import _session_rig
    from mocap.io.rig_files import read_rig

    _session_rig(shared_data / "pose2sim_demo", ["cam01", "cam03"], tmp_path)
    assert read_rig(tmp_path / "calibration" / "rig.toml").names == ("cam01", "cam03")
    _session_rig(shared_data / "pose2sim_demo", ["cam01", "phone"], tmp_path / "other")
    assert not (tmp_path / "other").exists()
    _session_rig(tmp_path / "nowhere", ["cam01"], tmp_path / "none")
    assert not (tmp_path / "none").exists()
