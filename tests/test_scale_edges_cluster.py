"""mocap run --scheduler edges: a camera whose video ends before detect.start is written missing and marked
complete, as a local run does (the cluster made no chunk for it: never complete, detected again later)."""

import logging
import shutil

import cv2
import h5py
import numpy as np
import pytest

pytest.importorskip("distributed")

import scale_helpers as helpers  # noqa: E402

from mocap.distributed import ClusterOptions, plan_chunks, use_scheduler  # noqa: E402


def test_a_camera_without_output_frames_gets_one_empty_chunk():
    assert plan_chunks({"a": 10, "b": 0}, 4) == [("a", 0, 4), ("a", 4, 8), ("a", 8, 10), ("b", 0, 0)]
    assert plan_chunks({"a": 10, "b": 0}, 0) == [("a", 0, 10), ("b", 0, 0)]


def _status(path):
    with h5py.File(path) as f:
        return f["complete"][()].tolist(), f["keypoints"][()]


@pytest.mark.shared_data
def test_camera_ending_before_start_is_complete_on_the_cluster_as_locally(shared_data, tmp_path, caplog):
    from distributed import LocalCluster

    from mocap.stages import detect

    helpers.register()
    session, truth = helpers.video_session(tmp_path / "local", shared_data / "bvh" / "cmu_01_01.bvh", frames=24)
    short = sorted((session / "videos").iterdir())[2]
    w = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, helpers.SIZE)
    for f in range(4):  # 4 frames, detect.start = 6
        w.write(helpers.encode(2, f))
    w.release()
    other = tmp_path / "cluster"
    shutil.copytree(session, other)
    cfg = detect.Config(detector="replay", model_path=str(truth), start=6)
    local_complete, local = _status(detect.main(session, cfg))
    assert local_complete == [True, True, True] and np.isnan(local[:, 2]).all()
    caplog.clear()
    with (LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
          use_scheduler(cluster.scheduler_address, ClusterOptions())):
        cluster_complete, got = _status(detect.main(other, cfg))
    assert cluster_complete == [True, True, True]
    assert np.array_equal(got, local, equal_nan=True)
    assert f"camera {short.stem}: its video ends at frame 4, before detect.start = 6: left missing (NaN)" in caplog.text
    caplog.clear()
    caplog.set_level(logging.INFO, logger="mocap.stages.detect")
    detect.main(other, cfg)  # a later local run finds it done
    assert "complete, skipping detection" in caplog.text
