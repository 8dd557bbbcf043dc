"""Identities made of detections that are no one (mocap.multi.rays, mocap.multi.identity.two_views). A 12-camera,
5-person take of 6,000 frames (synthetic, with detections of other things) had two more "people": one from two
cameras' clutter whose lines met 12-14 m behind both cameras (rays never meet there: no 3D point was left of it,
and it failed the take), and one seen by two cameras in most of its frames and by three in 18 of 95, whose views
did not meet as one body and whose spot the other cameras saw empty (kept as a sixth actor: the rule that drops
such identities looked only at those never seen by a third camera)."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.multi.associate import pair_affinity
from mocap.multi.rays import ray_ray_distance
from mocap.multi.track import associate_take
from mocap.synth import RigSpec
from mocap.synth.figure import walking_figure
from mocap.synth.groundtruth import ring_rig
from mocap.synth.multiperson import in_place
from mocap.types import Keypoints2D
from tests.multi_views import people_views


def test_rays_that_meet_only_behind_their_cameras_are_far_apart():
    """Two cameras 2 m apart looking the same way (+z) at a point 3 m ahead: their rays meet there. Their rays
    turned back (the lines the same) part from the cameras on: the distance of the half-lines (brute force over
    both rays), the cameras' 2 m, not the lines' 0."""
    o1, o2, X = np.zeros(3), np.array([2.0, 0.0, 0.0]), np.array([1.0, 0.0, 3.0])
    d1, d2 = (X - o1) / np.linalg.norm(X - o1), (X - o2) / np.linalg.norm(X - o2)
    assert ray_ray_distance(o1, d1, o2, d2) == pytest.approx(0.0, abs=1e-12)
    t = np.linspace(0.0, 20.0, 4001)[:, None]
    brute = np.linalg.norm((o1 + t * -d1)[:, None] - (o2 + t * -d2)[None], axis=-1).min()
    assert ray_ray_distance(o1, -d1, o2, -d2) == pytest.approx(brute, abs=1e-3)
    assert brute == pytest.approx(2.0, abs=1e-9)  # they part from the cameras' centres on
    O = np.stack([o1, o2])
    rays = np.stack([np.broadcast_to(-d1, (5, 3)), np.broadcast_to(-d2, (5, 3))])  # two detections of 5 joints
    assert pair_affinity(O, rays, np.array([0, 1]), 4)[0, 1] > 1.0


def test_ray_distances_are_those_of_half_lines_whatever_their_directions():
    """Random pairs (both closest points ahead, one or both behind, parallel, pointing away from each other),
    broadcast as the association calls it: the least distance over points of both rays (a bounded minimiser)."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(5)
    o1, o2 = rng.normal(size=(40, 3)) * 3, rng.normal(size=(40, 3)) * 3
    d1, d2 = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    d1[:2] = d2[:2] = [0.0, 0.0, 1.0]  # parallel, the same way
    d2[2:4] = -d1[2:4]  # opposite ways
    d1, d2 = d1 / np.linalg.norm(d1, axis=1, keepdims=True), d2 / np.linalg.norm(d2, axis=1, keepdims=True)
    got = ray_ray_distance(o1[:, None], d1[:, None], o2[:, None], d2[:, None])[:, 0]  # (40, 1) → (40,)

    def least(i):
        def gap(st):
            return float(np.sum((o1[i] + st[0] * d1[i] - o2[i] - st[1] * d2[i]) ** 2))
        starts = ([0.0, 0.0], [5.0, 5.0], [20.0, 1.0], [1.0, 20.0])
        return min(np.sqrt(minimize(gap, x0, bounds=[(0, None), (0, None)], method="L-BFGS-B",
                                    options={"ftol": 1e-15, "gtol": 1e-12}).fun) for x0 in starts)

    np.testing.assert_allclose(got, [least(i) for i in range(40)], atol=1e-5)
    nan = ray_ray_distance(o1[:2], np.array([[np.nan] * 3, d1[1]]), o2[:2], d2[:2])
    assert np.isnan(nan[0]) and np.isfinite(nan[1])


