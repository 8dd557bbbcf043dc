"""One-view toes on the side of their ray the foot does not point to (mocap.stages.refine_toes): the ray meets the
sphere round the ankle twice; the foot's usual direction in the shin's frame, from the frames two views measure,
says which."""

from dataclasses import replace

import numpy as np
import pytest

from mocap.stages import refine, triangulate
from mocap.stages.refine_toes import OFF_DEG, feet, shin_frames, with_toes, wrong_toes
from mocap.synth import CorruptionSpec, RigSpec, make_take, ring_rig


def _person():
    from body_synth import blazepose_keypoints, body_motion

    X = blazepose_keypoints(body_motion(200, 30.0, seed=3))
    rig = ring_rig(RigSpec(n_cameras=3, size=(1280, 720)), X.reshape(-1, 3))
    views = np.ones(X.shape[:2] + (3,), bool)
    return rig, X, views


def _other_side(rig, X, t, ankle, toe, cam=0):
    ray = X[t, toe] - rig.cameras[cam].center
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    return X[t, toe] - 2 * np.sum((X[t, toe] - X[t, ankle]) * ray, axis=-1, keepdims=True) * ray


def _angle_off(X, t, leg, usual_from):
    knee, ankle, toe, lh, rh = feet("blazepose33")[leg]
    B = shin_frames(usual_from, knee, ankle, lh, rh)
    d = usual_from[:, toe] - usual_from[:, ankle]
    local = np.einsum("tij,ti->tj", B, d / np.linalg.norm(d, axis=-1, keepdims=True))
    usual = np.median(local, axis=0)
    usual /= np.linalg.norm(usual)
    Bt = shin_frames(X, knee, ankle, lh, rh)[t]
    dt = X[t, toe] - X[t, ankle]
    lt = np.einsum("tij,ti->tj", Bt, dt / np.linalg.norm(dt, axis=-1, keepdims=True))
    return np.degrees(np.arccos(np.clip(lt @ usual, -1, 1)))


def test_feet_are_found_by_name_and_a_set_without_toes_has_none():
    assert feet("blazepose33") == [(25, 27, 31, 23, 24), (26, 28, 32, 23, 24)]
    assert len(feet("halpe26")) == 2  # big toes
    assert feet("coco17") == []


def test_a_one_view_toe_on_the_wrong_side_is_found_with_its_other_side():
    rig, truth, views = _person()
    _, ankle, toe, _, _ = feet("blazepose33")[1]
    every = np.arange(len(truth))
    flipped = truth.copy()
    flipped[:, toe] = _other_side(rig, truth, every, ankle, toe, 1)
    off = _angle_off(flipped, every, 1, truth)
    span = np.flatnonzero(off > OFF_DEG + 10)[:20]  # where the ray's other crossing points well away
    assert len(span) == 20
    X = truth.copy()
    views[span, toe] = [False, True, False]  # the right toe seen by camera 1 alone
    X[span, toe] = _other_side(rig, truth, span, ankle, toe, 1)  # and refine on the ray's other crossing
    wrong, other = wrong_toes(rig, X, views, "blazepose33")
    assert wrong[span, 1].all() and not wrong[:, 0].any()
    assert wrong.sum() == len(span)
    assert np.allclose(other[span, 1], truth[span, toe], atol=1e-6)
    assert not wrong_toes(rig, truth, views, "blazepose33")[0].any()  # the right side: nothing to move


def test_with_toes_keeps_the_second_solve_only_when_it_leaves_fewer():
    rig, truth, views = _person()
    _, ankle, toe, _, _ = feet("blazepose33")[1]
    X = truth.copy()
    span = np.arange(100, 200)
    views[span, toe] = [False, True, False]
    X[span, toe] = _other_side(rig, truth, span, ankle, toe, 1)
    wrong = wrong_toes(rig, X, views, "blazepose33")[0][:, 1]
    n = int(wrong.sum())
    solved = (X, np.zeros(X.shape[:2]), views, "summary")
    calls = []

    def solve(start):  # a solve that stays where it starts (the toes moved)
        calls.append(start)
        return start, np.zeros(X.shape[:2]), views, "again"
    out = with_toes(solve, rig, solved, "blazepose33")
    assert len(calls) == 1 and out[3] == "again" and out[4] == n > 0
    assert np.allclose(out[0][wrong, toe], truth[wrong, toe]) and np.array_equal(out[0][~wrong], X[~wrong])
    out = with_toes(lambda start: (X, np.zeros(X.shape[:2]), views, "again"), rig, solved, "blazepose33")
    assert out[3] == "summary" and out[4] == 0  # a second solve as wrong as the first: the first kept
    lost = X.copy()
    lost[:, toe] = np.nan
    out = with_toes(lambda start: (lost, np.zeros(X.shape[:2]), views, "again"), rig, solved, "blazepose33")
    assert out[3] == "summary"  # a solve that drops the toes mends nothing
    unseen = views.copy()
    unseen[:, toe] = False  # a second solve that drops the toes' one view, leaving them where they were
    out = with_toes(lambda start: (X, np.zeros(X.shape[:2]), unseen, "again"), rig, solved, "blazepose33")
    assert out[3] == "summary"  # judged on the first solve's views: as wrong as before
    fixed = X.copy()
    fixed[wrong, toe] = truth[wrong, toe]
    fixed[:100, ankle] = np.nan  # the toes mended, but 100 ankles no longer placed
    out = with_toes(lambda start: (fixed, np.zeros(X.shape[:2]), views, "again"), rig, solved, "blazepose33")
    assert out[3] == "summary" and n < 100


@pytest.mark.shared_data
@pytest.mark.slow
def test_refine_turns_back_toes_one_camera_saw_on_the_wrong_side(shared_data):
    """3 cameras over 180°, zoom 2.1 (the feet leave the images), CMU 01_03 at 30 fps: one-view toes that refine
    followed to the side of their ray the foot does not point to."""
    take = make_take(str(shared_data / "bvh" / "cmu_01_03.bvh"), 1000, 30.0,
                     RigSpec(n_cameras=3, arc_deg=180.0, zoom=2.1), CorruptionSpec(2.0, 0.05, 0.10, seed=134))
    tri = triangulate.run(take.rig, take.keypoints)
    toes = [toe for _, _, toe, _, _ in feet(take.keypoints.keypoint_set)]

    def toe_errors(on):
        out = refine.run(take.rig, take.keypoints, tri, replace(refine.Config(), toes=on))[0]
        return np.linalg.norm(out.xyz[:, 0, toes] - take.truth[:, toes], axis=-1), out.info.get("toes", {})
    alone, _ = toe_errors(False)
    err, moved = toe_errors(True)
    assert moved.get("person1", 0) > 0
    assert (err > 0.15).sum() < 0.7 * (alone > 0.15).sum(), ((err > 0.15).sum(), (alone > 0.15).sum())
    assert np.nanpercentile(err, 99) < np.nanpercentile(alone, 99)
    assert np.isfinite(err).sum() >= np.isfinite(alone).sum() - 5
