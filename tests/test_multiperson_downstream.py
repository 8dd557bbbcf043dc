"""Several people downstream of the association (issue 15): refine, fit, retarget and export run per
person, their files are named by person, the pipeline's cache follows the number of people, a person
too rarely seen is skipped and recorded, and a person whose 2D mixes identities is never "usable"."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.io.capture import read_capture
from mocap.io.hdf5 import read_points3d, write_keypoints2d, write_points3d
from mocap.io.rig_files import write_rig
from mocap.persons import NamedFormatter, speaking_of
from mocap.pipeline import load_config, run_stages
from mocap.session import Person, Session
from mocap.stages import export, fit, refine, retarget, triangulate
from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
from mocap.types import Keypoints2D, Points3D

FPS = 30.0
STAGES = ["fit", "retarget", "export"]
SETS = ['export.formats=["bvh"]']


def people(frames: int = 60, P: int = 2, noise_px: float = 2.0, gap: float = 2.5):
    """P different motions side by side (``gap`` metres apart) seen by a ring of 4 cameras: (rig, 2D
    keypoints (F, C, P, J, 3) with person p in slot p of every view, truth (F, P, J, 3))."""
    X = np.stack([blazepose_keypoints(body_motion(frames, FPS, seed=p)) + [gap * p, 0.0, 0.0] for p in range(P)], 1)
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), X.reshape(-1, 3))
    data = [corrupt(np.moveaxis(rig.project(X[:, p]), 0, 1), rig, "blazepose33",
                    CorruptionSpec(noise_px, 0.05, 0.1, seed=10 + p))[0][:, :, 0] for p in range(P)]
    return rig, Keypoints2D(np.stack(data, 2), rig.names, "blazepose33", FPS), X


def points(truth: np.ndarray, cameras: tuple[str, ...], noise_m: float = 0.004, seed: int = 0,
           stage: str = "refined") -> Points3D:
    rng = np.random.default_rng(seed)
    F, P, J, _ = truth.shape
    return Points3D(truth + rng.normal(0, noise_m, truth.shape), np.ones((F, P, J)),
                    np.ones((F, P, J, len(cameras)), bool), cameras, "blazepose33", FPS, {"stage": stage})


def write_take(root, rig, kp, xyz: Points3D):
    root.mkdir(parents=True, exist_ok=True)
    (root / "session.toml").write_text(f'fps = {FPS}\nkeypoint_set = "blazepose33"\n')
    write_rig(rig, root / "calibration" / "rig.toml")
    write_keypoints2d(kp, root / "pose2d.h5")
    write_points3d(xyz, root / "points3d" / "refined.h5")
    return Session(root)


@pytest.fixture(scope="module")
def take3():
    """Three people; the third seen in 5 frames only (too few to fit)."""
    rig, kp, X = people(40, 3)
    X = X.copy()
    X[5:, 2] = np.nan
    return rig, kp, X


def settings(session: Session):
    return load_config(session, sets=SETS)[0]


def joints_mm(motion_path, truth: np.ndarray) -> float:
    """Median distance (mm) between the fitted skeleton's hips and the truth's mid-hip point."""
    motion, _ = read_capture(motion_path)
    _, pos = motion.fk()
    hips = (truth[:, 23] + truth[:, 24]) / 2  # blazepose33 left_hip, right_hip
    return float(np.nanmedian(np.linalg.norm(pos[:, 0] - hips, axis=-1)) * 1000)


def test_fit_retarget_export_run_per_person_and_skip_the_unseen(tmp_path, take3, caplog):
    rig, kp, X = take3
    xyz = points(X, rig.names)
    xyz.info["summaries"] = [{"name": "person1", "usable": True, "message": "converged"},  # as refine writes them
                             {"name": "person2", "usable": False, "message": "RMS 80px ... (mixed identities)"}]
    s = write_take(tmp_path / "take", rig, kp, xyz)
    cfg = settings(s)
    assert [p.name for p in s.persons()] == ["person1", "person2", "person3"] and s.person_count() == 3
    with caplog.at_level(logging.WARNING, logger="mocap"):
        result = run_stages(s, cfg, only=STAGES, progress=False)
    assert result.ran == STAGES
    assert any("person3" in r.getMessage() and "too few to fit" in r.getMessage() for r in caplog.records)
    assert any(r.getMessage().startswith("person2: fitted, but its 3D points are not usable (refine: RMS 80px")
               for r in caplog.records)
    motion = s.motion_dir
    assert sorted(p.name for p in motion.iterdir()) == [
        "body22.persons.json", "body22_person1.gaps.json", "body22_person1.npz", "body22_person2.gaps.json",
        "body22_person2.npz", "mixamo_person1.npz", "mixamo_person2.npz"]
    assert sorted(p.name for p in s.export_dir.iterdir()) == [
        f"take_person{k}_{m}.bvh" for k in (1, 2) for m in ("body22", "mixamo")]
    record = json.loads((motion / "body22.persons.json").read_text())
    assert [(e["name"], e["fitted"]) for e in record["persons"]] == [("person1", True), ("person2", True),
                                                                       ("person3", False)]
    assert "too few to fit" in record["persons"][2]["reason"] and record["persons"][2]["frames_present"] == 5
    assert [e.get("points_usable") for e in record["persons"]] == [True, False, None]
    for p in (0, 1):  # each person's motion is that person's, not the other's
        path = s.person_motion("body22", Person.of(p, 3))
        assert str(read_capture(path)[1]["person"]) == f"person{p + 1}"
        assert str(read_capture(s.person_motion("mixamo", Person.of(p, 3)))[1]["person"]) == f"person{p + 1}"
        assert joints_mm(path, X[:, p]) < 30 and joints_mm(path, X[:, 1 - p]) > 1000
    files = fit.person_files(s, cfg)
    assert [(f["name"], f["fitted"], f["motion"].name) for f in files] == [
        ("person1", True, "body22_person1.npz"), ("person2", True, "body22_person2.npz"),
        ("person3", False, "body22_person3.npz")]
    # the stage contract lists the per-person files, and the pipeline caches an unchanged re-run
    assert all(p.is_file() for st in (fit, retarget, export) for p in st.outputs(s, cfg))
    again = run_stages(s, cfg, only=STAGES, progress=False)
    assert all(again.status[n] == "skipped" for n in STAGES), again.status


def test_a_change_in_the_number_of_people_reruns_and_renames(tmp_path, take3):
    rig, kp, X = take3
    s = write_take(tmp_path / "take", rig, kp, points(X, rig.names))
    cfg = settings(s)
    run_stages(s, cfg, only=STAGES, progress=False)
    write_points3d(points(X[:, :2], rig.names, seed=1), s.points3d("refined"))  # P 3 → 2 (the same names)
    r = run_stages(s, cfg, only=STAGES, progress=False)
    assert r.ran == STAGES
    assert len(json.loads((s.motion_dir / "body22.persons.json").read_text())["persons"]) == 2
    write_points3d(points(X[:, 1:2], rig.names, seed=2), s.points3d("refined"))  # one person: today's names
    r = run_stages(s, cfg, only=STAGES, progress=False)
    assert r.ran == STAGES and s.persons() == [Person(0, "person1", "")]
    assert sorted(p.name for p in s.motion_dir.iterdir() if p.is_file()) == ["body22.gaps.json", "body22.npz",
                                                                             "mixamo.npz"]
    assert sorted(p.name for p in s.export_dir.iterdir() if p.is_file()) == ["take_body22.bvh", "take_mixamo.bvh"]
    # the earlier people's files set aside, not deleted (person3 of the first run was never fitted)
    assert sorted(p.name for p in (s.export_dir / "previous").iterdir()) == [
        f"take_person{k}_{m}.bvh" for k in (1, 2) for m in ("body22", "mixamo")]
    assert {"body22_person1.npz", "body22_person2.gaps.json", "mixamo_person2.npz"} <= {
        p.name for p in (s.motion_dir / "previous").iterdir()}
    assert "person" not in read_capture(s.motion("body22"))[1]
    assert joints_mm(s.motion("body22"), X[:, 1]) < 30
    assert run_stages(s, cfg, only=STAGES, progress=False).status == {n: "skipped" for n in STAGES}


@pytest.mark.slow
def test_a_person_whose_fit_fails_is_recorded_and_the_others_go_on(tmp_path, take2, monkeypatch):
    """One person's fit raises: the others are fitted, retargeted and exported, the failure is recorded, and
    an unchanged re-run skips every stage (the failed person's files are not expected)."""
    rig, kp, X = take2
    s = write_take(tmp_path / "fail", rig, kp, points(X, rig.names))
    cfg = settings(s)
    real = fit.run

    def failing(pts, c=None):
        c = c or fit.Config()
        if c.person == 1:
            raise ValueError("no usable hips")
        return real(pts, c)

    monkeypatch.setattr(fit, "run", failing)
    assert run_stages(s, cfg, only=STAGES, progress=False).status == {n: "ran" for n in STAGES}
    record = json.loads((s.motion_dir / "body22.persons.json").read_text())["persons"]
    assert [(e["name"], e["fitted"]) for e in record] == [("person1", True), ("person2", False)]
    assert "the fit failed: no usable hips" in record[1]["reason"]
    assert sorted(p.name for p in s.export_dir.iterdir()) == ["fail_person1_body22.bvh", "fail_person1_mixamo.bvh"]
    assert [p.name for p in fit.fitted_persons(s, cfg)] == ["person1"]
    assert run_stages(s, cfg, only=STAGES, progress=False).status == {n: "skipped" for n in STAGES}


def test_one_person_keeps_todays_names(tmp_path):
    rig, kp, X = people(20, 1)
    s = write_take(tmp_path / "solo", rig, kp, points(X, rig.names))
    cfg = settings(s)
    assert fit.outputs(s, cfg) == [s.motion("body22"), s.motion_dir / "body22.gaps.json"]
    assert retarget.outputs(s, cfg) == [s.motion("mixamo")]
    assert export.outputs(s, cfg) == [s.export_dir / "solo_body22.bvh", s.export_dir / "solo_mixamo.bvh"]
    assert s.persons() == [Person(0, "person1", "")]


def test_outputs_follow_the_requested_people_before_any_points(tmp_path):
    rig, kp, X = people(20, 1)
    s = write_take(tmp_path / "none", rig, kp, points(X, rig.names))
    s.points3d("refined").unlink()
    cfg = load_config(s, sets=SETS + ["detect.persons=2"])[0]
    assert s.person_count() is None and [p.name for p in s.persons()] == ["person1"]
    assert [p.name for p in fit.outputs(s, cfg)] == ["body22_person1.npz", "body22_person2.npz",
                                                     "body22_person1.gaps.json", "body22_person2.gaps.json",
                                                     "body22.persons.json"]


def _swap(kp: Keypoints2D, frames: np.ndarray, views: list[int]) -> Keypoints2D:
    """Persons 1 and 2 exchanged in ``frames`` of ``views`` (the association got them wrong there)."""
    d = kp.data.copy()
    for c in views:
        d[frames, c, 0], d[frames, c, 1] = kp.data[frames, c, 1], kp.data[frames, c, 0]
    return Keypoints2D(d, kp.camera_names, kp.keypoint_set, kp.fps)


@pytest.fixture(scope="module")
def take2():
    return people(40, 2)


def test_refine_runs_per_person_near_each_truth(take2):
    rig, kp, X = take2
    ref, summaries = refine.run(rig, kp, triangulate.run(rig, kp))
    assert [s["name"] for s in ref.info["summaries"]] == ["person1", "person2"] and ref.info["skipped"] == []
    for p, s in enumerate(summaries):
        assert s.usable and s.message == "converged", s
        assert np.nanmean(np.linalg.norm(ref.xyz[:, p] - X[:, p], axis=-1)) < 0.02


@pytest.mark.parametrize("how", ["half the frames in two views", "shuffled in every view"])
def test_mixed_identities_are_never_usable(take2, how):
    rig, kp, X = take2
    F = kp.shape[0]
    rng = np.random.default_rng(5)
    if how.startswith("half"):
        bad = _swap(kp, rng.permutation(F)[: F // 2], [0, 2])
    else:  # every view has its own random half of the frames exchanged: what unassociated slots look like
        bad = kp
        for c in range(len(rig)):
            bad = _swap(bad, rng.permutation(F)[: F // 2], [c])
    _, summaries = refine.run(rig, bad, triangulate.run(rig, bad))
    for s in summaries:
        assert not s.usable and "converged" not in s.message and "mixed identities" in s.message, s


def test_refine_stage_names_people_and_records_a_skipped_one(tmp_path, take2, caplog):
    rig, kp, X = take2
    empty = np.full(kp.data.shape[:2] + (1,) + kp.data.shape[3:], np.nan)
    kp3 = Keypoints2D(np.concatenate([kp.data, empty], axis=2), kp.camera_names, kp.keypoint_set, kp.fps)
    s = write_take(tmp_path / "take", rig, kp3, points(np.concatenate([X, np.full_like(X[:, :1], np.nan)], 1),
                                                        rig.names))
    tri = triangulate.run(rig, kp3, triangulate.Config(single_performer=False))
    triangulate.write_outputs(tri, s.points3d("triangulated"))
    with caplog.at_level(logging.WARNING, logger="mocap"):
        refine.main(s, overwrite=True)
    info = read_points3d(s.points3d("refined")).info
    assert [x["name"] for x in info["summaries"]] == ["person1", "person2"]
    assert info["skipped"] == [{"person": "person3", "reason": "no triangulated point"}]
    assert any("person3" in r.getMessage() for r in caplog.records)
    lines = refine.summary(s, None)
    assert lines[0].startswith("refine person1: ")
    assert lines[-1] == "refine person3: not refined (no triangulated point)"


def test_persons_read_from_the_header_without_points(tmp_path, take2):
    rig, kp, X = take2
    s = write_take(tmp_path / "take", rig, kp, points(X, rig.names))
    assert s.person_count("refined") == 2 and s.person_count("triangulated") is None
    p2 = s.persons()[1]
    assert p2 == Person(1, "person2", "_person2")
    assert s.person_motion("body22", p2).name == "body22_person2.npz"
    assert s.person_export("mixamo", p2, ".fbx").name == "take_person2_mixamo.fbx"


def test_blender_addon_imports_every_person_as_its_own_armature(tmp_path):
    bpy = pytest.importorskip("bpy")
    import blender_addon
    from blender_addon.builders import joint_world_positions
    from mocap.io.capture import write_capture
    from mocap.types import Motion

    motions = []
    for p in range(2):
        m = body_motion(30, FPS, seed=p)
        m = Motion(m.skeleton, m.rotations, m.root_positions + [2.5 * p, 0.0, 0.0], m.fps)
        write_capture(tmp_path / f"body22_person{p + 1}.npz", m, person=f"person{p + 1}")
        motions.append(m)
    write_capture(tmp_path / "mixamo_person1.npz", motions[0], person="person1")  # another motion: not imported
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_addon.register()
    try:
        assert bpy.ops.mocap.import_capture(filepath=str(tmp_path / "body22_person2.npz"), cameras=False) \
            == {"FINISHED"}
        arms = {o.name: o for o in bpy.context.scene.objects if o.type == "ARMATURE"}
        assert sorted(arms) == ["person1", "person2"] and bpy.context.scene.mocap_source == arms["person2"]
        assert tuple(arms["person1"].color) != tuple(arms["person2"].color)
        for p, m in enumerate(motions):
            pos = joint_world_positions(arms[f"person{p + 1}"], [1, 30])
            _, truth = m.fk()
            assert np.abs(pos[:, 0] - truth[[0, 29], 0]).max() < 1e-3
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.mocap.import_capture(filepath=str(tmp_path / "body22_person1.npz"), cameras=False, persons=False)
        assert [o.name for o in bpy.context.scene.objects if o.type == "ARMATURE"] == ["person1"]
    finally:
        blender_addon.unregister()


def test_the_dataset_builder_refuses_a_take_of_several_people(tmp_path, take2, monkeypatch):
    import mocap.pipeline
    from mocap.dataset.build import take_arrays

    rig, kp, X = take2
    s = write_take(tmp_path / "two", rig, kp, points(X, rig.names))
    monkeypatch.setattr(mocap.pipeline, "run", lambda *a, **k: None)  # the take's stages are done
    with pytest.raises(ValueError, match=r"2 people in the take; a dataset take holds one performer"):
        take_arrays(s.root)


class _Lines(logging.Handler):
    """The lines a run's handler writes (the terminal's and the log file's format: :class:`NamedFormatter`)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.setFormatter(NamedFormatter("%(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def test_the_solvers_lines_name_the_person_they_are_about(tmp_path, take2, caplog):
    """Refine's and the fit's own lines (their solvers do not know whose points they are) start with the person's
    name in a take of several people; a line that already names it does not name it twice; outside a person's
    work nothing is added; the record itself is not changed (caplog, other handlers)."""
    rig, kp, X = take2
    s = write_take(tmp_path / "take", rig, kp, points(X, rig.names))
    triangulate.write_outputs(triangulate.run(rig, kp, triangulate.Config(single_performer=False)),
                              s.points3d("triangulated"))
    lines, mocap_log = _Lines(), logging.getLogger("mocap")
    mocap_log.addHandler(lines)
    level = mocap_log.level
    mocap_log.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.INFO, logger="mocap"):
            refine.main(s, overwrite=True)
            fit.main(s, settings(s), overwrite=True)
            logging.getLogger("mocap.test").info("person2 is mentioned here, outside any person's work")
    finally:
        mocap_log.removeHandler(lines)
        mocap_log.setLevel(level)
    solver = [ln for ln in lines.lines if ln.startswith("mocap.optim.refine: ") and " iterations (" in ln]
    assert solver and all(ln.split(": ")[1] in ("person1", "person2") for ln in solver), solver
    fitted = [ln for ln in lines.lines if ln.startswith("mocap.fit: ") and " frames in " in ln]
    assert [ln.split(": ")[1] for ln in fitted] == ["person1", "person2"], fitted
    assert not any("person1: person1" in ln or "person2: person2" in ln for ln in lines.lines)
    assert lines.lines[-1] == "mocap.test: person2 is mentioned here, outside any person's work"
    assert any(r.name == "mocap.fit" and r.getMessage().startswith("fit ") for r in caplog.records)  # as logged
    fmt = NamedFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("mocap.x", logging.INFO, __file__, 1, "%d%% done", (50,), None)
    with speaking_of("person7"):
        assert fmt.format(record) == "INFO person7: 50% done" and record.getMessage() == "50% done"
    assert fmt.format(record) == "INFO 50% done"
    with pytest.raises(ValueError, match="must end with %\\(message\\)s"):
        NamedFormatter("%(message)s %(name)s")


def test_a_copied_session_sets_the_old_names_files_aside_and_titles_its_report_anew(tmp_path, take3, caplog):
    """``cp -r take copy; mocap run copy``: the export ran (its files, named after the session, were missing) and
    left take's files beside copy's, passing for current; the report (titled with the session's name) was kept. The
    files moved aside are said in one line by the export stage (a copied 5-person session: 20 lines, under the fit's
    logger)."""
    import shutil

    from mocap.pipeline_state import _key
    from mocap.stages import report

    rig, kp, X = take3
    s = write_take(tmp_path / "take", rig, kp, points(X[:, 1:2], rig.names))
    run_stages(s, settings(s), only=STAGES, progress=False)
    shutil.copytree(s.root, tmp_path / "copy")
    c = Session(tmp_path / "copy")
    (c.export_dir / "COPY_body22.bvh").write_text("x")  # this session's name in another case (a case-insensitive
    # file system keeps a renamed folder's old spelling): not another session's, never moved aside
    with caplog.at_level(logging.WARNING):
        r = run_stages(c, settings(c), only=STAGES, progress=False)
    assert r.status == {"fit": "skipped", "retarget": "skipped", "export": "ran"}
    assert sorted(p.name for p in c.export_dir.iterdir() if p.is_file()) == ["COPY_body22.bvh", "copy_body22.bvh",
                                                                             "copy_mixamo.bvh"]
    assert sorted(p.name for p in (c.export_dir / "previous").iterdir()) == ["take_body22.bvh", "take_mixamo.bvh"]
    said = [r for r in caplog.records if r.getMessage().startswith("moved ")]  # once, by the export stage
    assert len(said) == 1 and said[0].name == "mocap.stages.export", [(r.name, r.getMessage()) for r in said]
    assert said[0].getMessage().startswith("moved take_body22.bvh, take_mixamo.bvh to ") and \
        "named after another session, 'take'" in said[0].getMessage()
    assert sorted(p.name for p in s.export_dir.iterdir()) == ["take_body22.bvh", "take_mixamo.bvh"]  # untouched
    cfg = settings(s)
    assert _key(report, cfg, [], s.root) != _key(report, cfg, [], c.root)  # its page is titled with the name
    assert _key(export, cfg, [], s.root) == _key(export, cfg, [], c.root)  # its files' names are its outputs


def test_the_run_says_each_bvh_files_unit():
    """The mixamo BVH is in centimetres beside the fitted skeleton's in metres; BVH does not say its unit, and
    imported as metres the character stood 164 m tall: the run's list of files says it."""
    from types import SimpleNamespace

    from mocap.stages.export import unit_note

    def cfg(units=None):
        return SimpleNamespace(export=SimpleNamespace(units=units, motions=("body22", "mixamo")))

    assert unit_note(cfg(), Path("export/take_mixamo.bvh")) == " (centimetres: the mixamo rig's unit)"
    assert unit_note(cfg(), Path("export/take_person2_body22.bvh")) == " (metres: the fitted skeleton's unit)"
    assert unit_note(cfg("cm"), Path("export/take_body22.bvh")) == " (centimetres: export.units)"
    assert unit_note(cfg(), Path("export/take_mixamo.fbx")) == ""  # FBX carries its unit


def test_the_held_frames_are_said_without_a_zero(caplog, monkeypatch):
    """"held over the 0 frames before it and the last over the 60 after it": only the side that holds frames."""
    from mocap.stages import export as ex

    cases = [("hold", (0, 0, 60), "m.npz: the last fitted pose is held over the 60 frames after it ("),
             ("hold", (0, 12, 0), "m.npz: the first fitted pose is held over the 12 frames before it ("),
             ("hold", (0, 12, 60), "the first fitted pose is held over the 12 frames before it and the last over the "
                                   "60 after it ("),
             ("hide", (0, 0, 60), "m.npz: the person is hidden over the 60 frames after the last fitted frame ("),
             ("hide", (0, 12, 0), "m.npz: the person is hidden over the 12 frames before the first fitted frame ("),
             ("hide", (0, 12, 60), "hidden over the 12 frames before the first fitted frame and the 60 after the "
                                   "last (")]  # hide: export.absent's default
    for absent, counts, text in cases:
        caplog.clear()
        monkeypatch.setattr(ex, "gap_counts", lambda m, c=counts: c)
        with caplog.at_level(logging.WARNING):
            ex._warn_gaps(None, "m.npz", absent)
        assert text in caplog.text and " 0 frames" not in caplog.text and "the 0 " not in caplog.text, caplog.text