def behind_take(frames: int = 240):
    """A walker twelve cameras with wide lenses see; cameras 1 and 2 (30° apart) each detect, for ``frames``
    frames, a figure whose keypoints' lines meet in a walker 7 m behind both cameras, where four other cameras
    look (each camera's view of the walker's reflection through its centre: a detection of something else, the
    same figure in both)."""
    walker = in_place(walking_figure(frames, fps=60.0, seed=0), "coco17")
    rig = ring_rig(RigSpec(n_cameras=12, zoom=0.4), walker[:, None])
    mid = np.nanmean(walker.reshape(-1, 3), axis=0)
    far = walker - mid + np.mean([3 * rig.cameras[c].center - 2 * mid for c in (0, 1)], axis=0)  # 2 radii out
    data = np.concatenate([people_views(rig, walker[:, None]), np.full((frames, 12, 1, 17, 3), np.nan)], axis=2)
    for c in (0, 1):
        cam = rig.cameras[c]
        assert np.all(((far - cam.center) @ cam.R[2]) < 0)  # behind the camera
        uv = cam.project((2 * cam.center - far).reshape(-1, 3)).reshape(frames, 17, 2)
        w, h = cam.size
        inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
        assert inside.all(), inside.mean()  # the premise: in both images
        data[:, c, 1] = np.concatenate([uv, np.full((frames, 17, 1), 0.9)], axis=-1)
    return rig, Keypoints2D(data, rig.names, "coco17", 60.0)


def test_two_cameras_detections_meeting_behind_them_are_no_person():
    """Four seconds of the figure behind cameras 1 and 2: one person, the walker (two before)."""
    rig, kp = behind_take()
    slots, summary = associate_take(rig, kp, "auto", progress=False)
    assert summary["persons_found"] == 1, summary
    assert (slots[:, :, 0] == 0).all(), "the walker, in every view and frame"


@pytest.mark.parametrize("third, persons", [(0.25, 1), (0.75, 2)])
def test_a_two_view_identity_a_third_camera_sees_at_times_is_judged_as_two_view(third, persons):
    """The figure only cameras 1 and 2 detect for 4 s, their views 15 px apart (not one body), camera 3 detecting
    it too in a quarter of the frames: still an identity of two views, whose spot camera 4 sees empty: no person
    (kept before: a third view once was enough); camera 3 detecting it in three quarters of the frames: a person
    three cameras confirm, kept."""
    from tests.test_multi_apart import two_view_take

    rig, kp, seen = two_view_take(15.0)
    data = kp.data.copy()
    F = len(data)
    shown = (np.arange(F) % 4) < 4 * third  # a quarter (or three quarters) of the frames, spread over the take
    data[shown, 2, 1, :, :2] = seen[shown, 2]
    data[shown, 2, 1, :, 2] = 0.9
    slots, summary = associate_take(rig, Keypoints2D(data, rig.names, "coco17", 60.0), "auto", progress=False)
    assert summary["persons_found"] == persons, summary
    if persons == 2:
        assert ((slots[:, 2, 1] >= 0) == shown).mean() > 0.9  # camera 3's view is the figure's


def left_take(covered: int):
    """Two walkers eight cameras see; the second leaves at frame 120 (no view detects it after), while camera 1
    goes on detecting something else for 2 s where it was (its view of the walker had it stayed, 10 px
    lower). For ``covered`` frames after it left, every other camera has a detection over that spot (its keypoints
    in another order in each: someone who may hide it there)."""
    F, leave = 240, 120
    a = in_place(walking_figure(F, fps=60.0, seed=0), "coco17")
    b = in_place(walking_figure(F, fps=60.0, seed=1), "coco17") + [1.5, 0.0, 0.0]
    truth = np.stack([a, b], axis=1)
    rig = ring_rig(RigSpec(n_cameras=8), truth)
    seen = people_views(rig, truth)  # (F, C, 2, J, 3)
    data = np.concatenate([seen, np.full((F, 8, 1, 17, 3), np.nan)], axis=2)
    data[leave:, :, 1] = np.nan
    data[leave:, 0, 1] = seen[leave:, 0, 1] + [0.0, 10.0, 0.0]
    hid = slice(leave, leave + covered)
    for c in range(1, 8):
        data[hid, c, 2] = seen[hid, c, 1][:, np.random.default_rng(c).permutation(17)]
    return rig, Keypoints2D(data, rig.names, "coco17", 60.0), leave


