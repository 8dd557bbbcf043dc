"""Several people: association across views, tracking through crossings, the synthetic crowd, bad inputs."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mocap.bench.multiperson import score, true_slots
from mocap.multi.slots import apply_slots, decode_slots, encode_slots
from mocap.multi.track import TrackConfig, associate_take
from mocap.synth import CorruptionSpec, RigSpec
from mocap.synth.figure import walking_figure
from mocap.synth.multiperson import CrowdSpec, in_place, make_crowd
from mocap.types import Keypoints2D


def crowd(people=3, frames=600, seed=0, **spec):
    motions = [in_place(walking_figure(frames, seed=seed + i), "coco17") for i in range(people)]
    return make_crowd(motions, "coco17", 60.0, CrowdSpec(people=people, period_s=8.0, seed=seed, **spec),
                      RigSpec(), CorruptionSpec(seed=seed))


@pytest.fixture(scope="module")
def take3():
    return crowd(3)


@pytest.fixture(scope="module")
def tracked3(take3):
    return associate_take(take3.rig, take3.keypoints, 3, progress=False)


def test_crowd_has_what_the_issue_asks(take3):
    st = take3.stats
    assert st["closest_approach_m"] < 0.3  # two people pass within 0.3 m
    assert st["missed_views"] > 0 and st["merged_detections"] > 0 and st["clutter_views"] > 0
    F, C, S = take3.owner.shape
    assert S == 4  # 3 people + a detection that is not a person
    # shuffled: person 0 is not always in the same slot
    slot0 = np.argmax(take3.owner[:, 0] == 0, axis=1)
    assert len(set(slot0.tolist())) > 1
    # entering and leaving: the last person is absent at the start, the one before at the end
    assert np.isnan(take3.truth[0, 2]).all() and np.isfinite(take3.truth[-1, 2]).all()
    assert np.isfinite(take3.truth[0, 1]).all() and np.isnan(take3.truth[-1, 1]).all()
    # the owner of a slot is the person whose projection it is (noise aside)
    f, c, s = np.argwhere(take3.owner == 1)[10]
    uv = take3.rig[c].project(take3.truth[f, 1])
    d = np.linalg.norm(take3.keypoints.xy[f, c, s] - uv, axis=-1)
    assert np.nanmedian(d) < 10


def test_association_and_tracking_through_crossings(take3, tracked3):
    slots, summary = tracked3
    s = score(take3, slots)
    assert s["identities"] == 3
    assert s["identity_switches"] == 0
    assert s["accuracy"] >= 0.98, s
    assert sorted(s["identity_to_person"]) == [0, 1, 2]
    assert summary["persons_found"] == 3 and len(summary["people"]) == 3
    # the person entering late is a new identity starting near its entry, not before
    late = s["identity_to_person"].index(2)
    assert abs(summary["people"][late]["first"] - 120) <= 10


def test_triangulated_people_match_the_truth(take3, tracked3):
    from mocap.stages import triangulate

    slots, _ = tracked3
    s = score(take3, slots)
    points = triangulate.run(take3.rig, apply_slots(take3.keypoints, slots), triangulate.Config())
    for p, i in enumerate(s["identity_to_person"]):
        err = np.linalg.norm(points.xyz[:, p] - take3.truth[:, i], axis=-1)
        assert np.nanmedian(err) < 0.03


def test_slots_round_trip_and_apply(take3):
    slots = true_slots(take3)
    assert np.array_equal(decode_slots(encode_slots(slots)), slots)
    kp = apply_slots(take3.keypoints, slots)
    f, c = 300, 1
    for i in range(3):
        if slots[f, c, i] >= 0:
            assert np.array_equal(kp.data[f, c, i], take3.keypoints.data[f, c, slots[f, c, i]], equal_nan=True)
        else:
            assert np.isnan(kp.data[f, c, i]).all()


def test_more_people_requested_than_seen(caplog):
    take = crowd(2, 300, enter_leave=False)
    with caplog.at_level(logging.WARNING, logger="mocap.multi.track"):
        slots, summary = associate_take(take.rig, take.keypoints, 4, progress=False)
    assert slots.shape[2] == 2 and summary["persons_found"] == 2 and summary["persons_requested"] == 4
    assert "4 people requested but 2 found" in caplog.text


def test_person_seen_by_one_camera_is_reported_not_reconstructed(caplog):
    take = crowd(2, 300, enter_leave=False, clutter_rate=0.0)
    data = take.keypoints.data.copy()
    data[:, 1:][take.owner[:, 1:] == 1] = np.nan  # person 2 only in cam01
    kp = Keypoints2D(data, take.keypoints.camera_names, "coco17", 60.0)
    with caplog.at_level(logging.WARNING, logger="mocap.multi.track"):
        slots, summary = associate_take(take.rig, kp, 2, progress=False)
    assert slots.shape[2] == 1
    assert summary["unexplained_frames_per_camera"]["cam01"] > 250
    assert "camera cam01" in caplog.text and "not reconstructed" in caplog.text


def test_nobody_in_two_views_is_a_clear_error():
    from mocap.stages import triangulate

    take = crowd(1, 100, clutter_rate=0.0)
    data = take.keypoints.data.copy()
    data[:, 1:] = np.nan
    kp = Keypoints2D(data, take.keypoints.camera_names, "coco17", 60.0)
    with pytest.raises(ValueError, match="no person is seen by two cameras or more"):
        triangulate.associate_keypoints(take.rig, kp, 2, triangulate.Config())


def test_persons_setting():
    from mocap.stages.detect import AUTO_PERSONS, Config, persons_arg

    assert Config(persons="auto").slots == AUTO_PERSONS and Config(persons=3).slots == 3
    assert persons_arg("auto") == "auto" and persons_arg("4") == 4
    with pytest.raises(ValueError, match=r'persons must be a number of people ≥ 1 or "auto", got 0 \(0 people'):
        Config(persons=0)
    with pytest.raises(ValueError, match="got 'several'"):
        Config(persons="several")


def test_persons_from_a_settings_file(tmp_path):
    from mocap.session import Session
    from mocap.settings import load_config

    (tmp_path / "mocap.toml").write_text("[detect]\npersons = \"auto\"\n")
    assert load_config(Session(tmp_path))[0].detect.persons == "auto"
    (tmp_path / "mocap.toml").write_text("[detect]\npersons = 0\n")
    with pytest.raises(ValueError, match="persons must be"):
        load_config(Session(tmp_path))


def test_detector_that_finds_one_person_is_refused(caplog):
    from mocap.stages.detect import check_persons

    class OnePerson:
        max_poses = 1
        description = "RTMPose top-down model pose.onnx"

    check_persons(OnePerson(), "onnx", 1)  # one person: fine
    for asked in (2, 3):
        with pytest.raises(ValueError, match=r"'onnx' detector \(RTMPose top-down model pose.onnx\) finds at most 1 "
                                             r"person per view, but persons = "):
            check_persons(OnePerson(), "onnx", asked)
    with caplog.at_level(logging.WARNING):  # auto, the default: the one person it can find, and a warning
        check_persons(OnePerson(), "onnx", "auto")
    assert "'onnx' detector (RTMPose top-down model pose.onnx) finds at most 1 person per view: persons = auto" \
        in caplog.text

    class Many:
        pass

    check_persons(Many(), "plugin", 5)  # a detector saying nothing is trusted with num_poses


def test_people_for_sync_are_never_two_mixed(take3):
    from mocap.detect.select import one_person, people_in_time, performer

    kp = people_in_time(take3.rig, take3.keypoints, 3)
    assert kp.shape[2] >= 2
    # each slot holds one true person in every view and frame (a detection merging two people counts for both)
    for p in range(kp.shape[2]):
        held = np.isfinite(kp.data[:, :, p, :, 0]).any(-1)
        owners, merged = [], []
        for f, c in np.argwhere(held):
            kept = np.isfinite(kp.data[f, c, p, :, 0])  # another body's keypoints in a merged detection: left out
            k = next(k for k in range(take3.owner.shape[2])
                     if np.array_equal(take3.keypoints.data[f, c, k][kept], kp.data[f, c, p][kept]))
            owners.append(take3.owner[f, c, k])
            merged.append(take3.merged_with[f, c, k])
        owners, merged = np.array(owners), np.array(merged)
        main = np.bincount(owners[owners >= 0]).argmax()
        assert np.mean((owners == main) | (merged == main)) > 0.99, p
    # persons = 1: the person followed in 3D that the frame-by-frame pick chose most often (mocap.detect.select)
    small = Keypoints2D(take3.keypoints.data[:60], take3.keypoints.camera_names, "coco17", 60.0)
    assert np.array_equal(people_in_time(take3.rig, small, 1).data, performer(take3.rig, small).data, equal_nan=True)
    assert np.array_equal(one_person(take3.rig, small).data, performer(take3.rig, small).data, equal_nan=True)


def test_mixed_identities_are_flagged_not_usable(take3):
    """Identities shuffled per frame and view (the detector's slots taken as people): not usable."""
    from mocap.stages import triangulate

    slots = true_slots(take3)
    rng = np.random.default_rng(1)
    perm = np.argsort(rng.random(slots.shape), axis=-1)
    mixed = np.take_along_axis(slots, perm, axis=-1)
    cfg = triangulate.Config()
    good = apply_slots(take3.keypoints, slots)
    bad = apply_slots(take3.keypoints, mixed)
    rec_good = triangulate.person_records(triangulate.run(take3.rig, good, cfg), good, take3.rig, {}, cfg)
    rec_bad = triangulate.person_records(triangulate.run(take3.rig, bad, cfg), bad, take3.rig, {}, cfg)
    assert all(r["usable"] for r in rec_good), rec_good
    assert not any(r["usable"] for r in rec_bad), rec_bad


def test_track_config_is_checked():
    with pytest.raises(ValueError, match="match_max_m must be positive"):
        TrackConfig(match_max_m=0)
    with pytest.raises(ValueError, match="birth_frames must be ≥ 1"):
        TrackConfig(birth_frames=0)


def test_bench_runs_and_scores():
    from mocap.bench.multiperson import MultiBenchConfig, run

    level = logging.getLogger("mocap").level
    r = run(MultiBenchConfig(frames=240, people=(2,), scale_people=(1, 2), scale_cameras=(4,), scale_frames=120,
                             refine=False))
    assert logging.getLogger("mocap").level == level  # quiet during the bench only (later tests read the warnings)
    row = r["accuracy"][0]
    assert row["identities"] == 2 and row["identity_switches"] == 0 and row["accuracy"] > 0.97
    assert all(p["mpjpe_mm"] < 30 and p["ratio"] < 1.2 for p in row["persons"])
    assert [(s["people"], s["cameras"]) for s in r["scaling"]] == [(1, 4), (2, 4)]
    assert all(s["cpu_ms_per_frame"] > 0 for s in r["scaling"])


@pytest.mark.shared_data
def test_synth_keypoints_people_command(shared_data, tmp_path):
    from mocap.cli import main
    from mocap.io.hdf5 import read_points3d
    from mocap.io.rig_files import read_rig

    out = tmp_path / "two"
    assert main(["synth", "keypoints", str(out), "--bvh", str(shared_data / "bvh" / "cmu_01_03.bvh"),
                 "--people", "2", "--frames", "120"]) == 0
    gt = read_points3d(out / "groundtruth" / "points3d.h5")
    assert gt.xyz.shape[:2] == (120, 2) and "slot_owner" in gt.info
    assert "persons = 2" in (out / "mocap.toml").read_text()
    zoomed = tmp_path / "zoomed"  # --zoom: the same rig, its focal length doubled
    assert main(["synth", "keypoints", str(zoomed), "--bvh", str(shared_data / "bvh" / "cmu_01_03.bvh"),
                 "--people", "2", "--frames", "120", "--zoom", "2"]) == 0
    a, b = (read_rig(d / "calibration" / "rig.toml") for d in (out, zoomed))
    assert all(cb.K[0, 0] == pytest.approx(2 * ca.K[0, 0]) for ca, cb in zip(a, b, strict=True))


def test_stages_before_sync_fall_back_to_the_performer_when_nobody_is_associated(take3, monkeypatch, caplog):
    """Sync and the camera refinement need people before the cameras are synchronised; when the
    association finds nobody (views out of sync), the performer most consistent across views is used."""
    from mocap.detect import select
    from mocap.multi import memo
    from mocap.types import Keypoints2D

    rig, kp = take3.rig, take3.keypoints
    kp = Keypoints2D(kp.data[:60], kp.camera_names, kp.keypoint_set, kp.fps)

    def nobody(*a, **k):
        raise ValueError("no person is seen by two cameras")

    monkeypatch.setattr(memo, "associate_once", nobody)
    for pick in (select.people_in_time, select.all_people):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="mocap.detect.select"):
            one = pick(rig, kp, 3)
        assert one.shape[2] == 1 and np.isfinite(one.xy).any()
        assert any("using the performer most consistent" in r.getMessage() for r in caplog.records), pick


