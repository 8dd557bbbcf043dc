"""detect.recover: people the first pass missed in a view, found again in the box the other views give.

Synthetic: two known 3D people projected into a ring of cameras; person 1 is hidden in one view's
first-pass detections. The prediction, the boxes, the gate and the duplicate test are checked on arrays,
and the whole pass with a stand-in landmark model that reads the crop's pixel coordinates (no mediapipe).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.detect import recover
from mocap.detect.boxes import crop_image, person_box, to_image
from mocap.detect.recover import RecoverConfig, candidates, judge, predict_people, recover_detections
from mocap.multi.track import TrackConfig, associate_take
from mocap.synth.groundtruth import RigSpec, ring_rig
from mocap.types import Keypoints2D

F, FPS, HIDDEN_VIEW = 30, 30.0, 0


@pytest.fixture(scope="module")
def scene():
    return build_scene()


def build_scene():
    """Two people 1.2 m apart, 4 cameras (640 × 360), 1 px noise; person 1 missing in view 0 everywhere."""
    a = blazepose_keypoints(body_motion(F, FPS, seed=1))
    b = blazepose_keypoints(body_motion(F, FPS, seed=2))
    truth = np.stack([a - [0.6, 0, 0], b + [0.6, 0, 0]], axis=1)  # (F, 2, 33, 3)
    rig = ring_rig(RigSpec(size=(640, 360), dist=(0, 0, 0, 0, 0)), truth)
    rng = np.random.default_rng(0)
    uv = rig.project(truth)  # (C, F, P, J, 2)
    data = np.concatenate([uv, np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1)
    data[..., :2] += rng.normal(0, 1.0, uv.shape)
    data = np.moveaxis(data, 0, 1).copy()  # (F, C, P, J, 3)
    data[:, :, [0, 1]] = data[:, :, [1, 0]]  # slots do not follow the people
    first = data.copy()
    first[:, HIDDEN_VIEW, 0] = np.nan  # slot 0 of view 0 holds person 1: missed by the first pass
    kp = Keypoints2D(first, rig.names, "blazepose33", FPS)
    return rig, truth, kp, uv


@pytest.fixture(scope="module")
def tracked(scene):
    rig, truth, kp, uv = scene
    slots, _ = associate_take(rig, kp, 2, progress=False)
    order = np.argsort([np.nanmedian(np.abs(kp.xy[5, 1, slots[5, 1, p]] - uv[1, 5, 0])) for p in range(2)])
    return slots[:, :, order]  # person p of the slots is true person p


def predicted(scene, tracked, coast_frames=30):
    rig, truth, kp, uv = scene
    cfg = TrackConfig()
    return predict_people(rig, kp, tracked, 0.2, cfg.min_joints, cfg.track_max_m / 2, cfg.coast_speed / FPS / 2,
                          coast_frames)


def test_prediction_is_near_the_truth(scene, tracked):
    rig, truth, kp, uv = scene
    assert tracked.shape[2] == 2
    assert (tracked[:, HIDDEN_VIEW, 1] < 0).all()  # person 1 is never seen in the hidden view
    X, radius = predicted(scene, tracked)
    err = np.linalg.norm(X - truth, axis=-1)
    assert np.nanmedian(err) < 0.02 and np.isfinite(X).mean() > 0.95
    assert np.allclose(radius, TrackConfig().track_max_m / 2)  # triangulated in every frame: the base gate


def test_prediction_between_and_past_fixes(scene, tracked):
    """Frames without two views take the motion between the nearest fixes; the gate grows with the gap;
    farther than coast_frames from any fix: nothing (no box)."""
    rig, truth, kp, uv = scene
    gap = tracked.copy()
    gap[10:14, :, 1] = -1  # person 1 unseen for 4 frames
    gap[25:, :, 1] = -1  # and from frame 25 on
    X, radius = predicted(scene, gap, coast_frames=3)
    step = np.nanmedian(np.linalg.norm(truth[1:, 1] - truth[:-1, 1], axis=-1))
    assert np.nanmedian(np.linalg.norm(X[11, 1] - truth[11, 1], axis=-1)) < 0.02 + 2 * step
    assert radius[11, 1] > radius[9, 1] and radius[12, 1] == radius[11, 1]  # 2 frames from a fix either way
    assert np.isfinite(X[27, 1]).all() and np.isnan(X[29, 1]).all() and radius[29, 1] == np.inf


def test_boxes_where_the_person_was_missed(scene, tracked):
    rig, truth, kp, uv = scene
    X, radius = predicted(scene, tracked)
    todo = candidates(rig, X, radius, tracked, RecoverConfig())
    assert {(c.camera, c.person) for c in todo} == {(HIDDEN_VIEW, 1)}
    assert sorted(c.frame for c in todo) == list(range(F))
    for c in todo:
        x0, y0, side = c.box
        true = uv[HIDDEN_VIEW, c.frame, 1]
        assert (true >= [x0, y0]).all() and (true <= [x0 + side, y0 + side]).all()  # the whole person inside
        extent = np.max(true.max(axis=0) - true.min(axis=0))
        assert extent * 1.3 < side < extent * 1.7  # margin 0.25 each side (the prediction's extent is close)
        assert 6.0 <= c.gate_px < 40  # the 3D gate in pixels at the person's depth
        assert np.nanmedian(np.linalg.norm(c.predicted - true, axis=-1)) < c.gate_px / 2


def test_person_box_outside_or_too_few_joints():
    uv = np.array([[100.0, 100.0], [140.0, 200.0], [120.0, np.nan]])
    box = person_box(uv, (640, 360), 0.25, 0.5, 2)
    assert np.allclose(box, [120 - 75, 150 - 75, 150])  # square on the longer side (100 px), 1.5×
    assert person_box(uv, (640, 360), 0.25, 0.5, 3) is None  # 2 known joints, 3 needed
    assert person_box(uv + [700, 0], (640, 360), 0.25, 0.5, 2) is None  # outside the image


def test_crop_round_trip():
    """A point found in the crop maps back to where it is in the image (pixel centres at integers)."""
    image = np.zeros((360, 640, 3), np.uint8)
    image[200, 300] = 255
    box = np.array([250.0, 150.0, 100.0])
    crop = crop_image(image, box, 256)
    assert crop.shape == (256, 256, 3)
    y, x = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    back = to_image(np.array([[x, y, 1.0]]), box, 256)[0]
    assert np.allclose(back[:2], [300, 200], atol=0.5) and back[2] == 1.0


def test_judge_gate_and_duplicates():
    rng = np.random.default_rng(1)
    pred = rng.uniform(100, 300, (33, 2))
    front = pred + [25.0, 5.0]  # the person in front, 25 px away: already detected
    own = np.concatenate([pred + rng.normal(0, 2, pred.shape), np.full((33, 1), 0.8)], axis=1)
    dup = np.concatenate([front + rng.normal(0, 1, pred.shape), np.full((33, 1), 0.9)], axis=1)
    far = own + [80.0, 0, 0]
    assert judge(np.stack([dup, own]), pred, 15.0, front[None], 0.2, 8, 5.0)[:2] == (1, "recovered")
    assert judge(dup[None], pred, 30.0, front[None], 0.2, 8, 5.0)[1] == "duplicate"  # closer to the front one
    assert judge(far[None], pred, 15.0, front[None], 0.2, 8, 5.0)[1] == "outside the gate"
    assert judge(np.full((2, 33, 3), np.nan), pred, 15.0, front[None], 0.2, 8, 5.0)[1] == "nothing found"
    low = own.copy()
    low[:, 2] = 0.1  # every keypoint below the score threshold
    assert judge(low[None], pred, 15.0, front[None], 0.2, 8, 5.0)[1] == "nothing found"
    # on top of a detection already there (both people in the same pixels): no new information, a duplicate
    assert judge(own[None], pred, 15.0, pred[None] + 0.5, 0.2, 8, 5.0)[1] == "duplicate"


def test_bad_settings():
    with pytest.raises(ValueError, match=r"recover must be one of \['auto', 'on', 'off'\], got 'yes'"):
        recover.check_mode("yes", "blazepose")
    with pytest.raises(ValueError, match="recover = 'on' needs the blazepose detector.*got detector 'onnx'"):
        recover.check_mode("on", "onnx")
    with pytest.raises(ValueError, match="margin must be ≥ 0, got -0.1"):
        RecoverConfig(margin=-0.1)
    assert not recover.recovering("auto", 1) and recover.recovering("auto", 2) and recover.recovering("auto", "auto")
    assert recover.recovering("on", 1) and not recover.recovering("off", 3)


def test_detect_config_setting():
    from mocap.stages.detect import Config

    assert Config().recover == "auto"
    with pytest.raises(ValueError, match="recover must be one of"):
        Config(recover="maybe")


class CoordinateVideo:
    """Frames whose pixels hold their own coordinates (x, y) and 10 × frame + camera, and a stand-in landmark
    model that reads them from a crop and returns the people ``show`` (their true projections in that camera)."""

    def __init__(self, uv: np.ndarray, names: tuple[str, ...], show: tuple[int, ...], off: dict | None = None):
        self.uv, self.names, self.show = uv, names, show  # uv (C, F, P, J, 2)
        self.off = off or {}  # joint → pixels it is found away from where it is

    def frames(self, path, stride=1, start=0, stop=None, grey=False):
        c = self.names.index(Path(path).stem)
        y, x = np.mgrid[0:360, 0:640].astype(np.float32)
        for i in range(start, stop):
            yield i, np.stack([x, y, np.full_like(x, 10 * i + c)], axis=-1)

    def model(self, crop: np.ndarray) -> np.ndarray:
        m, k = crop.shape[0] // 2, crop.shape[0] // 4  # the step over k pixels (warpAffine rounds to 1/32 px)
        step = float(crop[m, m + k, 0] - crop[m, m - k, 0]) / (2 * k)
        frame, camera = divmod(int(round(float(crop[m, m, 2]))), 10)
        out = np.full((2, 33, 3), np.nan)
        for k, p in enumerate(self.show):
            u = self.uv[camera, frame, p]
            out[k, :, 0] = m + (u[:, 0] - crop[m, m, 0]) / step
            out[k, :, 1] = m + (u[:, 1] - crop[m, m, 1]) / step
            out[k, :, 2] = 0.7
            for j, shift in self.off.items():
                out[k, j, :2] += np.asarray(shift) / step
        return out


def run_pass(rig, kp, uv, show, monkeypatch, off=None, guide=None):
    """The second pass through ``rig`` on frames holding the true projections ``uv`` (the video knows no rig)."""
    import mocap.io.video

    video = CoordinateVideo(uv, rig.names, show, off)
    monkeypatch.setattr(mocap.io.video, "read_frames", video.frames)
    videos = {n: Path(f"/nonexistent/{n}.mp4") for n in rig.names}
    return recover_detections(rig, kp, videos, np.arange(F), video.model, 2, TrackConfig(), 0.2, 15.0,
                              RecoverConfig(), progress=False, guide=guide)


@pytest.mark.parametrize("show, expect", [((0, 1), "recovered"), ((0,), "outside the gate"), ((), "nothing found")])
def test_whole_pass_with_a_stand_in_model(scene, monkeypatch, show, expect):
    """The crop holds the front person and the hidden one: the hidden one goes into the free slot of that view;
    when the model finds only the other person (1.2 m away: outside the gate) or nobody, nothing is written."""
    rig, truth, kp, uv = scene
    data, stats = run_pass(rig, kp, uv, show, monkeypatch)
    n = F if expect == "recovered" else 0
    assert stats["recovered"] == dict.fromkeys(rig.names, 0) | {rig.names[HIDDEN_VIEW]: n}
    assert stats["looked"][rig.names[HIDDEN_VIEW]] == F
    untouched = np.ones(data.shape[:3], bool)
    untouched[:, HIDDEN_VIEW, 0] = False
    assert np.array_equal(data[untouched], kp.data[untouched], equal_nan=True)  # only the free slot is written
    if expect == "recovered":
        err = np.linalg.norm(data[:, HIDDEN_VIEW, 0, :, :2] - uv[HIDDEN_VIEW, :, 1], axis=-1)
        assert err.max() < 0.1  # the crop round trip is exact
        assert np.all(data[:, HIDDEN_VIEW, 0, :, 2] == 0.7)
        assert len(stats["detections"]) == F and all(d[3] == 1 for d in stats["detections"])
    else:
        assert np.isnan(data[:, HIDDEN_VIEW, 0]).all()
        assert stats["rejected"][expect][rig.names[HIDDEN_VIEW]] == F


def test_nothing_to_recover_with_every_view_seen(scene, monkeypatch):
    """Nobody missing: no box is looked at (and with one person per view nothing changes either)."""
    rig, truth, kp, uv = scene
    full = dataclasses.replace(kp, data=np.moveaxis(np.concatenate(
        [uv, np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1), 0, 1).copy())
    data, stats = run_pass(rig, full, uv, (0, 1), monkeypatch)
    assert sum(stats["looked"].values()) == 0 and np.array_equal(data, full.data)


# ----- a person the first pass found in one view only ---------------------------------------------------------


@pytest.fixture(scope="module")
def lone_scene(scene):
    """Person 1 seen by view 0 only (slot 0 there): no association can place it in 3D."""
    rig, truth, kp, uv = scene
    data = kp.data.copy()
    data[:, HIDDEN_VIEW, 0] = np.moveaxis(np.concatenate([uv, np.full(uv.shape[:-1] + (1,), 0.9)], -1), 0, 1)[
        :, HIDDEN_VIEW, 1]
    data[:, 1:, 0] = np.nan
    return rig, truth, dataclasses.replace(kp, data=data), uv


def test_lone_depth_range_and_boxes(lone_scene):
    from mocap.detect.recover_lone import depth_range, lone_candidates, torso_length

    rig, truth, kp, uv = lone_scene
    torso = torso_length(truth[:, 0], "blazepose33")  # measured on the tracked person
    assert 0.3 < torso < 0.7
    cam = rig[HIDDEN_VIEW]
    depth = np.median((truth[:, 1] @ cam.R.T + cam.t)[..., 2])
    lo, hi = depth_range(cam, kp.xy[0, HIDDEN_VIEW, 0], "blazepose33", torso)
    assert lo < depth < hi and hi / lo < 2.5
    xy = kp.xy.copy()
    todo = lone_candidates(rig, xy, np.array([[0, HIDDEN_VIEW, 0]]), "blazepose33", torso, 0.125, 0.25, 0.5, 8)
    assert {c.camera for c in todo} == {1, 2, 3} and len(todo) <= 3 * 3  # a few boxes per view, not one per depth
    for c in (1, 2, 3):
        true = uv[c, 0, 1]
        inside = [((true >= b.box[:2]) & (true <= b.box[:2] + b.box[2])).all() for b in todo if b.camera == c]
        assert any(inside)  # the true person is in one of the boxes of every view


def test_judge_lone():
    from mocap.detect.recover_lone import judge_lone, world_rays

    spec = RigSpec(size=(640, 360), dist=(0, 0, 0, 0, 0))
    rng = np.random.default_rng(3)
    X = rng.normal(0, 0.3, (2, 33, 3)) + [[[-0.6, 0, 1]], [[0.6, 0, 1]]]  # two people
    rig = ring_rig(spec, X)
    uv = rig.project(X)  # (C, 2, J, 2)
    assert np.allclose(np.linalg.norm(world_rays(rig[0], uv[0, 0]), axis=-1), 1)
    found = np.concatenate([uv[1], np.full((2, 33, 1), 0.8)], axis=-1)  # view 1 sees both people
    src = uv[0, 1]  # the lone detection of person 1 in view 0
    args = (rig[1], rig[0], src)
    assert judge_lone(found, *args, np.zeros((0, 33, 2)), 10.0, 0.15, 0.2, 8)[:2] == (1, "recovered")
    assert judge_lone(found[:1], *args, np.zeros((0, 33, 2)), 10.0, 0.15, 0.2, 8)[1] == "rays do not meet"
    # person 1 is already detected in view 1: what is found there again is a duplicate
    assert judge_lone(found, *args, uv[1, 1:] + 1.0, 10.0, 0.15, 0.2, 8)[1] == "duplicate"
    assert judge_lone(np.full((1, 33, 3), np.nan), *args, np.zeros((0, 33, 2)), 10.0, 0.15, 0.2, 8)[1] == \
        "nothing found"
    # a lone detection seeing 13 of the 33 joints (the rest hidden) meets its person on those: recovered (the
    # distance of a joint it lacks was the other camera's from the found ray, metres: "rays do not meet")
    part = src.copy()
    part[13:] = np.nan
    got = judge_lone(found, rig[1], rig[0], part, np.zeros((0, 33, 2)), 10.0, 0.15, 0.2, 8)
    assert got[:2] == (1, "recovered") and got[2] < 1e-6


def test_whole_pass_finds_a_person_seen_by_one_view(lone_scene, monkeypatch):
    """The lone person is found in the three other views (the crops also hold the tracked person, who is
    already detected there); nothing else changes."""
    rig, truth, kp, uv = lone_scene
    data, stats = run_pass(rig, kp, uv, (0, 1), monkeypatch)
    assert stats["persons_tracked"] == 1
    assert sum(stats["recovered_lone"].values()) == 3 * F
    assert stats["recovered"] == {rig.names[0]: 0} | {n: F for n in rig.names[1:]}
    err = np.linalg.norm(data[:, 1:, 0, :, :2] - np.moveaxis(uv[1:, :, 1], 0, 1), axis=-1)
    assert err.max() < 0.1
    untouched = np.ones(data.shape[:3], bool)
    untouched[:, 1:, 0] = False
    assert np.array_equal(data[untouched], kp.data[untouched], equal_nan=True)
    # with the model finding only the tracked person: nothing is written
    data, stats = run_pass(rig, kp, uv, (0,), monkeypatch)
    assert sum(stats["recovered"].values()) == 0 and np.array_equal(data, kp.data, equal_nan=True)


@pytest.mark.slow
@pytest.mark.shared_data
def test_recover_on_a_rendered_take(shared_data, tmp_path):
    """From pixels: two rendered people (one passing behind the other); the detect stage's second pass writes
    recovered detections into free slots, each on a true person not already detected in that view, and counts
    them in pose2d.h5's info."""
    pytest.importorskip("bpy")
    from mocap.io.hdf5 import keypoints2d_info, read_keypoints2d, read_points3d
    from mocap.io.rig_files import read_rig
    from mocap.pipeline import load_config, run_stages
    from mocap.session import Session
    from mocap.synth.render import RenderSpec, render_session

    spec = RenderSpec(str(shared_data / "bvh" / "cmu_01_03.bvh"), start_s=2.0, seconds=0.8, fps=15.0, cameras=4,
                      size=(320, 180), samples=2, people=2)
    out = render_session(spec, tmp_path / "take", parts=("take",))
    s = Session(out)
    cfg = load_config(s, sets=["detect.persons=2"])[0]
    run_stages(s, cfg, only=["detect"], progress=False)
    kp = read_keypoints2d(s.pose2d_h5)
    info = keypoints2d_info(s.pose2d_h5)["recover"]
    rig = read_rig(out / "groundtruth" / "rig.toml").subset(kp.camera_names)
    truth = np.moveaxis(rig.project(read_points3d(out / "groundtruth" / "points3d.h5").xyz), 0, 1)  # (F, C, 2, J, 2)
    counts = info["recovered"]
    assert set(counts) == set(kp.camera_names) and sum(counts.values()) > 0, info
    assert info["persons_tracked"] >= 1 and sum(info["looked"].values()) >= sum(counts.values())
    # every detection (first pass or recovered) is on a true person, and no true person twice in a view
    found = np.isfinite(kp.data[..., 0]).sum(axis=-1) >= 8  # (F, C, S)
    for f, c in zip(*np.nonzero(found.sum(axis=2) == 2), strict=True):
        d = np.nanmedian(np.linalg.norm(kp.xy[f, c, :, None] - truth[f, c, None], axis=-1), axis=-1)  # (S, 2)
        assert d.min(axis=1).max() < 40 and d.argmin(axis=1)[0] != d.argmin(axis=1)[1], (f, c, d)


