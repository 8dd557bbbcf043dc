"""mocap live with several people: each update's detections grouped across cameras, every person triangulated
and kept under one number from update to update (mocap.live.people), drawn in its own colour."""

import time

import numpy as np
import pytest

from mocap.live.display import AMBER, GREEN, PEOPLE, render
from mocap.live.engine import LiveConfig, Update
from mocap.live.people import FORGET_S, LivePeople
from mocap.synth.groundtruth import RigSpec, ring_rig

J = 33
FPS = 30.0


def _body(seed: int) -> np.ndarray:
    """(J, 3) keypoints of a body about the origin: each part of the keypoint set's limb graph grown from a point
    near the chest, every limb 0.1–0.35 m long (so no limb exceeds what live.people.plausible allows)."""
    from mocap.keypoint_sets import get_keypoint_set

    rng = np.random.default_rng(seed)
    limbs = get_keypoint_set("blazepose33").limbs
    X = np.full((J, 3), np.nan)
    for start in range(J):
        if np.isfinite(X[start, 0]):
            continue
        X[start] = rng.uniform([-0.15, -0.1, 1.0], [0.15, 0.1, 1.5])
        todo = [start]
        while todo:
            a = todo.pop()
            for p, q in limbs:
                b = q if p == a else p if q == a else None
                if b is not None and not np.isfinite(X[b, 0]):
                    v = rng.normal(size=3)
                    X[b] = X[a] + rng.uniform(0.1, 0.35) * v / np.linalg.norm(v)
                    todo.append(b)
    return X


def _crossing(frames: int = 60) -> np.ndarray:
    """(F, 2, J, 3): two people walking towards each other along x, passing 0.3 m apart half-way (issue 15's
    crossing)."""
    t = np.linspace(0.0, 1.0, frames)
    a = _body(1)[None] + np.stack([-1.5 + 3.0 * t, np.full_like(t, -0.15), 0 * t], 1)[:, None]
    b = _body(2)[None] + np.stack([1.5 - 3.0 * t, np.full_like(t, 0.15), 0 * t], 1)[:, None]
    return np.stack([a, b], 1)


def _detections(rig, truth: np.ndarray, rng, noise_px: float = 1.0, clutter: bool = True) -> dict[int, np.ndarray]:
    """One update's detections per camera: each person's projection (noisy), slots shuffled, and one camera
    with a detection of something else (seen by that camera alone)."""
    out = {}
    for c, cam in enumerate(rig.cameras):
        dets = []
        for X in truth:
            uv = cam.project(X) + rng.normal(0, noise_px, (J, 2))
            dets.append(np.concatenate([uv, np.full((J, 1), 0.9)], 1))
        if clutter and c == 1:
            junk = np.concatenate([rng.uniform(0, 500, (J, 2)), np.full((J, 1), 0.9)], 1)
            dets.append(junk)
        out[c] = np.stack(dets)[rng.permutation(len(dets))]
    return out


@pytest.fixture(scope="module")
def scene():
    truth = _crossing()
    return ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), truth), truth


def test_two_people_are_grouped_triangulated_and_keep_their_numbers_through_a_crossing(scene):
    rig, truth = scene
    rng = np.random.default_rng(0)
    live = LivePeople(rig, "blazepose33", persons=3, min_score=0.5, max_reproj_px=25.0)
    owner: dict[int, int] = {}  # number → true person
    for f in range(len(truth)):
        X, err, numbers, seen_by = live.fuse(_detections(rig, truth[f], rng), f / FPS)
        assert len(numbers) == 2, f"frame {f}: {numbers}"  # the clutter (one camera) is nobody
        assert seen_by == [4, 4]
        for k, n in enumerate(numbers):
            gap = np.linalg.norm(X[k][None] - truth[f], axis=-1).mean(axis=1)  # (2,) to each person
            who = int(np.argmin(gap))
            assert gap[who] < 0.01, (f, gap)
            assert owner.setdefault(n, who) == who, f"frame {f}: person {n} switched"
    assert sorted(owner) == [1, 2] and sorted(owner.values()) == [0, 1]