def test_a_person_seen_by_two_cameras_only_is_reconstructed():
    """Occlusion can leave a person in two views for a whole take, sometimes in one: two views triangulate,
    so after a longer confirmation the person is tracked (three views were required before; a tentative
    person that lost its second view for one frame was dropped and started over)."""
    take = crowd(2, 300, enter_leave=False, clutter_rate=0.0)
    data = take.keypoints.data.copy()
    data[:, 2:][take.owner[:, 2:] == 1] = np.nan  # person 2 only in cam01 and cam02 ...
    lost = np.zeros(data.shape[:2], bool)
    lost[::7, 1] = True  # ... and every 7th frame in cam01 alone
    data[lost[..., None] & (take.owner == 1)] = np.nan
    kp = Keypoints2D(data, take.keypoints.camera_names, "coco17", 60.0)
    slots, summary = associate_take(take.rig, kp, 2, progress=False)
    assert slots.shape[2] == 2 and summary["persons_found"] == 2
    seen = (slots >= 0).sum(axis=1) >= 2  # (F, P): frames each identity is in two views
    assert seen.sum(axis=0).min() > 200, seen.sum(axis=0)


def test_frame_rays_index_like_the_whole_array(take3):
    """Rays computed a block of frames at a time give the whole array's values, across block boundaries."""
    from mocap.multi.rays import FrameRays, detection_rays

    rig, kp = take3.rig, take3.keypoints
    full, origins = detection_rays(rig, kp, 0.2)
    lazy = FrameRays(rig, kp, 0.2, 4)
    assert np.array_equal(lazy.origins, origins)
    assert np.array_equal(lazy.usable, np.isfinite(full[..., 0]).sum(axis=-1) >= 4)
    for f in (0, 255, 256, 257, 511, 599, 3):
        assert np.array_equal(lazy[f], full[f], equal_nan=True)
        assert np.array_equal(lazy[f, [0, 2], [1, 0]], full[f, [0, 2], [1, 0]], equal_nan=True)
        assert np.array_equal(lazy[f, 1, 0], full[f, 1, 0], equal_nan=True)
    assert len(lazy._cache) == 3  # every block of the take kept (the walks back read them again)
    lazy.MAX_BYTES = 1  # two blocks at most, the least recently used dropped first
    lazy._cache.clear()
    for f in (0, 300, 0, 599, 10):
        assert np.array_equal(lazy[f], full[f], equal_nan=True) and len(lazy._cache) <= 2
    assert list(lazy._cache) == [512, 0]
