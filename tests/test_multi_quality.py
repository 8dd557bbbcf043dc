"""Several people: which associated people sync times the cameras on, and the per-person quality
rules of the final triangulation (synthetic arrays, fast)."""

from __future__ import annotations

import numpy as np

from mocap.multi.slots import STILL_SHARE, image_motion, moving
from mocap.types import Keypoints2D


def _slots(views_per_frame: list[list[int]], C: int = 4) -> np.ndarray:
    """(F, C, P) slots from, per person, the number of views it is seen by in each frame."""
    F, P = len(views_per_frame[0]), len(views_per_frame)
    slots = np.full((F, C, P), -1, np.int16)
    for p, counts in enumerate(views_per_frame):
        for f, n in enumerate(counts):
            slots[f, :n, p] = p
    return slots


def test_a_still_body_is_not_timed_on():
    """A mannequin seen by every camera in every frame tells no time offset: it is left out of what sync times the
    cameras on, the performer is not (however briefly seen); people who all move are all kept."""
    rng = np.random.default_rng(1)
    F, C, J, fps = 120, 4, 12, 30.0
    t = np.arange(F) / fps
    base = rng.uniform(-40, 40, (J, 2))  # a body ~80 px across
    walk = np.stack([300 + 120 * np.sin(1.3 * t), 240 + 10 * np.cos(2.1 * t)], -1)[:, None]  # (F, 1, 2)
    data = np.full((F, C, 2, J, 3), np.nan)
    data[:, :, 0, :, :2] = 500 + base + rng.normal(0, 1.0, (F, C, J, 2))  # still, detector noise only
    data[:, :, 1, :, :2] = (walk + base)[:, None] + rng.normal(0, 1.0, (F, C, J, 2))
    data[..., 2] = 0.9
    data[:90, :, 1] = np.nan  # the performer crosses the volume in the last quarter only: less evidence, and
    data[::7, 1:, 1] = np.nan  # less motion summed over the take than the mannequin's noise; lost in some views
    motion = image_motion(Keypoints2D(data, tuple(f"c{c}" for c in range(C)), "blazepose33", fps))
    assert motion[0] < STILL_SHARE * motion[1], motion
    assert moving(motion).tolist() == [False, True]
    assert moving(np.array([0.5, 1.0]) * motion[1]).tolist() == [True, True]  # both move: both kept
    jitter = image_motion(Keypoints2D(data, tuple(f"c{c}" for c in range(C)), "blazepose33", fps), 1 / fps)
    assert motion[0] < 2 * jitter[0] and motion[1] > 2 * jitter[1], (motion, jitter)  # noise only / a walk
    assert moving(motion, jitter).tolist() == [False, True]
    # under a quarter of the most moving one's motion: still, unless it moves further than its own jitter does
    # (a performer moving 0.04, 4 times its jitter, beside a bystander moving 0.2: kept; without the jitter, not)
    assert moving(np.array([0.06, 0.2])).tolist() == [True, True]
    assert moving(np.array([0.04, 0.2])).tolist() == [False, True]
    assert moving(np.array([0.04, 0.2]), np.array([0.01, 0.05])).tolist() == [True, True]
    assert moving(np.array([0.012, 0.2]), np.array([0.01, 0.05])).tolist() == [False, True]  # detector noise
    assert moving(np.zeros(2)).tolist() == [True, True] and moving(np.zeros(0)).tolist() == []
    assert image_motion(Keypoints2D(data[:5], tuple(f"c{c}" for c in range(C)), "blazepose33", fps)).tolist() == [0, 0]