def test_persons_keeps_the_people_seen_by_the_most_cameras(scene):
    rig, truth = scene
    rng = np.random.default_rng(1)
    live = LivePeople(rig, "blazepose33", persons=1, min_score=0.5, max_reproj_px=25.0)
    dets = _detections(rig, truth[0], rng, clutter=False)
    for c in (2, 3):  # person 2 (index 1) seen by cameras 1 and 2 only
        far = [s for s in range(2) if np.linalg.norm(dets[c][s, :, :2] - rig.cameras[c].project(truth[0][1]),
                                                     axis=1).mean() < 10]
        dets[c] = np.delete(dets[c], far, axis=0)
    X, _, numbers, seen_by = live.fuse(dets, 0.0)
    assert seen_by == [4]  # person 1, the other (seen by cameras 1 and 2 only) left out
    assert numbers == [1] and np.linalg.norm(X[0] - truth[0][0], axis=1).mean() < 0.01


def test_a_person_lost_longer_than_forget_s_comes_back_under_a_new_number(scene):
    rig, truth = scene
    rng = np.random.default_rng(2)
    live = LivePeople(rig, "blazepose33", persons=2, min_score=0.5, max_reproj_px=25.0)
    assert live.fuse(_detections(rig, truth[0], rng, clutter=False), 0.0)[2] == [1, 2]
    nobody = {c: np.full((2, J, 3), np.nan) for c in range(len(rig))}
    assert live.fuse(nobody, 0.5)[2] == []
    assert live.fuse(_detections(rig, truth[1], rng, clutter=False), 1.0)[2] == [1, 2]  # within FORGET_S: the same
    assert live.fuse(_detections(rig, truth[2], rng, clutter=False), 1.0 + FORGET_S + 0.5)[2] == [3, 4]


def test_one_body_split_over_two_camera_pairs_is_one_person(scene, monkeypatch):
    import mocap.live.people as lp

    rig, truth = scene
    dets = _detections(rig, truth[0][:1], np.random.default_rng(3), noise_px=0.5, clutter=False)  # one person
    dets[2][0, :, :2] += 40.0  # cameras 3 and 4 shifted together: their rays still meet, but not 1's and 2's
    dets[3][0, :, :2] += 40.0
    X, _, numbers, seen_by = LivePeople(rig, "blazepose33", 2, 0.5, 25.0).fuse(dets, 0.0)
    assert numbers == [1] and seen_by == [4], (numbers, seen_by)
    monkeypatch.setattr(lp, "_merged", lambda live, d, groups: [live._solve(d, g) for g in groups])  # the grouping
    # alone: two pairs, two people
    assert LivePeople(rig, "blazepose33", 2, 0.5, 25.0).fuse(dets, 0.0)[2] == [1, 2]


def test_numbers_follow_the_nearest_within_the_gate_and_the_gate_grows_while_unseen():
    live = LivePeople(None, "blazepose33", persons=2, min_score=0.5, max_reproj_px=25.0)
    a, b = np.zeros(3), np.array([2.0, 0.0, 0.0])
    assert live._identify([a, b], 0.0) == [1, 2]
    assert live._identify([b + 0.1, a + 0.1], 0.1) == [2, 1]  # listed the other way round: the same people
    assert live._identify([a + [0.0, 0.9, 0.0]], 0.2) == [3]  # 0.9 m in 0.1 s: beyond 0.5 + 3 × 0.1 m
    assert live._identify([b + [0.0, 1.4, 0.0]], 0.5) == [2]  # unseen 0.4 s: 0.5 + 3 × 0.4 m reaches 1.4 m


def test_joints_no_body_could_have_are_left_out():
    from mocap.keypoint_sets import get_keypoint_set
    from mocap.live.people import LIMB_SEEN, LimbLengths, plausible

    limbs = get_keypoint_set("blazepose33").limbs
    body = _body(5)
    assert np.array_equal(plausible(body, limbs), body)  # a body as it is: untouched
    bad = body.copy()
    bad[15] += [1.9, 0.0, 0.0]  # the left wrist of a view with left and right exchanged, 1.9 m off
    out = plausible(bad, limbs)
    assert np.isnan(out[15]).all()
    kept = np.ones(J, bool)
    kept[[15, 17, 19, 21]] = False  # the wrist, and the hand joints it alone joined to the body
    assert np.array_equal(out[kept], body[kept]) and np.isnan(out[~kept]).all()
    heel = body.copy()
    away = body[30] - (body[28] + body[32]) / 2  # moved 0.4 m away from the ankle and the toe it is joined to:
    heel[30] += 0.4 * away / np.linalg.norm(away)  # under 0.8 m, only bounds of this person's own lengths find it
    assert np.array_equal(plausible(heel, limbs), heel, equal_nan=True)
    lengths = LimbLengths(limbs, J)
    for _ in range(LIMB_SEEN):
        lengths.add(body)
    out = plausible(heel, limbs, lengths.bounds())
    assert np.isnan(out[30]).all() and np.array_equal(np.delete(out, 30, 0), np.delete(body, 30, 0))  # the heel


