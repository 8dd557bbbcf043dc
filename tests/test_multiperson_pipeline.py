"""Several people through triangulate and refine (a session on disk, settings from its mocap.toml)."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.io.hdf5 import read_points3d
from mocap.session import Session
from mocap.settings import load_config
from mocap.synth import CorruptionSpec, RigSpec
from mocap.synth.figure import walking_figure
from mocap.synth.multiperson import CrowdSpec, in_place, make_crowd, write_crowd_session


@pytest.mark.slow
def test_three_people_triangulated_and_refined(tmp_path):
    from mocap.stages import refine, triangulate

    frames = 400
    motions = [in_place(walking_figure(frames, seed=i), "coco17") for i in range(3)]
    take = make_crowd(motions, "coco17", 60.0, CrowdSpec(people=3, period_s=6.0), RigSpec(), CorruptionSpec())
    root = write_crowd_session(take, tmp_path / "crowd")
    session = Session(root)
    settings = load_config(session)[0]
    assert settings.detect.persons == 3
    triangulate.main(session, settings)
    tri = read_points3d(session.points3d("triangulated"))
    assert tri.xyz.shape[1] == 3
    assert [p["name"] for p in tri.info["persons"]] == ["person1", "person2", "person3"]
    assert all(p["usable"] for p in tri.info["persons"])
    assert tri.info["association"]["persons_found"] == 3
    assert (session.root / "points3d" / "triangulated_person3.trc").is_file()
    # later readers get the same people without associating again
    kp = triangulate.session_keypoints(session, session.rig())
    assert kp.shape[2] == 3
    refine.main(session, settings)
    ref = read_points3d(session.points3d("refined"))
    for p in range(3):
        err = [np.nanmean(np.linalg.norm(ref.xyz[:, p] - take.truth[:, i], axis=-1)) for i in range(3)]
        assert min(err) < 0.02, err
    # the identities are three different people
    best = [int(np.nanargmin([np.nanmean(np.linalg.norm(ref.xyz[:, p] - take.truth[:, i], axis=-1))
                              for i in range(3)])) for p in range(3)]
    assert sorted(best) == [0, 1, 2]


@pytest.mark.slow
def test_one_person_session_unchanged(tmp_path):
    """One detection per view (persons = auto, the default, or 1): no association record, today's names and
    shapes."""
    from conftest import toy_take

    from mocap.stages import triangulate
    from mocap.synth import write_session
    from mocap.synth.groundtruth import SyntheticTake

    rig, kp, truth, _ = toy_take(120)
    root = write_session(SyntheticTake(rig, kp, truth), tmp_path / "one", json_2d=False)
    session = Session(root)
    triangulate.main(session, load_config(session)[0])
    tri = read_points3d(session.points3d("triangulated"))
    assert tri.xyz.shape[1] == 1 and "association" not in tri.info and "persons" not in tri.info
    assert (session.root / "points3d" / "triangulated.trc").is_file()


def test_a_recorded_association_is_not_applied_to_other_keypoints(tmp_path, caplog):
    """Refine and the report reuse triangulate's association only for the keypoints it was made on: after
    detection (or sync) ran again, the slots would mix people, so the keypoints are associated again."""
    import logging

    from mocap.io.hdf5 import read_keypoints2d, write_keypoints2d
    from mocap.stages import triangulate
    from mocap.types import Keypoints2D

    frames = 120
    motions = [in_place(walking_figure(frames, seed=i), "coco17") for i in range(2)]
    take = make_crowd(motions, "coco17", 60.0, CrowdSpec(people=2, period_s=6.0), RigSpec(), CorruptionSpec())
    session = Session(write_crowd_session(take, tmp_path / "crowd"))
    settings = load_config(session)[0]
    triangulate.main(session, settings)
    assert "keypoints_digest" in read_points3d(session.points3d("triangulated")).info["association"]
    with caplog.at_level(logging.WARNING, logger="mocap.stages.triangulate"):
        triangulate.session_keypoints(session, session.rig())
    assert "associating again" not in caplog.text  # the same keypoints: the record is reused
    kp = read_keypoints2d(session.pose2d_h5)
    data = kp.data.copy()
    data[:, 0] = data[:, 0, ::-1]  # detection ran again: camera 1's slots in another order
    write_keypoints2d(Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps), session.pose2d_h5)
    with caplog.at_level(logging.WARNING, logger="mocap.stages.triangulate"):
        again = triangulate.session_keypoints(session, session.rig())
    assert "made on other keypoints" in caplog.text and again.shape[2] == 2