def test_cross_check_with_a_third_view():
    """A skeleton found for a lone detection is confirmed by the projection of what another view found; the
    person in front (already detected there) is refused, and one wrong view among the others does not matter."""
    from types import SimpleNamespace

    from mocap.detect.recover_lone import cross_check

    rng = np.random.default_rng(4)
    X = rng.normal(0, 0.3, (2, 33, 3)) + [[[-0.6, 0, 1]], [[0.6, 0, 1]]]  # A (tracked), B (lone in view 0)
    rig = ring_rig(RigSpec(size=(640, 360), dist=(0, 0, 0, 0, 0)), X)
    uv = rig.project(X)  # (C, 2, J, 2)
    C = len(rig)
    data = np.full((1, C, 2, 33, 3), np.nan)
    data[0, :, 0, :, :2] = uv[:, 0]  # A detected in every view
    data[0, :, 0, :, 2] = 0.9
    xy = np.full((1, C, 2, 33, 2), np.nan)
    xy[0, 0, 1] = uv[0, 1]  # B's lone detection in view 0, slot 1
    run = SimpleNamespace(data=data, rig=rig, min_score=0.2, cfg=RecoverConfig(), mirror=None)
    uv_all = uv[:, None, :1]  # (C, F, P, J, 2): the tracked person A

    def with_score(p):
        return np.concatenate([p, np.full((33, 1), 0.8)], axis=1)

    b1, b2, a2, a3 = with_score(uv[1, 1]), with_score(uv[2, 1]), with_score(uv[2, 0] + 1.0), with_score(uv[3, 0])
    assert cross_check(run, 0, 2, b2, (0, 1), {1: b1}, xy, uv_all, 10.0, 200.0) == (0, "recovered")
    assert cross_check(run, 0, 2, a2, (0, 1), {1: b1}, xy, uv_all, 10.0, 200.0)[0] == -1  # the person in front
    assert cross_check(run, 0, 2, b2, (0, 1), {1: b1, 3: a3}, xy, uv_all, 10.0, 200.0) == (0, "recovered")
    assert cross_check(run, 0, 2, b2, (0, 1), {3: a3}, xy, uv_all, 10.0, 200.0)[0] == -1  # nothing confirms it
    assert cross_check(run, 0, 2, b2, (0, 1), {}, xy, uv_all, 10.0, 200.0) == (0, "recovered")  # one other view


def test_outlying_keypoints_of_a_recovered_skeleton_are_dropped(scene, monkeypatch):
    """Keypoints the landmark model puts far from the person's prediction (beyond twice the gate, the tracker's
    outlier distance) are left out; the rest of the skeleton is kept."""
    rig, truth, kp, uv = scene
    data, stats = run_pass(rig, kp, uv, (1,), monkeypatch, off={15: (120.0, 0.0), 16: (0.0, -90.0), 0: (3.0, 0.0)})
    assert stats["recovered"][rig.names[HIDDEN_VIEW]] == F
    got = data[:, HIDDEN_VIEW, 0]
    assert np.isnan(got[:, [15, 16]]).all()  # the wrists, 90-120 px off
    assert np.allclose(got[:, 0, :2], uv[HIDDEN_VIEW, :, 1, 0] + [3.0, 0.0], atol=0.1)  # 3 px off: kept
    keep = np.setdiff1d(np.arange(33), [15, 16])
    assert np.isfinite(got[:, keep]).all()