def test_limb_bounds_learn_a_body_that_differs_from_the_last_one():
    """The lengths are kept as triangulated, so another body under the same number (or one measured differently)
    is learnt within half the history, not refused for ever."""
    from mocap.keypoint_sets import get_keypoint_set
    from mocap.live.people import LIMB_HISTORY, LimbLengths, plausible

    limbs = get_keypoint_set("blazepose33").limbs
    small = _body(6)
    big = 2.0 * small  # every limb twice as long: beyond the bounds the small body's lengths set, under 0.8 m
    assert np.array_equal(plausible(big, limbs), big)
    lengths = LimbLengths(limbs, J)
    for _ in range(LIMB_HISTORY):
        lengths.add(small)
    kept = []
    for _ in range(LIMB_HISTORY):
        bounds = lengths.bounds()
        lengths.add(big)
        kept.append(np.isfinite(plausible(big, limbs, bounds)[:, 0]).mean())
    assert kept[0] < 0.5 and kept[-1] == 1.0 and kept.index(1.0) <= LIMB_HISTORY // 2 + 1, kept


def test_live_persons_must_be_a_whole_number():
    for bad in (0, -1, "auto", 2.0, True):
        with pytest.raises(ValueError, match="live: persons must be a whole number ≥ 1"):
            LiveConfig(persons=bad)
    with pytest.raises(ValueError, match="live: persons must be at least 1, got 0"):
        LivePeople(None, "blazepose33", 0, 0.5, 25.0)


def test_the_preview_draws_each_person_in_its_own_colour(scene):
    rig, truth = scene
    limbs = [(11, 13), (13, 15), (12, 14), (14, 16), (23, 25), (24, 26)]
    people = truth[30]
    u = Update(people[0], np.zeros(J), [0, 1], 0.0, 0.0, {0: 30, 1: 30}, people, [1, 2])
    health = [{"camera": "cam01", "read": 3, "detected": 2, "dropped": 1, "found": 1.0, "recent_found": 1.0,
               "recent_people": 1.0, "state": "running"}]  # a camera that lost one of the two people: amber
    img = render(u, health, limbs, {"persons": 2, "update_fps": 0.0, "latency_ms_median": 0.0})
    for n in (1, 2):
        assert (img == np.array(PEOPLE[n - 1], np.uint8)).all(axis=-1).sum() > 50, n
    row = img[425:445].reshape(-1, 3).astype(float)
    ink = row[np.abs(row - 24).max(axis=1) > 100].mean(axis=0)  # the health line's text colour
    assert np.linalg.norm(ink - AMBER) < np.linalg.norm(ink - GREEN), ink
    img = render(Update(people[0], np.zeros(J), [0, 1], 0.0, 0.0, {}, people, [3, 4]), [], limbs)  # numbers: colours
    assert all((img == np.array(PEOPLE[n - 1], np.uint8)).all(axis=-1).sum() > 50 for n in (3, 4))
    none = Update(np.full((J, 3), np.nan), np.zeros(J), [0, 1], 0.0, 0.0, {}, np.zeros((0, J, 3)), [])
    assert render(none, [], limbs).shape == (600, 960, 3)


