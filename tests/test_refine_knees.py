"""One-view ankles on the knee's side of their ray (mocap.stages.refine_knees): one view puts an ankle on a ray
that meets the sphere of the shin round the knee twice; the point where the knee bends backwards is moved to the
other, and refine keeps it there."""

from dataclasses import replace

import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion

from mocap.geometry.camera import pixels_to_normalised
from mocap.keypoint_sets import get_keypoint_set
from mocap.stages import refine, refine_knees, triangulate
from mocap.synth import RigSpec, ring_rig
from mocap.types import Keypoints2D, Points3D

KS = get_keypoint_set("blazepose33")
J = {n: i for i, n in enumerate(KS.joints)}
FOOT = [J["left_ankle"], J["left_heel"], J["left_foot_index"]]
ONE = 3  # the camera that alone sees the left foot in ALONE
ALONE = slice(40, 200)
WRONG = slice(40, 150)  # where the ray's other point bends this walker's knee backwards (sine 0.27-0.96)


def _mirrored(rig, X: np.ndarray, cam: int) -> np.ndarray:
    """X with its left ankle on the other point of cam's ray as far from the knee (heel and toes moved alike)."""
    o = rig[cam].center
    a, k = J["left_ankle"], J["left_knee"]
    ray = X[:, a] - o
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    near = o + np.sum((X[:, k] - o) * ray, axis=-1, keepdims=True) * ray
    out = X.copy()
    out[:, FOOT] += (2 * near - 2 * X[:, a])[:, None]
    return out


@pytest.fixture(scope="module")
def walker():
    X = blazepose_keypoints(body_motion(240, 60.0, seed=0))
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), X)
    return rig, X


def test_the_legs_of_a_set_and_what_lies_below_each_ankle():
    legs = refine_knees.legs("blazepose33")
    assert [leg[:3] for leg in legs] == [(J["left_hip"], J["left_knee"], J["left_ankle"]),
                                         (J["right_hip"], J["right_knee"], J["right_ankle"])]
    assert legs[0][3] == (J["left_heel"], J["left_foot_index"])
    coco = get_keypoint_set("coco17").joints
    assert refine_knees.legs("coco17")[1][:3] == (coco.index("right_hip"), coco.index("right_knee"),
                                                  coco.index("right_ankle"))
    assert refine_knees.legs("coco17")[0][3] == ()  # no foot keypoints below coco's ankles
    halpe = get_keypoint_set("halpe26").joints  # its small toes hang on limbs only, not bones
    assert {halpe[j] for j in refine_knees.legs("halpe26")[1][3]} == {"right_big_toe", "right_small_toe", "right_heel"}


def test_backward_bend_is_the_sine_of_a_knee_bent_the_wrong_way():
    X = np.zeros((2, 33, 3))
    X[:, J["left_hip"]], X[:, J["right_hip"]] = [0.1, 0, 1.0], [-0.1, 0, 1.0]  # facing -y: left is +x
    bent = np.radians(30)
    for side, x in (("left", 0.1), ("right", -0.1)):  # both knees bend the same way about the same axis
        X[:, J[f"{side}_knee"]] = [x, 0, 0.55]
        X[0, J[f"{side}_ankle"]] = [x, 0.4 * np.sin(bent), 0.55 - 0.4 * np.cos(bent)]  # shin back (+y): a knee's bend
        X[1, J[f"{side}_ankle"]] = [x, -0.4 * np.sin(bent), 0.55 - 0.4 * np.cos(bent)]  # shin forwards: hyperextended
        b = refine_knees.backward_bend(X, (J["left_hip"], J["right_hip"]), J[f"{side}_hip"], J[f"{side}_knee"],
                                       J[f"{side}_ankle"])
        np.testing.assert_allclose(b, [-0.5, 0.5], atol=1e-12)


