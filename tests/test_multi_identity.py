"""One identity per person on what real two-person footage showed: a performer kicking and swinging the arms
fast beside one standing still (its limbs far from any prediction), the detector finding it twice in a view,
views it is missed in for a while, a detection shared while one hides the other, and a bystander beyond the
capture volume seen by two cameras."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mocap.bench.multiperson import score
from mocap.multi.body import body_cost, torso_centre, torso_mask
from mocap.multi.identity import merge_coinciding, one_owner, outside_volume
from mocap.multi.rays import duplicates
from mocap.multi.track import associate_take
from mocap.multi.tracklets import Track
from mocap.synth import RigSpec
from mocap.synth.figure import walking_figure
from mocap.synth.groundtruth import ring_rig
from mocap.synth.multiperson import CrowdTake, in_place
from mocap.types import Keypoints2D
from tests.multi_views import people_views


def kicker_beside_still(frames: int = 240, speed: float = 6.0, seed: int = 0, dup: bool = True) -> CrowdTake:
    """Two people 0.8 m apart: one swinging its limbs ``speed`` times faster than a walk (its feet up to
    0.3 m a frame at 60 fps, its body in place), one standing still; the kicker missed in each view for three
    runs of 12 frames; with ``dup``, in 30 % of the views a second detection of its upper body a few pixels off
    (what a detector or its second pass adds)."""
    rng = np.random.default_rng(seed)
    kicker = in_place(walking_figure(frames, fps=60.0 / speed, seed=seed), "coco17")
    still = in_place(walking_figure(frames, fps=60.0 * 50, seed=seed + 1), "coco17")
    truth = np.stack([kicker, still + [0.0, 0.8, 0.0]], axis=1)  # (F, 2, J, 3)
    rig = ring_rig(RigSpec(), truth)
    F, N, J, _ = truth.shape
    C = len(rig)
    uv = np.moveaxis(rig.project(truth.reshape(F, N * J, 3)).reshape(C, F, N, J, 2), 0, 1)
    S = 3
    data = np.full((F, C, S, J, 3), np.nan)
    owner = np.full((F, C, S), -1, np.int16)
    data[:, :, :2, :, :2] = uv + rng.normal(0, 2.0, uv.shape)
    data[:, :, :2, :, 2] = 0.9
    owner[:, :, :2] = [0, 1]
    gone = np.zeros((F, C), bool)
    for c in range(C):
        for start in rng.choice(F - 20, 3, replace=False):
            gone[start:start + 12, c] = True
    data[:, :, 0][gone] = np.nan
    owner[:, :, 0][gone] = -1
    if dup:
        d = (rng.random((F, C)) < 0.3) & ~gone
        part = data[:, :, 0].copy()
        part[..., 11:, :] = np.nan  # no hips or legs
        part[..., :2] += rng.normal(0, 4.0, part[..., :2].shape)
        data[:, :, 2][d] = part[d]
        owner[:, :, 2][d] = -2  # not a person of its own
    perm = np.argsort(rng.random((F, C, S)), axis=-1)
    data = np.take_along_axis(data, perm[..., None, None], axis=2)
    owner = np.take_along_axis(owner, perm, axis=2)
    kp = Keypoints2D(data, rig.names, "coco17", 60.0)
    return CrowdTake(rig, kp, truth, owner, np.full(owner.shape, -1, np.int16))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_fast_kicker_beside_a_still_person_keeps_one_identity_and_its_detections(seed):
    """Before: the kicker's detections cost more than its gate (its limbs far from the prediction) and a partial
    duplicate of it (no legs: cheaper) was taken instead; 70–75 % of person-frames associated right."""
    take = kicker_beside_still(seed=seed)
    assert np.nanmax(np.linalg.norm(np.diff(take.truth[:, 0], axis=0), axis=-1)) > 0.2  # m per frame
    slots, summary = associate_take(take.rig, take.keypoints, "auto", progress=False)
    s = score(take, slots)
    assert summary["persons_found"] == 2
    assert s["identity_switches"] == 0
    assert s["identities_per_person"] == [[s["identity_to_person"].index(p)] for p in range(2)]
    assert s["accuracy"] >= 0.99, s


def test_the_torso_weighs_as_much_as_every_joint():
    torso = torso_mask("coco17", 17)
    assert np.flatnonzero(torso).tolist() == [5, 6, 11, 12]  # shoulders and hips
    assert torso_mask("halpe26", 26)[[5, 6, 11, 12, 18, 19]].all()  # and Halpe's neck and hip
    assert not torso_mask("no_such_set", 17).any()
    cap = 0.25
    kick = np.full(17, cap)  # every limb and the head far from the prediction ...
    kick[torso] = 0.01  # ... the torso where predicted
    assert body_cost(kick, cap, torso, 4) < cap / 2 < float(np.mean(np.minimum(kick, cap)))
    other = np.full(17, 0.3)  # another person beside it: its torso as far as its limbs
    assert body_cost(other, cap, torso, 4) == pytest.approx(cap)
    assert body_cost(kick, cap, np.zeros(17, bool), 4) == pytest.approx(np.mean(kick))  # unknown set: plain
    X = np.zeros((17, 3))
    X[torso] = [[0, 0, 1.4], [0, 0.4, 1.4], [0, 0, 0.9], [0, 0.4, 0.9]]
    X[9] = [3.0, 0.0, 0.0]  # a wrist far out: the torso centre stays
    np.testing.assert_allclose(torso_centre(X, torso), [0.0, 0.2, 1.15])


def test_a_repeated_detection_is_the_duplicate_not_the_whole_one():
    rng = np.random.default_rng(0)
    body = np.concatenate([rng.uniform(100, 500, (17, 2)), np.full((17, 1), 0.9)], axis=1)
    other = body + [300.0, 0.0, 0.0]  # another person beside it
    part = body.copy()
    part[11:] = np.nan
    part[:11, :2] += 3.0  # a few pixels off
    data = np.stack([part, other, body])[None, None]  # (1, 1, 3, 17, 3)
    assert duplicates(data, 0.2, 4)[0, 0].tolist() == [True, False, False]
    data = np.stack([body, other])[None, None]
    assert not duplicates(data, 0.2, 4).any()


def _track(path: dict[int, tuple[float, float, float]], slots: np.ndarray | None = None) -> Track:
    frames = sorted(path)
    sl = [np.array([0, 0, -1, -1], np.int16) if slots is None else slots for _ in frames]
    return Track(np.zeros((17, 3)), frames[-1], frames[0], frames=frames, slots=sl, costs=[0.0] * len(frames),
                 path={f: np.asarray(c, float) for f, c in path.items()})


def test_identities_whose_bodies_coincide_are_one_and_people_side_by_side_are_not():
    a = _track({f: (0.01 * f, 0.0, 1.0) for f in range(60)})
    twin = _track({f: (0.01 * f + 0.05, 0.0, 1.0) for f in range(30, 80)})  # the same body, followed twice
    beside = _track({f: (0.01 * f, 0.45, 1.0) for f in range(60)})  # shoulder to shoulder
    out = merge_coinciding([a, twin, beside])
    assert len(out) == 2 and out[0] is a and out[1] is beside
    assert a.frames == list(range(80))


def test_a_shared_detection_goes_to_the_person_with_more_keypoints_in_it():
    front, behind = _track({0: (0, 0, 1), 1: (0, 0, 1)}), _track({0: (0, 1, 1), 1: (0, 1, 1)})
    slots = np.full((2, 4, 2), -1, np.int16)
    slots[:, :2, 0] = [0, 1]
    slots[:, 1:3, 1] = [1, 2]  # both hold view 1's slot 1 in both frames
    def mask(n: int) -> tuple[int, np.ndarray]:
        return 1, np.arange(17) < n  # slot 1, n of its keypoints this person's

    behind.own[(1, 1)] = mask(12)  # frame 1: mostly the one behind
    front.own[(0, 1)], front.own[(1, 1)] = mask(15), mask(5)
    behind.own[(0, 1)] = mask(2)
    assert one_owner(slots, [front, behind], 17) == 2
    assert slots[0, 1].tolist() == [1, -1] and slots[1, 1].tolist() == [-1, 1]


def test_a_bystander_beyond_the_capture_volume_is_not_reconstructed(caplog):
    """A person only two cameras can see (behind the others, across the room) is not a performer: the other
    cameras cannot confirm it; it is reported."""
    still = in_place(walking_figure(120, fps=3000.0, seed=0), "coco17")
    rig = ring_rig(RigSpec(), still[None].repeat(2, axis=0))
    far = 1.1 * (rig.cameras[0].center + rig.cameras[1].center) / 2  # behind cameras 1 and 2, outside the ring
    far[2] = 0.0
    inside, outside = _track({f: (0.0, 0.0, 1.0) for f in range(5)}), _track({f: far + [0, 0, 1] for f in range(5)})
    assert outside_volume(rig, [inside, outside]) == [False, True]
    truth = np.stack([still, still + far], axis=1)
    F, N, J, _ = truth.shape
    data = people_views(rig, truth)
    depth = np.stack([(truth @ cam.R.T + cam.t)[..., 2] for cam in rig.cameras], axis=1)  # (F, C, N, J)
    w, h = rig.cameras[0].size
    uv = data[..., :2]
    seen = (depth > 0) & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    data[~seen.all(axis=-1)] = np.nan
    assert (np.isfinite(data[0, :, 1, 0, 0]).sum() == 2), "the bystander is in two views"
    with caplog.at_level(logging.WARNING, logger="mocap.multi"):
        slots, summary = associate_take(rig, Keypoints2D(data, rig.names, "coco17", 60.0), "auto", progress=False)
    assert summary["persons_found"] == 1 and summary["persons_outside_volume"] == 1
    assert any("beyond the capture volume" in r.getMessage() for r in caplog.records)


def _part_of(kept: np.ndarray, detection: np.ndarray) -> bool:
    """Whether keypoints (J, 3) are a detection's, some of them left out (another body's in a merged one)."""
    ok = np.isfinite(kept[:, 0])
    return bool(ok.any()) and np.array_equal(kept[ok], detection[ok])


def test_the_camera_refinement_gets_every_person_one_after_another_never_two_mixed():
    from mocap.detect.select import all_people, one_person
    from mocap.synth import CorruptionSpec
    from mocap.synth.multiperson import CrowdSpec, make_crowd

    motions = [in_place(walking_figure(200, seed=i), "coco17") for i in range(2)]
    take = make_crowd(motions, "coco17", 60.0, CrowdSpec(people=2, enter_leave=False, clutter_rate=0.0),
                      RigSpec(), CorruptionSpec(seed=0))
    kp = all_people(take.rig, take.keypoints, "auto")
    F = take.keypoints.shape[0]
    assert kp.shape[:3] == (2 * F, len(take.rig), 1)
    owners = []
    for block in range(2):
        held = np.argwhere(np.isfinite(kp.data[block * F:(block + 1) * F, :, 0, :, 0]).any(-1))
        own = [take.owner[f, c, next(k for k in range(take.owner.shape[2]) if _part_of(
            kp.data[block * F + f, c, 0], take.keypoints.data[f, c, k]))] for f, c in held]
        own = np.array(own)
        merged_ok = own[own >= 0]
        owners.append(np.bincount(merged_ok).argmax())
        assert np.mean(own == owners[-1]) > 0.97  # one person per block (a merged detection aside)
        assert len(held) > 0.9 * F * len(take.rig)
    assert sorted(owners) == [0, 1]
    small = Keypoints2D(take.keypoints.data[:60], take.keypoints.camera_names, "coco17", 60.0)
    assert np.array_equal(all_people(take.rig, small, 1).data, one_person(take.rig, small).data, equal_nan=True)


def test_the_other_bodys_keypoints_in_a_merged_detection_are_left_out_of_the_person():
    """A view's detection of one person holding one body side of the person beside it (who is missed there):
    the association keeps the view for its person but records the other body's keypoints (keypoint_masks),
    which apply_slots leaves out, so triangulation never mixes the two bodies."""
    from mocap.multi.slots import apply_slots

    rng = np.random.default_rng(1)
    F = 120
    a = in_place(walking_figure(F, seed=3), "coco17")
    truth = np.stack([a, a + [0.0, 0.6, 0.0]], axis=1)
    rig = ring_rig(RigSpec(), truth)
    C, J = len(rig), 17
    uv = np.moveaxis(rig.project(truth.reshape(F, 2 * J, 3)).reshape(C, F, 2, J, 2), 0, 1)
    data = np.concatenate([uv + rng.normal(0, 1.5, uv.shape), np.full((F, C, 2, J, 1), 0.9)], axis=-1)
    side = np.array([1, 3, 5, 7, 9, 11, 13, 15])  # the left side
    data[50:70, 0, 0, side] = data[50:70, 0, 1, side]  # person 1's left side in person 0's detection ...
    data[50:70, 0, 1] = np.nan  # ... and person 1 missed in that view
    kp = Keypoints2D(data, rig.names, "coco17", 60.0)
    slots, summary = associate_take(rig, kp, 2, progress=False)
    assert slots.shape[2] == 2
    p0 = int(np.argmin([np.nanmean(np.abs(kp.xy[10, 0, int(slots[10, 0, p])] - uv[10, 0, 0])) for p in range(2)]))
    held = 50 + np.flatnonzero(slots[50:70, 0, p0] >= 0)
    assert len(held) >= 18  # the view is kept ...
    own = apply_slots(kp, slots, summary["keypoint_masks"])
    left_out = ~np.isfinite(own.xy[held, 0, p0, :, 0])
    assert left_out[:, side].mean() > 0.9  # ... without the other body's keypoints
    assert left_out[:, np.setdiff1d(np.arange(J), side)].mean() < 0.1
    assert np.isfinite(apply_slots(kp, slots).xy[held, 0, p0][:, side, 0]).all()  # without masks: everything


@pytest.mark.parametrize("jump", [0.3, 0.35])
def test_a_lunge_beyond_the_gate_stays_one_identity_without_lost_frames(jump):
    """The whole body 0.3–0.35 m further in one frame (beyond the tracker's gate): no second identity is born
    within a torso of the person, whose own detections it takes again at once (frames were lost while its gate
    grew back to it)."""
    rng = np.random.default_rng(0)
    F = 150
    a = in_place(walking_figure(F, seed=1), "coco17")
    a[60:] += [jump, 0.0, 0.0]
    truth = np.stack([a, in_place(walking_figure(F, seed=2), "coco17") + [0.0, 1.5, 0.0]], axis=1)
    rig = ring_rig(RigSpec(), truth)
    C, J = len(rig), 17
    uv = np.moveaxis(rig.project(truth.reshape(F, 2 * J, 3)).reshape(C, F, 2, J, 2), 0, 1)
    data = np.concatenate([uv + rng.normal(0, 1.5, uv.shape), np.full((F, C, 2, J, 1), 0.9)], axis=-1)
    slots, summary = associate_take(rig, Keypoints2D(data, rig.names, "coco17", 60.0), "auto", progress=False)
    assert summary["persons_found"] == 2
    assert min(p["frames_present"] for p in summary["people"]) >= F - 1


def test_the_camera_refinement_with_one_camera_refuses_instead_of_failing_in_the_association(caplog):
    """Several detections per view on a one-camera rig: the association needs two cameras; all_people falls
    back to the performer (as people_in_time does) and the camera refinement refuses with its own reason."""
    from mocap.detect.select import all_people, select_performer
    from mocap.stages import rig_refine
    from mocap.types import Rig

    truth = in_place(walking_figure(120, seed=0), "coco17")
    rig = Rig([ring_rig(RigSpec(), truth).cameras[0]])
    uv = np.moveaxis(rig.project(truth), 0, 1)  # (F, 1, J, 2)
    one = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], axis=-1)
    kp = Keypoints2D(np.stack([one, one + [80.0, 0.0, 0.0]], axis=2), rig.names, "coco17", 60.0)
    with caplog.at_level(logging.WARNING):
        got = all_people(rig, kp, "auto")
    assert np.array_equal(got.data, select_performer(rig, kp).data, equal_nan=True)
    assert any("no associated person" in r.getMessage() and "at least 2 cameras" in r.getMessage()
               for r in caplog.records)
    refined, report = rig_refine.run(rig, got)
    assert refined is None and report["reason"] == "refused: 1 cameras: at least 3 are needed"


def test_a_body_followed_twice_ends_where_the_later_of_the_two_ends_for_the_stitching():
    """merge_coinciding joins a twin that outlives the identity it coincides with: the joined identity ends
    where the twin ends (stitching a later track to it measures from there, not from the first one's end)."""
    from mocap.multi.track import TrackConfig
    from mocap.multi.tracklets import stitch

    def located(path: dict) -> Track:
        t = _track(path)
        t.last3d = t.frames[-1]
        t.X_start = np.tile(path[t.frames[0]], (17, 1)).astype(float)
        t.X_end = t.X3d = np.tile(path[t.frames[-1]], (17, 1)).astype(float)
        return t

    a = located({f: (0.01 * f, 0.0, 1.0) for f in range(60)})
    twin = located({f: (0.01 * f + 0.05, 0.0, 1.0) for f in range(30, 151)})  # the same body, followed longer
    again = located({f: (0.01 * f - 0.15, 0.0, 1.0) for f in range(170, 240)})  # lost 20 frames, found again
    merged = merge_coinciding([a, twin])
    assert len(merged) == 1 and np.allclose(merged[0].X_end, twin.X_end)
    out = stitch(merged + [again], TrackConfig(), 60.0)
    assert len(out) == 1 and out[0].frames == list(range(151)) + list(range(170, 240))


@pytest.mark.parametrize("stage", ["rig_refine", "sync"])
def test_the_stages_before_triangulate_associate_people_with_its_settings_and_key_on_them(tmp_path, monkeypatch,
                                                                                          stage):
    """rig_refine (all_people) and sync (people_in_time) run the association before triangulate does: with
    triangulate's association settings and min_score, which are then part of their cache key (with one person
    too: several detections per view are followed in 3D with them, mocap.detect.select.performer)."""
    import importlib

    from mocap.detect import select
    from mocap.session import Session
    from mocap.settings import load_config
    from mocap.synth import CorruptionSpec
    from mocap.synth.multiperson import CrowdSpec, make_crowd, write_crowd_session

    module = importlib.import_module(f"mocap.stages.{stage}")

    def resolved(settings) -> dict:  # rig_refine also keys on sync's settings (its check of a lagging camera)
        return {k: v for k, v in module.resolved(settings).items() if k != "sync_check"}

    wider = ["detect.persons=auto", "triangulate.match_max_m=0.3", "triangulate.min_score=0.4"]
    one = resolved(load_config(sets=["detect.persons=1", *wider[1:]])[0])
    assert one["association"]["match_max_m"] == 0.3 and one["min_score"] == 0.4
    auto = resolved(load_config(sets=wider[:1])[0])
    changed = resolved(load_config(sets=wider)[0])
    assert auto != changed and changed["association"]["match_max_m"] == 0.3 and changed["min_score"] == 0.4

    motions = [in_place(walking_figure(60, seed=i), "coco17") for i in range(2)]
    take = make_crowd(motions, "coco17", 60.0, CrowdSpec(people=2, enter_leave=False, clutter_rate=0.0),
                      RigSpec(), CorruptionSpec(seed=0))
    session = Session(write_crowd_session(take, tmp_path / "crowd"))
    seen = {}
    given = select.select_performer

    def spy(rig, kp, persons, cfg=None, min_score=0.2):
        seen.update(persons=persons, cfg=cfg, min_score=min_score)
        return given(rig, kp)

    monkeypatch.setattr(select, "all_people" if stage == "rig_refine" else "people_in_time", spy)
    module.main(session, load_config(session, sets=wider)[0], overwrite=True)
    assert seen["persons"] == "auto" and seen["cfg"].match_max_m == 0.3 and seen["min_score"] == 0.4


@pytest.mark.parametrize("occluded", [False, "same box", "nearer"])
def test_a_short_two_view_figure_another_camera_sees_empty_is_not_a_person(caplog, occluded):
    """A figure (a poster, a reflection, two views' detections meeting in 3D) only two cameras detect, for half
    a second, where the other cameras see the spot and detect nobody: not a person, reported. The same figure
    where the other cameras have someone in front of it (a detection over its box, not matching it) is kept:
    a person hidden behind another in those views."""
    walker = in_place(walking_figure(240, fps=60.0, seed=0), "coco17")
    figure = in_place(walking_figure(240, fps=3000.0, seed=1), "coco17") + [1.2, 0.0, 0.0]
    truth = np.stack([walker, figure], axis=1)
    rig = ring_rig(RigSpec(), truth)
    F, N, J, _ = truth.shape
    data = people_views(rig, truth)  # (F, C, 2, J, 3)
    shown = np.zeros(F, bool)
    shown[100:130] = True
    data[~shown, :, 1] = np.nan  # the figure in 30 frames only ...
    if occluded:  # ... someone else's detection over it in cameras 3 and 4: its joints in another order (each
        rng = np.random.default_rng(0)  # camera's own), in its box or one 2.5 times as large (a person much nearer)
        own = np.stack([data[shown][:, c, 1][:, rng.permutation(J)] for c in (2, 3)], axis=1)
        if occluded == "nearer":
            mid = np.nanmean(own[..., :2], axis=2, keepdims=True)
            own[..., :2] = mid + 2.5 * (own[..., :2] - mid)
        data[shown, 2:, 1] = own
    else:
        data[shown, 2:, 1] = np.nan  # ... and in cameras 1 and 2 only
    kp = Keypoints2D(data, rig.names, "coco17", 60.0)
    with caplog.at_level(logging.WARNING, logger="mocap.multi"):
        slots, summary = associate_take(rig, kp, "auto", progress=False)
    said = any("another camera saw the spot and detected nobody" in r.getMessage() for r in caplog.records)
    assert summary["persons_found"] == (2 if occluded else 1), summary["persons_found"]
    assert summary["persons_unconfirmed"] == (0 if occluded else 1) and said != occluded


@pytest.mark.parametrize("scale", [1.0, 0.8])
def test_another_body_where_a_person_was_lost_is_another_person(scale):
    """A person leaves the views (hidden in every one) and half a second later someone appears 0.5 m away: a
    body of another size (a child where an adult was) is another identity, even though the lost person's
    track was still waiting there; a body of the same size is taken for the person come back (nothing in the
    views tells them apart)."""
    F, gone, back = 300, 120, 150
    adult = in_place(walking_figure(F, fps=60.0, seed=0), "coco17")
    other = in_place(walking_figure(F, fps=60.0, seed=2), "coco17")
    centre = np.nanmean(other, axis=1, keepdims=True)
    other = (other - centre) * [scale, scale, scale] + centre * [1, 1, scale] + [0.5, 0.0, 0.0]
    truth = np.stack([adult, np.full_like(adult, np.nan)], axis=1)
    truth[gone:, 0] = np.nan
    truth[back:, 1] = other[back:]
    rig = ring_rig(RigSpec(), np.nan_to_num(np.stack([adult, other], 1)))
    J = truth.shape[2]
    uv = np.moveaxis(rig.project(truth.reshape(F, 2 * J, 3)).reshape(len(rig), F, 2, J, 2), 0, 1)
    data = np.concatenate([uv, np.where(np.isfinite(uv[..., :1]), 0.9, np.nan)], axis=-1)
    slots, summary = associate_take(rig, Keypoints2D(data, rig.names, "coco17", 60.0), "auto", progress=False)
    present = (slots >= 0).sum(axis=1) >= 2  # (F, P)
    assert summary["persons_found"] == (1 if scale == 1.0 else 2), summary["persons_found"]
    if scale != 1.0:
        assert present[:gone, 0].all() and not present[back:, 0].any() and present[back + 5:, 1].all()



@pytest.mark.parametrize("scale, kept", [(0.25, False), (0.6, True)])
def test_a_lasting_two_view_figure_not_body_sized_is_not_a_person(caplog, scale, kept):
    """A static figure two cameras detect all take long where the other cameras see the spot empty: not body-sized
    (joints within 0.4 m: two views' false detections meeting as a blob) it is dropped however long it lasts, and
    reported; a child's size (0.6) is a person seen by two cameras, kept as before."""
    walker = in_place(walking_figure(240, fps=60.0, seed=0), "coco17")
    still = in_place(walking_figure(240, fps=60.0, seed=1), "coco17")[:1].repeat(240, axis=0)
    figure = scale * (still - still[:, :1].mean(axis=-2, keepdims=True)) + [1.2, 0.0, 1.0]
    truth = np.stack([walker, figure], axis=1)
    rig = ring_rig(RigSpec(), truth)
    F, N, J, _ = truth.shape
    data = people_views(rig, truth)  # (F, C, 2, J, 3)
    data[:, :, 1] += np.random.default_rng(0).normal(0, 1.0, data[:, :, 1].shape) * [1, 1, 0]
    data[:, 2:, 1] = np.nan  # in cameras 1 and 2 only
    kp = Keypoints2D(data, rig.names, "coco17", 60.0)
    with caplog.at_level(logging.WARNING, logger="mocap.multi"):
        slots, summary = associate_take(rig, kp, "auto", progress=False)
    assert summary["persons_found"] == (2 if kept else 1), summary["persons_found"]
    assert summary["unconfirmed_not_body_sized"] == (0 if kept else 1)
    assert ("1 not body-sized" in caplog.text) != kept, caplog.text
