"""The detect stage's second pass (detect.recover) as a stage: when it runs, what its cache key holds, and when a
skipped pass leaves the detections alone (the pass itself: tests/test_recover.py)."""

from __future__ import annotations

import numpy as np

from mocap.detect import recover


def test_second_pass_runs_once_and_after_an_interrupted_run(tmp_path, monkeypatch):
    """The stage's second pass runs when the file has no recover summary (never ran, or Ctrl-C during it)
    and not again once the summary is written."""
    from types import SimpleNamespace

    from mocap.io.hdf5 import create_keypoints2d, update_keypoints2d_info
    from mocap.stages import detect as stage

    work = create_keypoints2d(tmp_path / "pose2d.h5", 4, ["cam01", "cam02"], 2, "blazepose33", 30.0)
    calls = []

    def fake(session, cfg, tri, path, videos, guide=None):
        calls.append(path)
        update_keypoints2d_info(path, recover={"recovered": {}})

    monkeypatch.setattr(recover, "recover_session", fake)
    cfg = stage.Config(persons=2)
    settings = SimpleNamespace(triangulate=None)
    stage._second_pass(None, cfg, settings, work, {})
    stage._second_pass(None, cfg, settings, work, {})
    assert calls == [work]
    stage._second_pass(None, stage.Config(persons=1), settings, tmp_path / "missing.h5", {})  # one person: nothing
    assert calls == [work]


def test_second_pass_settings_are_part_of_detections_cache_key():
    """The second pass associates people with the triangulate settings, through cameras refined with the rig_refine
    settings, and writes into the detections: with it, those settings are part of detection's cache key; with one
    person (no pass) they are not."""
    from mocap.settings import load_config
    from mocap.stages import detect as stage

    two = stage.resolved(load_config(sets=["detect.persons=2"])[0])
    wider = stage.resolved(load_config(sets=["detect.persons=2", "triangulate.match_max_m=0.3"])[0])
    assert two["recover_uses"] != wider["recover_uses"]
    # the camera refinement it places people through (mocap.detect.recover_rig)
    refined = stage.resolved(load_config(sets=["detect.persons=2", "rig_refine.min_heldout_gain=0.1"])[0])
    assert two["recover_uses"] != refined["recover_uses"]
    one = stage.resolved(load_config(sets=["detect.persons=1", "triangulate.match_max_m=0.3"])[0])
    assert "recover_uses" not in one
    # another detector has no second pass: a triangulate setting re-ran its whole detection (RTMO on a CPU)
    onnx = stage.resolved(load_config(sets=["detect.persons=2", "detect.detector=onnx"])[0])
    assert "recover_uses" not in onnx


def _fake_detect_stage(tmp_path, monkeypatch, outcome: dict):
    """The detect stage on a synthetic keypoint session with a ``main`` that only records its runs and writes
    ``outcome()`` into ``pose2d.h5``'s info: (the session, ``once(*sets)`` → the stage's status, the runs)."""
    from pipeline_synth import synthetic_session

    from mocap import pipeline
    from mocap.io.hdf5 import update_keypoints2d_info
    from mocap.session import Session
    from mocap.settings import load_config
    from mocap.stages import detect as stage

    session = Session(synthetic_session(tmp_path / "s", frames=20))
    runs = []

    def fake_main(s, settings, overwrite):
        runs.append(overwrite)
        update_keypoints2d_info(s.pose2d_h5, **outcome())

    monkeypatch.setattr(stage, "needed", lambda s, settings: None)
    monkeypatch.setattr(stage, "inputs", lambda s, settings: [])
    monkeypatch.setattr(stage, "main", fake_main)
    state: dict = {}

    def once(*sets) -> str:
        result = pipeline.RunResult(session.root)
        pipeline._one_stage(stage, session, load_config(sets=list(sets))[0], state, result, False)
        return result.status["detect"]

    return session, once, runs


def test_a_skipped_second_pass_keeps_detection_when_a_triangulate_setting_changes(tmp_path, monkeypatch):
    """persons = auto (the default) on a single-person take skips the second pass: the finished detections do not
    depend on the triangulate settings, so changing one does not re-run detection; when the pass ran, it does."""
    from mocap.settings import load_config
    from mocap.stages import detect as stage

    outcome = {"recover": {"skipped": "fewer than 2 people tracked"}}
    session, once, runs = _fake_detect_stage(tmp_path, monkeypatch, lambda: outcome)
    assert once() == "ran"
    assert stage.unused(session, load_config()[0]) == ("recover_uses",)
    assert once("triangulate.match_max_m=0.3") == "skipped"  # the pass was skipped: nothing it used changed
    assert once("detect.scan_every=10") == "ran"  # detection's own settings still count
    outcome = {"recover": {"recovered": {"cam0": 3}}}  # the pass did something: its settings count again
    assert once("triangulate.match_max_m=0.4") == "ran"
    assert stage.unused(session, load_config()[0]) == ()
    assert once("triangulate.match_max_m=0.5") == "ran"
    assert len(runs) == 4


def test_a_skipped_second_pass_reruns_detection_when_the_association_would_now_track_two(tmp_path, monkeypatch):
    """The skip (fewer than 2 people tracked) is the association's decision: a later run under triangulate settings
    whose association tracks 2 people re-runs detection (its second pass), one that still tracks 1 skips it."""
    from mocap.multi import track

    session, once, runs = _fake_detect_stage(
        tmp_path, monkeypatch, lambda: {"recover": {"skipped": "fewer than 2 people tracked"}})
    real = track.associate_take
    seen = []

    def associate(rig, kp, persons, cfg, *args, **kwargs):  # a tight match splits the one person in two
        slots, summary = real(rig, kp, persons, cfg, *args, **kwargs)
        seen.append(cfg.match_max_m)
        return (np.concatenate([slots, slots], axis=2) if cfg.match_max_m < 0.1 else slots), summary

    monkeypatch.setattr(track, "associate_take", associate)

    assert once() == "ran"
    assert once("triangulate.match_max_m=0.3") == "skipped"  # still one person: the skip stands
    assert once("triangulate.match_max_m=0.05") == "ran"  # now two people: the second pass would run
    assert len(runs) == 2
    assert seen == [0.3, 0.05]  # decided by the association under the new settings
    assert once("triangulate.match_max_m=0.3") == "skipped" and once("triangulate.match_max_m=0.3") == "skipped"
    assert seen == [0.3, 0.05, 0.3]  # once per settings: remembered while the detections stay
    assert once("triangulate.match_max_m=0.05") == "skipped" and len(seen) == 3  # those it last ran under: no asking


def test_the_second_pass_is_handed_the_runs_camera_refinement(tmp_path, monkeypatch):
    """The stage hands the pass the camera refinement it looks through (mocap.detect.recover_rig), from the run's
    settings; none with rig_refine.enabled = false."""
    from mocap.io.hdf5 import create_keypoints2d, update_keypoints2d_info
    from mocap.settings import load_config
    from mocap.stages import detect as stage

    guides = []

    def fake(session, cfg, tri, path, videos, guide=None):
        guides.append(guide)
        update_keypoints2d_info(path, recover={"recovered": {}})

    monkeypatch.setattr(recover, "recover_session", fake)
    for k, sets in enumerate(([], ["rig_refine.enabled=false"])):
        work = create_keypoints2d(tmp_path / f"pose2d{k}.h5", 4, ["cam01", "cam02"], 2, "blazepose33", 30.0)
        stage._second_pass(None, stage.Config(persons=2), load_config(sets=sets)[0], work, {})
    assert callable(guides[0]) and guides[1] is None
