"""A camera whose footage is mirrored left-right in a take of two people. Its mirror images are matched to no one
(they fit no person's reprojection): each person's row read "saw no one (…): unplugged, the wrong video, pointed
elsewhere" while the log said the camera had "detections no person explains" in every frame (the reviewer's
two-person demo, cam04 flipped); or each is matched to the other person, standing where its mirror image falls
("wrong person?"). Its detections mirrored back fit the people: the report names the mirror, as it does with one
person (tests/test_turned_footage.py). A camera that detected no one at all, or only a stranger, still "saw no one"."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from body_synth import blazepose_keypoints, body_motion
from test_view_synth import SECOND_ENTERS, two_person_session

from mocap import report
from mocap.keypoint_sets import get_keypoint_set
from mocap.report.cameras import UNSEEN_HINT, camera_table
from mocap.synth import RigSpec, ring_rig
from mocap.types import Keypoints2D, Points3D

CAM = 3  # cam04
FLIP = get_keypoint_set("blazepose33").flip_permutation


def _mirror(view: np.ndarray, w: int) -> np.ndarray:
    """Detections (..., J, 3) of a picture mirrored left-right: x → w-1-x, and the detector calls the left side
    right."""
    out = view[..., FLIP, :].copy()
    out[..., 0] = w - 1 - out[..., 0]
    return out


def _report(tmp_path, what: str) -> dict:
    """The report of the two-person synthetic take (people_truth: person2 enters at frame SECOND_ENTERS) with
    cam04's detections mirrored left-right ("mirrored"), mirrored and only while person1 is alone ("mirrored
    early": its mirror image falls where nobody stands), as filmed ("filmed"), absent ("blind"), or those of a
    stranger only, in a corner of its image ("bystander")."""
    session, _ = two_person_session(tmp_path / what.replace(" ", "_"), frames=45)
    with h5py.File(session.root / "pose2d.h5", "r+") as f:
        d = f["keypoints"][...]  # (F, C, D, J, 3)
        w, h = session.rig().cameras[CAM].size
        if what.startswith("mirrored"):
            d[:, CAM] = _mirror(d[:, CAM], w)
        if what == "mirrored early":
            d[SECOND_ENTERS:, CAM] = np.nan
        elif what == "blind":
            d[:, CAM] = np.nan
        elif what == "bystander":  # a far body (a third of the people's size) in the image's top-left corner
            body = np.where(np.isfinite(d[:, CAM, :1, :1, :1]), d[:, CAM, :1], d[:, CAM, 1:])[:, 0]  # (F, J, 3)
            d[:, CAM] = np.nan
            d[:, CAM, 0, :, :2] = (body[..., :2] - np.nanmin(body[..., :2], axis=(0, 1))) / 3 + 2.0
            d[:, CAM, 0, :, 2] = 0.9
        f["keypoints"][...] = d
    return report.build(session, cfg=report.Config(overlay_videos=False))


def _figures(hint: str) -> tuple[float, float]:
    """(px turned back, px as given) from a turned-footage hint."""
    fit, given = hint.split("fit its pose (")[1].split(" px as they are")[0].split(" px, against ")
    return float(fit), float(given)


def test_a_mirrored_camera_whose_people_nobody_explains_is_told_mirrored_not_unplugged(tmp_path):
    m = _report(tmp_path, "mirrored early")
    for q in m["persons"]:
        row = q["cameras"]["cam04"]
        assert row["detections"] == 0  # its mirror images are nobody's: the association is unchanged
        assert not row["unseen"] and row["flagged"] and row["turned"] == "mirrored left-right", row["hint"]
        assert row["hint"].startswith("footage mirrored left-right? cam04 detected people in 15 frames but none fits "
                                      "this person: its detections"), row["hint"]
        assert "flip the video back" in row["hint"] and "unplugged" not in row["hint"]
        fit, given = _figures(row["hint"])
        assert fit < 0.25 * given and given == pytest.approx(row["flag"]["value"], rel=1e-2)
        assert not any(r["flagged"] for n, r in q["cameras"].items() if n != "cam04")
    assert [f["metric"] for f in m["verdict"]["failed"] if "cam04" in f["metric"]] == [
        "persons.0.cameras.cam04.median_px", "persons.1.cameras.cam04.median_px"], m["verdict"]
    html = (tmp_path / "mirrored_early" / "report" / "report.html").read_text()
    assert "saw no one" not in html and html.count("footage mirrored left-right? cam04") == 2


def test_a_mirrored_camera_whose_people_fall_on_each_other_is_told_mirrored_not_wrong_person(tmp_path):
    """The two people stand either side of cam04's image centre: each one's mirror image is matched to the other
    (flagged "wrong person? … identities mixed" before)."""
    m = _report(tmp_path, "mirrored")
    for q in m["persons"]:
        row = q["cameras"]["cam04"]
        assert row["detections"] > 0 and row["flagged"] and row.get("turned") == "mirrored left-right", row["hint"]
        assert row["hint"].startswith("footage mirrored left-right? cam04's detections (each taken as the person it "
                                      "fits best) mirrored back fit its pose"), row["hint"]
        fit, given = _figures(row["hint"])
        assert fit < 0.25 * given and given == pytest.approx(row["median_px"], rel=1e-2)


def test_the_reviewers_case_two_people_matched_to_no_one_in_a_mirrored_view():
    """As on the real footage: every frame of cam04 holds both people's mirror images, none matched to a person
    (camera_table alone: "saw no one … unplugged"); the report's pass over the camera's detections names the
    mirror, each person with its own figures."""
    from mocap.report.mirrored_people import turned_people

    F, fps, size = 60, 30.0, (1280, 720)
    A = blazepose_keypoints(body_motion(F, fps))
    B = blazepose_keypoints(body_motion(F, fps, seed=1)) + np.array([1.5, 0.8, 0.0])
    rig = ring_rig(RigSpec(n_cameras=4, size=size), np.concatenate([A, B]).reshape(-1, 3))
    both = np.stack([A, B], axis=1)  # (F, P, J, 3)
    uv = np.stack([rig.cameras[c].project(both) for c in range(4)], axis=1)  # (F, C, P, J, 2)
    uv += np.random.default_rng(0).normal(0, 1.0, uv.shape)
    raw = np.concatenate([uv, np.full(uv.shape[:-1] + (1,), 0.9)], axis=-1)
    raw[:, CAM] = _mirror(raw[:, CAM], size[0])
    kp = raw.copy()
    kp[:, CAM] = np.nan  # the association matched none of cam04's detections
    J = A.shape[1]
    pts = Points3D(both, np.zeros((F, 2, J)), np.ones((F, 2, J, 4), bool), rig.names, "blazepose33", fps)
    kp, raw = (Keypoints2D(x, rig.names, "blazepose33", fps) for x in (kp, raw))
    tables = [camera_table(rig, kp, pts, person=p) for p in range(2)]
    assert all(t["cam04"]["unseen"] and t["cam04"]["hint"] == UNSEEN_HINT for t in tables)  # what the report said
    healthy = [camera_table(rig, raw, pts, person=p) for p in range(2)]
    healthy[0]["cam04"] = healthy[0]["cam01"]  # nothing to look at: the detections are never read (long takes)
    healthy[1]["cam04"] = healthy[1]["cam01"]
    turned_people(healthy, rig, pts, lambda: pytest.fail("the detections were read with no camera to look at"))
    reads = []
    turned_people(tables, rig, pts, lambda: reads.append(1) or raw)  # read when needed, once
    assert reads == [1]
    for t in tables:
        row = t["cam04"]
        assert row["flagged"] and row["turned"] == "mirrored left-right" and not row["unseen"], row["hint"]
        assert row["hint"].startswith(f"footage mirrored left-right? cam04 detected people in {F} frames")
        fit, given = _figures(row["hint"])
        assert fit < 5.0 and given > 4 * fit
        assert not any(r["flagged"] for n, r in t.items() if n != "cam04")


@pytest.mark.parametrize("what", ["blind", "bystander"])
def test_a_camera_that_detected_no_one_or_only_a_stranger_still_saw_no_one(tmp_path, what):
    """No detection at all (unplugged): "saw no one", as before; a stranger seen by that camera alone (no turn of
    the picture brings its detections onto either person): not called mirrored either."""
    m = _report(tmp_path, what)
    for q in m["persons"]:
        row = q["cameras"]["cam04"]
        assert row["unseen"] and not row["flagged"] and not row.get("turned"), row["hint"]
        if what == "blind":
            assert row["hint"] == UNSEEN_HINT


def test_a_camera_as_filmed_is_not_called_mirrored(tmp_path):
    m = _report(tmp_path, "filmed")
    for q in m["persons"]:
        assert not any(r["flagged"] or r.get("turned") or r["unseen"] for r in q["cameras"].values()), q["cameras"]