@pytest.mark.parametrize("covered", [0, 120, 30])
def test_one_cameras_detections_after_a_person_left_are_not_its_own(covered):
    """The person's track ends where it left (old code: it went on, on camera 1's detections, for 2 s: no 3D
    point, yet counted as frames the person was there, their points missing); with someone in every other
    camera who may hide it there, those frames stay its own; with someone there for its first half second only,
    the rest of them go (a tail left out as a whole once its frames were mostly seen empty)."""
    rig, kp, leave = left_take(covered)
    slots, summary = associate_take(rig, kp, "auto", progress=False)
    assert summary["persons_found"] == 2, summary
    seen = np.flatnonzero((slots[:, :, 1] >= 0).any(axis=1))
    assert seen[0] == 0 and (slots[:leave, :, 1] >= 0).sum(axis=1).min() >= 2
    assert seen[-1] == leave + covered - 1, (seen[-1], leave + covered)
    assert summary["one_view_tail_frames_dropped"] == len(slots) - leave - covered, summary
    if not covered:
        _, second = associate_take(rig, kp, "auto", progress=False, two_view_birth=1, quiet=True)
        assert second["one_view_tail_frames_dropped"] == 0  # detect's second pass looks there for missed detections


def test_with_three_cameras_a_person_all_three_saw_at_times_is_not_a_two_view_one():
    """With three cameras, a third view is every camera there is: an identity seen by two of them in most frames
    and by all three at times stays out of the two-view rules (a real person often is); with four, it is judged
    by them."""
    from mocap.multi.identity import two_views
    from mocap.multi.tracklets import Track

    slots = [np.array([0, 0, -1, -1])] * 3 + [np.array([0, 0, 0, -1])]  # three frames in two views, one in three
    t = Track(X=np.zeros((17, 3)), last=3, first=0, frames=[0, 1, 2, 3], slots=slots, max_views=3,
              skel={f: np.zeros((17, 3)) for f in range(4)})
    assert two_views(t, 4) and not two_views(t, 3)
    t.slots = [np.array([0, 0, 0, -1])] * 3 + [np.array([0, 0, -1, -1])]  # three views in most frames
    assert not two_views(t, 4)


def test_a_spot_at_the_image_edge_is_covered_by_a_detection_of_its_part_in_the_image():
    """A person seen by camera 1 alone; cameras 2 and 3 see it to the hips only (their images end below them), and
    each has a detection over every keypoint there (someone in front, or the person as far as it shows): not seen
    empty (the projection's box had held the legs below the image, which no detection's box can cover)."""
    from types import SimpleNamespace

    from mocap.multi.seen import seen_empty
    from mocap.types import Camera, Rig

    X = in_place(walking_figure(2, fps=60.0, seed=0), "coco17")[0]
    given = ring_rig(RigSpec(n_cameras=4), X[None, None])
    cams, data = [], np.full((1, 4, 1, 17, 3), np.nan)
    for c, cam in enumerate(given.cameras):
        uv = cam.project(X)
        if c in (1, 2):
            h = int(np.max(uv[[11, 12], 1]) + 5)  # just below the hips
            cam = Camera(cam.name, cam.K, cam.dist, cam.cam_from_world, (cam.size[0], h), cam.model)
            shown = uv[:, 1] < h
            assert 5 <= shown.sum() < 17
            data[0, c, 0, shown, :2], data[0, c, 0, shown, 2] = uv[shown], 0.9
        cams.append(cam)
    tr = SimpleNamespace(cfg=SimpleNamespace(min_joints=4),
                         rays=SimpleNamespace(kp=SimpleNamespace(data=data), min_score=0.2, rig=Rig(tuple(cams))))
    assert not seen_empty(tr, 0, X, 0)
    data[0, 1:3] = np.nan  # nobody there: seen empty by both
    assert seen_empty(tr, 0, X, 0)