def test_unbend_puts_a_one_view_ankle_back_on_the_knees_side(walker):
    rig, X = walker
    views = np.ones((len(X), 33, 4), bool)
    views[ALONE, FOOT] = np.arange(4) == ONE
    views[100:110, FOOT] = False  # no view at all for 10 frames: the shin's offset from the knee interpolated
    wrong = X.copy()
    wrong[ALONE] = _mirrored(rig, X, ONE)[ALONE]
    assert refine_knees.hyperextended(X, views, "blazepose33") == 0
    assert refine_knees.hyperextended(wrong, views, "blazepose33") > 50
    fixed, moved = refine_knees.unbend(rig, wrong, views, "blazepose33")
    err = np.linalg.norm(fixed[:, FOOT] - X[:, FOOT], axis=-1)
    was = np.linalg.norm(wrong[:, FOOT] - X[:, FOOT], axis=-1)
    one = views[:, FOOT[0]].sum(-1) == 1
    # every one-view frame is back on the truth: those where the knee bent backwards, and those the track from
    # them through the run decides (the wrong side there bends the knee the right way, or hardly at all)
    assert np.all(err[one, 0] < 1e-9) and moved[one, 0].all()
    assert np.max(err[100:110]) < 0.1 * np.median(was[100:110, 0])  # the unseen frames follow
    assert not moved[:, 1].any() and np.array_equal(fixed[:, :FOOT[0]], wrong[:, :FOOT[0]])  # nothing else


def _take(rig, X, noise_px=1.0, seed=0):
    rng = np.random.default_rng(seed)
    uv = np.moveaxis(rig.project(X), 0, 1) + rng.normal(0, noise_px, (len(X), len(rig), 33, 2))
    data = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], axis=-1)  # (F, C, J, 3)
    others = np.arange(len(rig)) != ONE
    data[ALONE, others[:, None] & np.isin(np.arange(33), FOOT)[None]] = np.nan  # only cam ONE sees the left foot
    return Keypoints2D(data[:, :, None], rig.names, "blazepose33", 60.0)


def test_refine_takes_a_foot_from_the_wrong_side_of_its_ray_back(walker):
    """The left foot seen by one camera for 2.7 s, the start on the ray's other side for 1.8 s of it (as refine
    carried it there from a tangent): refine alone keeps it there (both sides fit the image and the bones);
    with refine.knees it comes back to the truth."""
    rig, X = walker
    kp = _take(rig, X)
    tri = triangulate.run(rig, kp)
    start = tri.xyz.copy()
    start[WRONG, 0] = _mirrored(rig, X, ONE)[WRONG]
    init = Points3D(start, tri.reproj_err, tri.views, tri.camera_names, tri.keypoint_set, tri.fps, tri.info)
    cfg = refine.Config()
    errs = {}
    for knees in (False, True):
        out = refine.run(rig, kp, init, replace(cfg, knees=knees))[0]
        errs[knees] = np.linalg.norm(out.xyz[ALONE, 0, FOOT] - X[ALONE][:, FOOT], axis=-1)
        if knees:
            assert out.info["knees"]["person1"] > 50
    assert np.median(errs[False][:110, 0]) > 0.4  # refine alone stays on the wrong side (0.58-0.75 m off)
    assert np.median(errs[True][:, 0]) < 0.01 and np.percentile(errs[True], 95) < 0.03


def test_a_leg_is_not_judged_where_one_view_places_its_knee_or_a_hip(walker):
    """A knee or a hip one view places can be off along its ray: the bend then measures nothing (a knee 0.18 m
    off made a good ankle look bent backwards on a synthetic crowd take) and no ankle is moved."""
    rig, X = walker
    views = np.ones((len(X), 33, 4), bool)
    views[ALONE, FOOT] = np.arange(4) == ONE
    wrong = X.copy()
    wrong[ALONE] = _mirrored(rig, X, ONE)[ALONE]
    for joint in ("left_knee", "right_hip"):
        v = views.copy()
        v[:, J[joint]] = np.arange(4) == ONE
        assert refine_knees.hyperextended(wrong, v, "blazepose33") == 0
        fixed, moved = refine_knees.unbend(rig, wrong, v, "blazepose33")
        assert not moved.any() and np.array_equal(fixed, wrong)


