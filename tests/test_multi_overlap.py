"""Keypoints hidden behind another person weigh less (mocap.multi.overlap, triangulate and refine)."""

from __future__ import annotations

import numpy as np

from mocap.multi.overlap import MIN_OCCLUDED, occluded, sigma_ratio
from mocap.stages import refine, triangulate
from mocap.synth import RigSpec
from mocap.synth.figure import walking_figure
from mocap.synth.groundtruth import ring_rig
from mocap.synth.multiperson import in_place
from mocap.types import Keypoints2D

FRAMES = 60


def one_behind_the_other(seed: int = 0):
    """Two walkers 1 m apart on the line from the middle to camera 0 (at 30°): camera 0 sees person 1
    behind person 0, camera 2 (opposite) person 0 behind person 1; cameras 1 and 3 see them side by side."""
    a = np.radians(30.0)
    step = 0.5 * np.array([np.cos(a), np.sin(a), 0.0])
    people = [in_place(walking_figure(FRAMES, seed=seed + k), "coco17") for k in range(2)]
    truth = np.stack([people[0] + step, people[1] - step], axis=1)  # (F, 2, J, 3)
    return ring_rig(RigSpec(), truth), truth


def detections(rig, truth, sigma_open: float, sigma_hidden: float, seed: int = 0,
               per_size: bool = False) -> tuple[Keypoints2D, np.ndarray]:
    """The true people's projections with noise σ ``sigma_open`` px, ``sigma_hidden`` px where a keypoint
    is on the other (nearer) body; ``per_size``: σ in units of the person's size in that view × 100 (as a
    top-down detector, which sees every person at one crop size). Returns keypoints (F, C, 2, J) and which
    were hidden."""
    rng = np.random.default_rng(seed)
    F, P, J, _ = truth.shape
    uv = np.stack([cam.project(truth) for cam in rig.cameras], axis=1)  # (F, C, P, J, 2)
    hidden = occluded(rig, uv, truth, "coco17")
    sigma = np.where(hidden, sigma_hidden, sigma_open)
    if per_size:
        size = np.linalg.norm(uv.max(axis=-2) - uv.min(axis=-2), axis=-1)  # (F, C, P)
        sigma = sigma * size[..., None] / 100
    data = np.concatenate([uv + rng.normal(0, 1, uv.shape) * sigma[..., None],
                           np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1)
    return Keypoints2D(data, rig.names, "coco17", 60.0), hidden


def mpjpe(X, truth) -> np.ndarray:
    """Per person, mm."""
    return 1000 * np.nanmean(np.linalg.norm(X - truth, axis=-1), axis=(0, 2))


def test_a_keypoint_on_the_body_of_a_nearer_person_is_occluded_and_one_person_never_is():
    rig, truth = one_behind_the_other()
    uv = np.stack([cam.project(truth) for cam in rig.cameras], axis=1)
    occ = occluded(rig, uv, truth, "coco17")
    share = occ.mean(axis=(0, 3))  # (C, P)
    assert share[0, 1] > 0.3 and share[2, 0] > 0.3, share  # the one behind, in the two views along the line
    assert share[0, 0] == 0 and share[2, 1] == 0, share  # the one in front is hidden by nobody
    assert share[1].max() < 0.1 and share[3].max() < 0.1, share  # side by side
    assert not occluded(rig, uv[:, :, :1], truth[:, :1], "coco17").any()


def test_the_noise_of_occluded_keypoints_is_measured_on_the_take():
    rig, truth = one_behind_the_other()
    kp, hidden = detections(rig, truth, 1.5, 12.0)
    usable = np.ones(hidden.shape, bool)
    ratio, record = sigma_ratio(rig, kp.xy, truth, usable, hidden)
    assert 3.0 < ratio <= 4.0, record  # ~8× in pixels, measured as the median against the first skeleton
    assert record["occluded_observations"] == int(hidden.sum())
    # noise the same share of every person's size (a top-down detector) wherever it is: no difference found
    kp_same, _ = detections(rig, truth, 1.0, 1.0, seed=1, per_size=True)
    assert sigma_ratio(rig, kp_same.xy, truth, usable, hidden)[0] < 1.3
    few = np.zeros_like(hidden)
    few.flat[np.flatnonzero(hidden)[:MIN_OCCLUDED - 1]] = True
    assert sigma_ratio(rig, kp.xy, truth, usable, few) == (1.0, {"occluded_observations": MIN_OCCLUDED - 1,
                                                                  "open_observations": int((~few).sum()),
                                                                  "sigma_ratio": 1.0})


def test_weighting_the_hidden_keypoints_lowers_the_error_of_the_hidden_person():
    """Hidden keypoints 3× as noisy as the others (what the rendered takes show with BlazePose full): the
    triangulation loses most of their harm; refine, robust and smoothing over time, already loses some."""
    rig, truth = one_behind_the_other()
    kp, hidden = detections(rig, truth, 1.5, 4.5)
    off = triangulate.run(rig, kp, triangulate.Config(occlusion_weights=False))
    on = triangulate.run(rig, kp, triangulate.Config())
    assert "occlusion" not in off.info and on.info["occlusion"]["sigma_ratio"] > 1.5
    e_off, e_on = mpjpe(off.xyz, truth), mpjpe(on.xyz, truth)
    assert np.all(e_on < 0.8 * e_off), (e_on, e_off)  # each person is the hidden one in one view
    # refine weighs them as triangulate recorded
    (r_off, _), (r_on, _) = (refine.run(rig, kp, points) for points in (off, on))
    assert "occlusion" not in r_off.info
    assert r_on.info["occlusion"] == {"sigma_ratio": on.info["occlusion"]["sigma_ratio"]}
    e_off, e_on = mpjpe(r_off.xyz, truth), mpjpe(r_on.xyz, truth)
    assert np.all(e_on < 0.97 * e_off), (e_on, e_off)


def test_one_person_is_triangulated_and_refined_exactly_as_without_the_weighting():
    rig, truth = one_behind_the_other()
    kp, _ = detections(rig, truth, 2.0, 2.0)
    alone = Keypoints2D(kp.data[:, :, :1], kp.camera_names, kp.keypoint_set, kp.fps)
    on = triangulate.run(rig, alone, triangulate.Config())
    off = triangulate.run(rig, alone, triangulate.Config(occlusion_weights=False))
    assert "occlusion" not in on.info
    np.testing.assert_array_equal(on.xyz, off.xyz)
    np.testing.assert_array_equal(refine.run(rig, alone, on)[0].xyz, refine.run(rig, alone, off)[0].xyz)


def test_people_e2e_splits_view_errors_into_occluded_and_open_keypoints():
    from mocap.bench.people_e2e import view_errors

    rng = np.random.default_rng(2)
    F, K = 10, 5
    uv_true = rng.uniform(0, 600, (1, F, 1, K, 2))
    xy = np.moveaxis(uv_true[:, :, 0], 0, 1) + 1.0  # 1.4 px off ...
    occ = np.zeros((F, 1, K), bool)
    occ[:4, :, :2] = True  # 8 of 50 keypoints on the other body ...
    xy[:4, :, :2] += 3.0  # ... 5.7 px off
    v = view_errors(xy, np.ones((F, 1, K)), uv_true, 0, ["a"], occluded=occ)["a"]
    assert v["occluded_share"] == 8 / 50
    assert v["occluded"]["n"] == 8 and abs(v["occluded"]["median"] - 4 * np.sqrt(2)) < 1e-9
    assert v["open"]["n"] == 42 and abs(v["open"]["p95"] - np.sqrt(2)) < 1e-9


def test_people_e2e_reports_the_worst_frame():
    from mocap.bench.people_e2e import match_people

    F, K = 10, 4
    truth = np.zeros((F, 1, K, 3)) + np.arange(K)[:, None] * 0.1
    X = truth.copy()
    X[7, 0, :2] += [0.0, 0.0, 0.05]  # frame 7: two of four keypoints 50 mm off
    row = match_people(X, truth)["people"][0]
    assert abs(row["worst_frame_bias_corrected_mm"] - 25.0) < 1e-9
    assert abs(row["mpjpe_bias_corrected_mm"] - 5.0) < 1e-9


def test_occlusion_is_the_same_computed_by_blocks(monkeypatch):
    import mocap.multi.overlap as overlap

    rig, truth = one_behind_the_other()
    uv = np.stack([cam.project(truth) for cam in rig.cameras], axis=1)
    whole = occluded(rig, uv, truth, "coco17")
    monkeypatch.setattr(overlap, "BLOCK_ELEMENTS", 7 * 30)  # blocks of a few keypoints, the last one shorter
    assert np.array_equal(overlap.occluded(rig, uv, truth, "coco17"), whole)


def test_only_the_rows_with_an_occluded_keypoint_are_triangulated_again(monkeypatch):
    """The weighted triangulation redoes the points (frame, person, joint) that have an occluded view, and only
    those (a point is solved from its own views; on a 100 s take of 3 people, 3 % of them): the others are the
    unweighted ones, the redone ones what a weighted triangulation of every point gives."""
    from mocap.multi.overlap import occlusion_factors

    rig, truth = one_behind_the_other()
    kp, hidden = detections(rig, truth, 1.5, 4.5)
    sizes = []
    real = triangulate.triangulate

    def spy(rig_, uv, w, **k):
        sizes.append(len(uv))
        return real(rig_, uv, w, **k)

    monkeypatch.setattr(triangulate, "triangulate", spy)
    on = triangulate.run(rig, kp, triangulate.Config())
    off = triangulate.run(rig, kp, triangulate.Config(occlusion_weights=False))
    F, P, J = truth.shape[:3]
    occ = occluded(rig, kp.xy, off.xyz, "coco17")  # against the first skeletons, as triangulate judges
    rows = occ.any(axis=1)  # (F, P, J)
    assert sizes == [F * P * J, rows.sum(), F * P * J] and 0 < rows.sum() < F * P * J
    assert np.array_equal(on.xyz[~rows], off.xyz[~rows]) and np.array_equal(on.views[~rows], off.views[~rows])
    factor = np.moveaxis(occlusion_factors(occ, on.info["occlusion"]["sigma_ratio"]), 1, 3).reshape(-1, len(rig))
    uv = np.moveaxis(kp.xy, 1, 3).reshape(-1, len(rig), 2)
    w = np.moveaxis(triangulate.observation_weights(kp, 0.2), 1, 3).reshape(-1, len(rig)) * factor
    cfg = triangulate.Config()
    X = real(rig, uv, w, min_views=cfg.min_views, max_reproj_px=cfg.max_reproj_px,
             min_pair_angle_deg=cfg.min_pair_angle_deg)[0].reshape(F, P, J, 3)
    assert np.allclose(on.xyz[rows], X[rows], rtol=0, atol=1e-12, equal_nan=True)