def test_people_e2e_separates_offset_drift_from_noise_and_scores_views():
    from mocap.bench.people_e2e import match_people, view_errors

    rng = np.random.default_rng(0)
    F, T, K = 20, 2, 6
    truth = rng.normal(0, 0.3, (F, T, K, 3)) + np.array([0.0, 0.0, 1.0])
    truth[:, 1] += np.array([1.5, 0.0, 0.0])
    X = truth.copy()
    X[: F // 2, 0] += np.array([0.03, 0.0, 0.0])  # the detector's offset moves by 40 mm between the halves
    X[F // 2 :, 0] += np.array([0.03, 0.04, 0.0])
    r = match_people(X, truth)
    p0, p1 = r["people"]
    assert abs(p0["mpjpe_bias_corrected_mm"] - 40.0) < 1e-6 and abs(p0["mpjpe_bias_corrected_p95_mm"] - 40.0) < 1e-6
    assert p0["mpjpe_in_sample_mm"] < 1e-6  # a constant offset within the second half: no error of its own
    assert p1["mpjpe_bias_corrected_mm"] < 1e-6

    # 2D: person 0's keypoints in camera 1 are person 1's in a quarter of the frames (a merged detection)
    uv_true = rng.uniform(0, 600, (2, F, T, K, 2))  # (C, F, T, K, 2)
    xy = np.moveaxis(uv_true[:, :, 0], 0, 1) + rng.normal(0, 1.0, (F, 2, K, 2))  # (F, C, K, 2)
    xy[: F // 4, 1] = uv_true[1, : F // 4, 1]
    score = np.ones((F, 2, K))
    score[:, 0, 0] = 0.1  # below the score threshold: not judged
    v = view_errors(xy, score, uv_true, 0, ["a", "b"])
    assert v["a"]["median"] < 2.0 and v["a"]["nearer_other"] == 0.0
    assert v["b"]["nearer_other"] == 0.25 and v["b"]["p95"] > 50
    score[:, 1] = 0.0
    assert view_errors(xy, score, uv_true, 0, ["a", "b"])["b"] is None


def test_people_e2e_scores_the_views_against_the_pixels_the_take_was_rendered_at():
    """The truth in the images is its projection through the rendering rig (not the calibrated rig aligned to
    it, whose errors are not the detector's), in the keypoints' camera order."""
    import dataclasses

    from mocap.bench.people_e2e import truth_pixels
    from mocap.synth import RigSpec, ring_rig
    from mocap.types import Rig

    rng = np.random.default_rng(1)
    truth = rng.normal(0, 0.3, (5, 2, 4, 3)) + np.array([0.0, 0.0, 1.0])  # (F, T, K, 3)
    true_rig = ring_rig(RigSpec(n_cameras=3), truth.reshape(-1, 3))
    names = list(reversed(true_rig.names))
    uv = truth_pixels(true_rig, truth, names)
    assert uv.shape == (3, 5, 2, 4, 2)
    for c, name in enumerate(names):
        assert np.allclose(uv[c], true_rig[name].project(truth))
    # a calibrated rig a little off: its projection is not where the truth is in the images
    cams = list(true_rig.cameras)
    moved = np.eye(4)
    moved[:3, 3] = (0.01, 0.0, 0.0)
    cams[1] = dataclasses.replace(cams[1], cam_from_world=moved @ cams[1].cam_from_world)
    calibrated = Rig(tuple(cams))
    assert np.abs(calibrated[names[1]].project(truth) - uv[1]).max() > 1.0
    assert np.isnan(truth_pixels(true_rig, truth, ["elsewhere"])).all()  # not in the rendering rig


def test_people_e2e_splits_view_errors_by_detection_pass():
    """The second pass's detections are told apart through the association's slots: person p's detection in
    (frame, view) is a recovered one when its detector slot is one the pass wrote there."""
    from mocap.bench.people_e2e import recovered_mask, view_errors

    slots = np.full((4, 2, 2), -1)  # (F, C, P)
    slots[:, 0] = [0, 1]
    slots[:, 1] = [1, 0]  # view 1's slots hold the people the other way round
    slots[3, 1, 1] = -1  # person 1 not seen by view 1 in frame 3
    rows = [[0, 1, 1, 0, 3.0, 9.0], [2, 1, 0, 1, 4.0, 9.0], [3, 1, 0, -1, 0.1, 5.0], [1, 0, 5, 0, 1.0, 9.0]]
    m = recovered_mask(slots, rows)
    expect = np.zeros((4, 2, 2), bool)
    expect[0, 1, 0] = expect[2, 1, 1] = True  # frame 3's recovered slot 0 of view 1: nobody took it
    assert np.array_equal(m, expect)

    rng = np.random.default_rng(1)
    F, K = 10, 5
    uv_true = rng.uniform(0, 600, (1, F, 1, K, 2))
    xy = np.moveaxis(uv_true[:, :, 0], 0, 1) + 1.0  # 1.4 px off everywhere ...
    rec = np.zeros((F, 1), bool)
    rec[:3] = True
    xy[:3] += 6.0  # ... 9.9 px where the second pass added the detection
    v = view_errors(xy, np.ones((F, 1, K)), uv_true, 0, ["a"], rec)["a"]
    assert v["frames_recovered"] == 3
    assert abs(v["median_first_pass"] - np.sqrt(2)) < 1e-9 and abs(v["median_recovered"] - 7 * np.sqrt(2)) < 1e-9
    assert view_errors(xy, np.ones((F, 1, K)), uv_true, 0, ["a"], np.zeros((F, 1), bool))["a"]["median_recovered"] \
        is None


def test_people_e2e_command_passes_settings_to_the_run(monkeypatch, tmp_path, capsys):
    """``mocap bench people-e2e SESSION --set K=V ...``: the settings come after the bench's own."""
    import mocap.bench.people_e2e as pe
    from mocap.cli import main

    seen = []

    def fake_run(cfg):
        seen.append(cfg)
        return {"frames": 2, "cameras": 4, "true_people": 2, "reconstructed_people": 2, "seconds_total": 0.1,
                "both_frames": 1.0, "detections": {}, "people": []}

    monkeypatch.setattr(pe, "run", fake_run)
    assert main(["bench", "people-e2e", str(tmp_path), "--set", "detect.variant=heavy", "--set",
                 "detect.model_path=m.tflite"]) == 0
    assert seen[0].sets == (*pe.PeopleE2EConfig("").sets, "detect.variant=heavy", "detect.model_path=m.tflite")
    assert main(["bench", "people-e2e", str(tmp_path)]) == 0 and seen[1].sets == pe.PeopleE2EConfig("").sets
    assert "every person reconstructed in 100.0 %" in capsys.readouterr().out


def test_more_identities_than_requested_says_whether_they_were_there_at_once(caplog):
    from mocap.multi.track import warn_summary

    def summary(spans):
        return {"frames": 100, "unexplained_frames_per_camera": {}, "persons_requested": 3,
                "persons_found": len(spans), "tracks_dropped_short": 0,
                "people": [{"first": a, "last": b} for a, b in spans] + [{"first": None, "last": None}],
                "config": {"stitch_max_s": 2.0, "min_person_frames": 10}}

    with caplog.at_level("WARNING", logger="mocap.multi.track"):
        warn_summary(summary([(0, 99), (0, 99), (0, 99), (0, 99)]))  # four bodies all along, three asked for
    assert "3 people requested but 4 identities found (up to 4 at once: more people in the volume" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="mocap.multi.track"):
        warn_summary(summary([(0, 99), (0, 99), (0, 40), (60, 99)]))  # one left, another came: never four at once
    assert "4 identities found (never more than 3 at once, but bodies of another size: people entering" \
        in caplog.text


def test_cameras_with_detections_no_person_explains_are_said_in_one_line(caplog):
    """A 12-camera take with clutter said "camera camNN: N frames with a detection no person explains ..." twelve
    times; now one line names them with their frame counts (one camera: as before)."""
    from mocap.multi.track import warn_summary

    def summary(counts):
        return {"frames": 100, "unexplained_frames_per_camera": counts, "persons_requested": "auto",
                "persons_found": 1, "tracks_dropped_short": 0, "people": [{"first": 0, "last": 99}],
                "config": {"stitch_max_s": 2.0, "min_person_frames": 10}}

    with caplog.at_level("WARNING", logger="mocap.multi.track"):
        warn_summary(summary({"cam01": 40, "cam02": 3, "cam03": 12}))
    lines = [r.getMessage() for r in caplog.records if "no person explains" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("cameras cam01 (40 frames), cam03 (12 frames) with a detection"), lines
    assert "seen by one camera alone" in lines[0] and "cam02" not in lines[0]  # 3 of 100 frames: not said
    caplog.clear()
    with caplog.at_level("WARNING", logger="mocap.multi.track"):
        warn_summary(summary({"cam01": 40, "cam02": 0}))
    assert "camera cam01 (40 frames) with a detection no person explains (a person seen by this camera alone" \
        in caplog.text