def test_a_point_refine_left_out_does_not_stop_the_track(walker):
    """A one-view ankle refine left out (NaN, its view still listed) in the tracked part of the run: passed over,
    the frames after it still tracked back to the truth (they stayed on the wrong side when it was taken as a
    choice)."""
    rig, X = walker
    views = np.ones((len(X), 33, 4), bool)
    views[ALONE, FOOT] = np.arange(4) == ONE
    wrong = X.copy()
    wrong[ALONE] = _mirrored(rig, X, ONE)[ALONE]
    wrong[160, FOOT] = np.nan
    fixed, moved = refine_knees.unbend(rig, wrong, views, "blazepose33")
    err = np.linalg.norm(fixed[161:200, FOOT[0]] - X[161:200, FOOT[0]], axis=-1)
    assert np.all(err < 1e-9) and moved[161:200, 0].all() and np.isnan(fixed[160, FOOT]).all()


def test_a_solve_that_leaves_more_bent_knees_is_not_kept(walker, monkeypatch):
    """Refined again from the moved ankles, a solve that leaves more knees bent backwards (on the frames the first
    solve judged) is dropped: the first one stands, nothing recorded as moved."""
    rig, X = walker
    kp = _take(rig, X)
    views = np.ones((len(X), 33, 4), bool)
    views[ALONE, FOOT] = np.arange(4) == ONE
    first = X.copy()
    first[100:150] = _mirrored(rig, X, ONE)[100:150]  # bent backwards in some of these frames
    worse = X.copy()
    worse[ALONE] = _mirrored(rig, X, ONE)[ALONE]  # in more of them
    assert 0 < refine_knees.hyperextended(first, views, "blazepose33") < refine_knees.hyperextended(worse, views,
                                                                                                  "blazepose33")
    err = np.zeros(first.shape[:2])
    monkeypatch.setattr(refine, "refine_person", lambda *a, **k: (worse, err, views, "again"))
    segments = (KS.bones, (), KS.pairs)
    out = refine._with_knees(rig, kp.xy[:, :, 0], np.ones(kp.shape[:2] + (33,)), kp, 0, (first, err, views, "first"),
                             segments, None, refine.Config())
    assert out[3] == "first" and out[4] == 0 and out[0] is first
    monkeypatch.setattr(refine, "refine_person", lambda *a, **k: (X, err, views, "again"))  # one that mends them
    out = refine._with_knees(rig, kp.xy[:, :, 0], np.ones(kp.shape[:2] + (33,)), kp, 0, (first, err, views, "first"),
                             segments, None, refine.Config())
    assert out[3] == "again" and out[4] > 0


def test_several_people_each_judged_on_their_own(walker):
    """Two walkers 3 m apart, the second started on the wrong side: only the second is moved and recorded."""
    rig0, X = walker
    X2 = np.stack([X, X + [3.0, 0.0, 0.0]], axis=1)  # (F, 2, J, 3)
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), X2)
    kps = [_take(rig, X2[:, p], seed=p) for p in range(2)]
    kp = Keypoints2D(np.concatenate([k.data for k in kps], axis=2), rig.names, "blazepose33", 60.0)
    tri = triangulate.run(rig, kp)
    start = tri.xyz.copy()
    start[WRONG, 1] = _mirrored(rig, X2[:, 1], ONE)[WRONG]
    init = Points3D(start, tri.reproj_err, tri.views, tri.camera_names, tri.keypoint_set, tri.fps, tri.info)
    out = refine.run(rig, kp, init, refine.Config())[0]
    assert set(out.info["knees"]) == {"person2"}
    err = np.linalg.norm(out.xyz[ALONE, 1, FOOT[0]] - X2[ALONE, 1, FOOT[0]], axis=-1)
    assert np.median(err) < 0.01