@pytest.mark.slow
@pytest.mark.shared_data
def test_live_follows_two_people_from_their_videos(shared_data, tmp_path):
    """The engine end to end: 4 cameras' videos of a two-person crowd take played at their rate, each camera's
    detector (the take's keypoints replayed) giving up to 3 detections in shuffled slots; every update's people
    against the ground truth, each number one true person."""
    import scale_helpers as helpers

    from mocap.io.hdf5 import read_points3d
    from mocap.live import run_live
    from mocap.live.engine import LiveEngine
    from mocap.live.sources import session_sources
    from mocap.session import Session

    helpers.register()
    session, truth = helpers.video_session(tmp_path / "take", shared_data / "bvh" / "cmu_01_01.bvh", frames=45,
                                           cameras=4, people=2)
    gt = read_points3d(session / "groundtruth" / "points3d.h5").xyz  # (F, 2, J, 3)
    s = Session(session)
    cfg = LiveConfig(detector="replay", model_path=str(truth), persons=3)
    engine = LiveEngine(s.rig(), session_sources(s, s.rig().names, True), cfg, realtime=True)
    engine.start()
    owner: dict[int, int] = {}
    errors, counts = [], []
    try:
        while engine.running():
            u = engine.latest_update
            if u is not None and len(set(u.frame_index.values())) == 1:  # every camera on the same frame
                f = next(iter(u.frame_index.values()))
                counts.append((len(u.numbers), int(np.isfinite(gt[f, :, :, 0]).any(axis=1).sum())))  # found, there
                for X, n in zip(u.people, u.numbers, strict=True):
                    d = np.linalg.norm(X[None] - gt[f], axis=-1)  # (2, J)
                    gap = np.array([np.nanmean(r) if np.isfinite(r).any() else np.inf for r in d])
                    who = int(np.argmin(gap))
                    errors.append(gap[who])
                    assert owner.setdefault(n, who) == who, f"frame {f}: person {n} switched"
            time.sleep(0.03)
    finally:
        engine.stop()
    found, there = np.array(counts).T  # the second person walks in at frame 9
    assert len(counts) >= 10 and np.mean(found == there) >= 0.8 and (found <= there).all(), counts
    assert np.median(errors) < 0.03, np.median(errors)  # the synthetic 2 px noise
    assert sorted(set(owner.values())) == [0, 1]
    summary = run_live(session, cfg, from_videos=True)
    assert summary["persons"] == 3 and summary["people_most"] == 2 and len(summary["person_numbers"]) >= 2
    assert all(c["recent_people"] == 2 for c in summary["cameras"]), summary["cameras"]  # both, at the end


def test_live_follows_the_sessions_detect_persons_when_it_is_a_number(tmp_path):
    from mocap.live.cli import live_persons

    assert live_persons(tmp_path, None) == 1  # the default, auto: one (auto counts people over a whole take)
    (tmp_path / "mocap.toml").write_text("[detect]\npersons = 3\n")
    assert live_persons(tmp_path, None) == 3
    assert live_persons(tmp_path, 2) == 2  # --persons


def test_a_detector_finding_nobody_as_an_empty_list_neither_stops_live_nor_counts_as_a_failure(tmp_path, monkeypatch):
    """With several people a detector may return [] (nobody): the worker used to die on it outside its guard, and
    live, its frames left in the queues, never ended."""
    import cv2

    import mocap.detect
    from mocap.live import run_live
    from mocap.types import Camera, Rig

    class Sometimes:
        keypoint_set = "blazepose33"

        def __init__(self):
            self.n = 0

        def __call__(self, image, ms):
            self.n += 1
            return [] if self.n % 2 else np.full((2, J, 3), np.nan)

        def close(self):
            pass

    monkeypatch.setattr(mocap.detect, "get_detector", lambda *a, **k: Sometimes())
    cams = []
    for k in range(2):
        T = np.eye(4)
        T[:3, 3] = [0.2 * k, 0.0, 3.0]
        cams.append(Camera(f"cam0{k + 1}", np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]]), np.zeros(5), T,
                           (64, 48)))
    from mocap.io.rig_files import write_rig

    (tmp_path / "calibration").mkdir()
    write_rig(Rig(tuple(cams)), tmp_path / "calibration" / "rig.toml")
    (tmp_path / "videos").mkdir()
    for c in cams:
        w = cv2.VideoWriter(str(tmp_path / "videos" / f"{c.name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
        for _ in range(10):
            w.write(np.zeros((48, 64, 3), np.uint8))
        w.release()
    t0 = time.monotonic()
    s = run_live(tmp_path, LiveConfig(detector="sometimes", persons=2), from_videos=True, seconds=20.0)
    assert time.monotonic() - t0 < 10, "live did not end with its videos"
    assert all(c["failed"] == 0 and c["detected"] + c["dropped"] == 10 for c in s["cameras"]), s["cameras"]
    assert s["people_most"] == 0 and all(c["recent_people"] == 0 for c in s["cameras"])