def test_the_track_goes_by_the_shins_motion_not_its_last_place():
    """Two decided frames of a shin moving 0.1 m a frame; in the third, the ray's other point lies nearer the last
    shin (0.03 m) than the shin's next place (0.1 m): the motion carried on (0.2 m) picks the right one."""
    shins = np.zeros((4, 2, 3))
    shins[:, 1, 0] = [0.0, 0.1, 0.2, 0.3]  # candidate 1: the shin moving on
    shins[:, 0, 0] = [0.5, 0.5, 0.13, 0.5]  # candidate 0: near the last place in frame 2
    sure = np.array([True, True, False, False])
    pick = np.array([1, 1, 0, 0])
    choice = np.zeros(4, int)
    choice[0] = 1
    refine_knees._track([0, 1, 2, 3], shins, sure, pick, choice)
    assert choice.tolist() == [1, 1, 1, 1]


def test_the_report_counts_each_persons_moved_ankles_and_toes(tmp_path):
    """The report's person table says how many one-view ankles and toes refine moved (``info["knees"]``,
    ``info["toes"]``), for that person."""
    from test_view_synth import two_person_session

    from mocap import report
    from mocap.io.hdf5 import read_points3d, write_points3d

    session, _ = two_person_session(tmp_path / "two", frames=30)
    pts = read_points3d(session.points3d("triangulated"))
    refined = Points3D(pts.xyz, pts.reproj_err, pts.views, pts.camera_names, pts.keypoint_set, pts.fps,
                       {"stage": "refined", "knees": {"person2": 12}, "toes": {"person1": 7}})
    write_points3d(refined, session.points3d("refined"))
    m = report.build(session, cfg=report.Config(overlay_videos=False, worst_frames=0))
    assert "knees_moved" not in m["persons"][0] and m["persons"][1]["knees_moved"] == 12
    html = (session.root / "report" / "report.html").read_text()
    assert html.count("one-view ankles refine moved to their ray&#x27;s other side") == 1 and "12 (frame, leg)" in html
    assert m["persons"][0]["toes_moved"] == 7 and "toes_moved" not in m["persons"][1]
    assert html.count("one-view toes refine moved to their ray&#x27;s other side") == 1


LATE = slice(150, 200)  # the part of ALONE where the ray's other point bends this walker's knee the right way too


def _wrong_late(rig, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(views (T, J, C): the left foot seen by camera ONE alone in ALONE; the points with that foot on the ray's
    wrong side in LATE)."""
    views = np.ones((len(X), 33, 4), bool)
    views[ALONE, FOOT] = np.arange(4) == ONE
    wrong = X.copy()
    wrong[LATE] = _mirrored(rig, X, ONE)[LATE]
    return views, wrong


def test_two_views_a_shins_length_from_the_knee_take_a_run_back_the_bend_cannot_tell(walker):
    """Where the ray's other point bends the knee the right way too (frames 150-200 of this walker), the bend tells
    nothing; two views that triangulated the ankle a shin's length from the knee, that refine left out (a run it
    carried on the wrong side), do: the run goes back to the truth. Two views elsewhere (an outlier pair, 0.5 m
    from the truth, not a shin's length from the knee) are no anchor: nothing moves."""
    rig, X = walker
    views, wrong = _wrong_late(rig, X)
    assert refine_knees.hyperextended(wrong, views, "blazepose33") == 0  # the bend sees nothing wrong
    assert refine_knees.implausible(rig, wrong, views, "blazepose33") == 0
    cases = ((slice(170, 176), 0.0, True), (slice(170, 176), 0.5, False),
             (slice(170, 172), 0.0, False))  # (two frames: two views meeting by chance, no evidence)
    for span, off, moves in cases:
        tri_views = views.copy()
        tri_views[span, FOOT[0]] = np.arange(4) < 2  # two views placed the ankle there (refine kept one)
        tri_xyz = X.copy()
        tri_xyz[span, FOOT[0]] += [0.0, off, 0.0]
        tri = (tri_xyz, tri_views)
        assert (refine_knees.implausible(rig, wrong, views, "blazepose33", tri=tri) > 0) == moves
        fixed, moved = refine_knees.unbend(rig, wrong, views, "blazepose33", tri=tri)
        if not moves:
            assert not moved.any() and np.array_equal(fixed, wrong)
            continue
        err = np.linalg.norm(fixed[LATE][:, FOOT] - X[LATE][:, FOOT], axis=-1)
        assert np.max(err) < 1e-6 and moved[LATE, 0].all()
        assert not moved[:150].any() and not moved[:, 1].any()  # the frames before were right: kept
        assert refine_knees.implausible(rig, fixed, views, "blazepose33", tri=tri) == 0


def test_a_camera_sees_an_ankle_missing_only_well_inside_its_image_and_where_no_one_may_hide_it(walker):
    """The free-space evidence: a camera that detected the person (three keypoints or more) and the leg's knee and
    not the ankle says the ankle is not where it would have seen it, well inside its image; not the one view
    itself, not a camera that missed the knee too, not near the image's edges (visible there, not empty), and not
    where another person's box covers the spot (they may hide it)."""
    rig, X = walker
    T = len(X)
    ankle, knee = FOOT[0], J["left_knee"]
    seen = np.ones((T, 4, 33), bool)
    seen[:, :, ankle] = False
    own, todo = np.full(T, ONE), np.ones(T, bool)
    P = X[:, ankle]

    def check(seen=seen, own=own, todo=todo, others=None, P=P):
        return refine_knees._seen_empty(rig, P, seen, knee, ankle, own, todo, others)

    empty, visible = check()
    assert empty.all() and visible.all()  # the walker is well inside every image
    assert not np.any(check(todo=np.zeros(T, bool)))  # only the frames asked about
    only = seen.copy()
    only[:, np.arange(4) != ONE] = False  # the one view's camera alone detected the person: no one says it
    assert not np.any(check(seen=only))
    few = np.zeros_like(seen)
    few[:, :, :2] = True  # two keypoints: not enough to say the person was seen
    assert not np.any(check(seen=few))
    kneeless = seen.copy()
    kneeless[:, :, knee] = False  # the knee missed too: the leg may be hidden (the other leg, a prop)
    assert not np.any(check(seen=kneeless))
    xy = np.stack([cam.project(X) for cam in rig], axis=1)  # (T, C, J, 2)
    boxes = refine_knees.person_boxes(xy[:, :, None], np.ones((T, 4, 1, 33), bool))
    assert boxes.shape == (T, 4, 1, 4)
    lo, hi = xy.min(axis=2), xy.max(axis=2)
    pad = 0.1 * (hi - lo)
    assert np.allclose(boxes[:, :, 0, :2], lo - pad) and np.allclose(boxes[:, :, 0, 2:], hi + pad)
    none = refine_knees.person_boxes(xy[:, :, None], np.zeros((T, 4, 1, 33), bool))
    assert np.isnan(none).all()  # no keypoint used: no box
    empty, visible = check(others=boxes)
    assert not empty.any() and visible.all()  # someone there may hide it
    assert check(others=boxes + 5000.0)[0].all()  # someone elsewhere in the image
    assert check(others=none)[0].all()  # no one else in these views
    w, h = rig[0].size  # a point one pixel in from camera 0's left edge: visible there, not empty
    xn = pixels_to_normalised(rig[0], np.array([1.0, h / 2.0]))
    edge = rig[0].R.T @ (3.0 * np.array([xn[0], xn[1], 1.0]) - rig[0].t)  # 3 m in front of camera 0
    alone = seen[:1].copy()
    alone[:, [1, 2]] = False  # cameras 1 and 2 saw no one: camera 0 alone judges
    e, v = refine_knees._seen_empty(rig, edge[None], alone, knee, ankle, np.array([ONE]), np.array([True]))
    assert v[0] and not e[0]
    inner = rig[0].R.T @ (3.0 * np.append(pixels_to_normalised(rig[0], np.array([w / 2.0, h / 2.0])), 1.0) - rig[0].t)
    e, v = refine_knees._seen_empty(rig, inner[None], alone, knee, ankle, np.array([ONE]), np.array([True]))
    assert v[0] and e[0]


def test_a_solve_that_leaves_ankles_out_is_no_mending(walker, monkeypatch):
    """A solve again that drops the one view of ankles the first placed leaves no side to judge there: those count
    against it (a 3-camera take's re-solve left 37 good ankles out and read as mended)."""
    rig, X = walker
    kp = _take(rig, X)
    views = np.ones((len(X), 33, 4), bool)
    views[ALONE, FOOT] = np.arange(4) == ONE
    first = X.copy()
    first[100:150] = _mirrored(rig, X, ONE)[100:150]
    dropped = X.copy()
    dropped[100:150, FOOT[0]] = np.nan  # the bent frames' ankles left out, nothing left to judge there
    assert refine_knees.hyperextended(dropped, views, "blazepose33") == 0
    assert refine_knees.lost_ankles(first, dropped, "blazepose33") == 50
    err = np.zeros(first.shape[:2])
    calls = []
    monkeypatch.setattr(refine, "refine_person", lambda *a, **k: calls.append(1) or (dropped, err, views, "again"))
    segments = (KS.bones, (), KS.pairs)
    out = refine._with_knees(rig, kp.xy[:, :, 0], np.ones(kp.shape[:2] + (33,)), kp, 0, (first, err, views, "first"),
                             segments, None, refine.Config())
    assert calls == [1] and out[3] == "first" and out[4] == 0  # solved again, and that solve not kept


@pytest.mark.parametrize("other_visible, moves", [(False, True), (True, False)])
def test_a_side_a_camera_would_have_seen_is_left_for_one_out_of_its_sight(walker, monkeypatch, other_visible, moves):
    """The decision on the free-space evidence (its geometry in the test above): where cameras that saw the
    person see the refined side empty and the other side is out of their images, the run goes to the other side;
    where the other side is in their images too (at their edge, behind someone), nothing is sure: nothing moves.
    Frames 150-200, where the bend tells nothing."""
    rig, X = walker
    views, wrong = _wrong_late(rig, X)
    seen = np.ones((len(X), 4, 33), bool)
    seen[:, np.arange(4) != ONE, FOOT[0]] = False

    def fake(rig, P, seen, knee, ankle, own, todo, others=None):  # empty where P is the wrong point, in LATE
        wrong_here = np.zeros(len(P), bool)
        wrong_here[LATE] = np.linalg.norm(P[LATE] - wrong[LATE, ankle], axis=-1) < 1e-9
        return wrong_here & todo, (wrong_here | other_visible) & todo

    monkeypatch.setattr(refine_knees, "_seen_empty", fake)
    assert (refine_knees.implausible(rig, wrong, views, "blazepose33", seen) > 0) == moves
    fixed, moved = refine_knees.unbend(rig, wrong, views, "blazepose33", seen)
    if not moves:
        assert not moved.any() and np.array_equal(fixed, wrong)
        return
    err = np.linalg.norm(fixed[LATE][:, FOOT] - X[LATE][:, FOOT], axis=-1)
    assert np.max(err) < 1e-6 and moved[LATE, 0].all() and not moved[:150].any()
    assert refine_knees.implausible(rig, fixed, views, "blazepose33", seen) == 0
