"""Dataset builds: takes the dataset cannot hold are failed with a message (never the whole dataset), the
same session given twice is built once, the stored 2D is the performer's and the cameras keep their model,
and ``dataset synth`` never reuses a take made with another seed or clip."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from mocap.dataset.build import info, take_id
from mocap.dataset.reader import Windows
from mocap.dataset.store import pending_dir


def fake_take_arrays(session, sets=()):
    """Deterministic arrays per session name; a name ending in "hands" is a blazepose33_hands take."""
    name = Path(session).name
    hands = name.endswith("hands")
    K, ks = (75, "blazepose33_hands") if hands else (33, "blazepose33")
    rng = np.random.default_rng(len(name))
    F = 40
    return {"arrays": {"keypoints2d": rng.normal(size=(F, 4, K, 3)), "points3d": rng.normal(size=(F, K, 3)),
                       "rotations": rng.normal(size=(F, 22, 4)), "root_positions": rng.normal(size=(F, 3)),
                       "skeleton/parents": np.arange(22) - 1},
            "attrs": {"frames": F, "fps": 30.0, "keypoint_set": ks, "session": str(session),
                      "joint_names": json.dumps([f"j{i}" for i in range(22)])}}


@pytest.fixture
def fake(monkeypatch):
    import mocap.dataset.build as b

    monkeypatch.setattr(b, "take_arrays", fake_take_arrays)
    return b


def _sessions(root: Path, *names: str) -> list[Path]:
    out = [root / "sessions" / n for n in names]
    for p in out:
        p.mkdir(parents=True, exist_ok=True)
    return out


def _log(out: Path) -> list[dict]:
    with h5py.File(out, "r") as f:
        return [json.loads(x) for x in f["log"].asstr()[()]]


def test_a_take_of_another_keypoint_set_fails_alone(fake, tmp_path):
    out = tmp_path / "d.h5"
    body, hands = _sessions(tmp_path, "a_body", "b_hands")
    s = fake.build([body, hands], out, workers=1)
    assert s.committed == [take_id(body)] and list(s.failed) == [take_id(hands)]
    why = s.failed[take_id(hands)]
    assert "blazepose33_hands (75 keypoints)" in why and "blazepose33 (33 keypoints)" in why and str(out) in why
    i = info(out)
    assert i["takes"] == 1 and i["pending"] == 0 and [e["take"] for e in i["failed"]] == [take_id(hands)]
    assert not pending_dir(out).exists()
    assert len(Windows(out, 16)) == 40 - 15
    again = fake.build([body, hands], out, workers=1)  # later builds work: the take fails again, alone
    assert again.skipped == [take_id(body)] and list(again.failed) == [take_id(hands)]
    assert info(out)["takes"] == 1


def _left_waiting(out: Path, session: Path) -> None:
    """A complete take waiting in the pending folder, as a writer that did not check left it."""
    from mocap.dataset.build import BuildConfig
    from mocap.dataset.store import EVENT_ATTR, EVENTS, new_event, write_arrays

    pend = pending_dir(out)
    pend.mkdir(exist_ok=True)
    event = new_event(take=take_id(session), status="committed")
    with h5py.File(pend / f"{take_id(session)}.h5", "w") as f:
        write_arrays(f, fake_take_arrays(session), BuildConfig())
        f.attrs[EVENT_ATTR] = json.dumps(event)
    with open(pend / EVENTS, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event) + "\n")


def test_waiting_takes_that_break_the_index_no_longer_poison_the_dataset(fake, tmp_path):
    """An earlier version left both takes waiting, and every later build crashed on the index."""
    out = tmp_path / "d.h5"
    body, hands = _sessions(tmp_path, "a_body", "b_hands")
    fake.build([], out, workers=1)
    _left_waiting(out, body)
    _left_waiting(out, hands)
    assert info(out)["takes"] == 0 and info(out)["pending"] == 2
    s = fake.build([body], out, workers=1)
    assert list(s.failed) == [take_id(hands)] and "75 keypoints" in s.failed[take_id(hands)]
    assert s.skipped == [take_id(body)] and not s.committed  # computed by the earlier build, committed now
    i = info(out)
    assert i["takes"] == 1 and i["pending"] == 0 and not pending_dir(out).exists()
    events = _log(out)
    assert [e["take"] for e in events if e["status"] == "committed"] == [take_id(body)]
    assert [e["take"] for e in events if e["status"] == "failed"] == [take_id(hands)]
    assert len(Windows(out, 16)) == 40 - 15


def test_an_index_over_takes_of_two_keypoint_sets_is_a_clear_error(tmp_path):
    """Files written in place (benchmarks) go straight to the index: it names the take, never a TypeError."""
    from mocap.dataset.build import BuildConfig, _open, build_index, write_take

    body, hands = _sessions(tmp_path, "a_body", "b_hands")
    with _open(tmp_path / "x.h5") as f:
        for s in (body, hands):
            write_take(f, take_id(s), fake_take_arrays(s), BuildConfig())
        with pytest.raises(ValueError, match=f"take {take_id(hands)}: points3d of \\(75, 3\\) per frame"):
            build_index(f)


def test_the_same_session_given_twice_is_built_once(fake, tmp_path, caplog):
    out = tmp_path / "d.h5"
    (take,) = _sessions(tmp_path, "take")
    link = tmp_path / "link"
    link.symlink_to(take)
    s = fake.build([take, link, tmp_path / "sessions" / ".." / "sessions" / "take"], out, workers=1)
    assert s.committed == [take_id(take)] and not s.failed and not s.skipped
    assert "given again" in caplog.text and str(link) in caplog.text
    assert info(out)["takes"] == 1 and [e["status"] for e in _log(out)] == ["committed"]


def _two_people_session(root: Path, frames: int = 60) -> Path:
    """One-person synthetic session whose pose2d.h5 holds a second person 1.5 m away in every view, the two
    detection slots in a random order per frame and view (as a multi-person detector gives them)."""
    from body_synth import blazepose_keypoints, body_motion

    from mocap.io.hdf5 import write_keypoints2d
    from mocap.synth import CorruptionSpec, RigSpec, corrupt, ring_rig
    from mocap.synth.groundtruth import SyntheticTake, write_session
    from mocap.types import Keypoints2D

    X = blazepose_keypoints(body_motion(frames, 30.0))
    Y = blazepose_keypoints(body_motion(frames, 30.0, seed=5)) + np.array([1.5, 0.0, 0.0])
    rig = ring_rig(RigSpec(n_cameras=4, size=(1280, 720)), np.concatenate([X, Y]).reshape(-1, 3))
    data = [corrupt(np.moveaxis(rig.project(P), 0, 1), rig, "blazepose33", CorruptionSpec(1.0, 0.0, 0.0, seed=s))[0]
            for s, P in enumerate((X, Y))]
    write_session(SyntheticTake(rig, Keypoints2D(data[0], rig.names, "blazepose33", 30.0), X, {}), root,
                  json_2d=False)
    both = np.concatenate(data, axis=2)  # (F, C, 2, J, 3)
    flip = np.random.default_rng(0).random(both.shape[:2]) < 0.5
    both[flip] = both[flip][:, ::-1]
    write_keypoints2d(Keypoints2D(both, rig.names, "blazepose33", 30.0), root / "pose2d.h5")
    (root / "mocap.toml").write_text("[detect]\npersons = 1\n")
    return root


def _far_frames(kp2: np.ndarray, X: np.ndarray, rig) -> np.ndarray:
    """Per camera: frames whose stored 2D lies > 50 px (median over keypoints) from the stored 3D's projection."""
    uv = rig.project(X.reshape(-1, 3)).reshape(len(rig), *X.shape[:2], 2)
    err = np.nanmedian(np.linalg.norm(kp2[..., :2].astype(float) - np.moveaxis(uv, 0, 1), axis=-1), axis=-1)
    return np.sum(err > 50, axis=0)


def test_the_stored_2d_is_the_performer_the_3d_was_made_from(tmp_path):
    from mocap.dataset.build import BuildConfig, build
    from mocap.dataset.reader import take_rig

    s = _two_people_session(tmp_path / "two")
    out = tmp_path / "d.h5"
    assert build([s], out, BuildConfig(), workers=1).committed == [take_id(s)]
    with h5py.File(out, "r") as f:
        g = f["takes"][take_id(s)]
        kp2, X = g["keypoints2d"][()], g["points3d"][()]
    assert kp2.shape == (60, 4, 33, 3) and X.shape == (60, 33, 3)
    far = _far_frames(kp2, X, take_rig(out, take_id(s)))
    assert far.tolist() == [0, 0, 0, 0], f"frames of another person's 2D per camera: {far.tolist()}"


def test_a_fisheye_rig_keeps_its_coefficients_and_model(tmp_path):
    from dataclasses import replace

    from pipeline_synth import synthetic_session

    from mocap.dataset.build import build
    from mocap.dataset.reader import take_rig
    from mocap.io.hdf5 import read_points3d, write_keypoints2d
    from mocap.io.rig_files import read_rig, write_rig
    from mocap.types import Keypoints2D, Rig

    s = synthetic_session(tmp_path / "fish", frames=40, seed=1)
    fk = np.array([0.05, -0.01, 0.002, 0.0005])
    fish = Rig([replace(c, model="fisheye", dist=fk) for c in read_rig(s / "calibration" / "rig.toml")])
    write_rig(fish, s / "calibration" / "rig.toml")
    X = read_points3d(s / "groundtruth" / "points3d.h5").xyz[:, 0]
    uv = fish.project(X.reshape(-1, 3)).reshape(len(fish), *X.shape[:2], 2)
    data = np.concatenate([np.moveaxis(uv, 0, 1), np.ones((*X.shape[:1], len(fish), X.shape[1], 1))], -1)[:, :, None]
    write_keypoints2d(Keypoints2D(data, fish.names, "blazepose33", 30.0), s / "pose2d.h5")
    pin = synthetic_session(tmp_path / "pin", frames=40, seed=2)
    out = tmp_path / "d.h5"
    assert sorted(build([s, pin], out, workers=1).committed) == sorted([take_id(s), take_id(pin)])
    with h5py.File(out, "r") as f:
        g = f["takes"][take_id(s)]
        assert np.allclose(g["cameras/dist"][()], np.concatenate([fk, [0.0]])[None].repeat(len(fish), 0))
        assert g["cameras/model"].asstr()[()].tolist() == ["fisheye"] * len(fish)
        assert f["takes"][take_id(pin)]["cameras/model"].asstr()[()].tolist() == ["pinhole"] * 4
        X3 = g["points3d"][()]
    rig = take_rig(out, take_id(s))
    assert [c.model for c in rig] == ["fisheye"] * len(fish) and np.allclose(rig[0].dist, fk)
    back = rig.project(X3.reshape(-1, 3)).reshape(len(rig), *X3.shape[:2], 2)
    assert np.nanmedian(np.abs(back - uv)) < 1.0  # the stored 3D reprojects with the stored cameras
    assert [c.model for c in take_rig(out, take_id(pin))] == ["pinhole"] * 4


@pytest.fixture
def clip(tmp_path):
    from body_synth import body_motion

    from mocap.io.bvh import write_bvh

    return write_bvh(body_motion(90, 30.0), tmp_path / "clip.bvh")


def test_synth_never_reuses_a_take_made_with_another_seed_or_clip(tmp_path, clip, caplog, capsys):
    from body_synth import body_motion

    from mocap.cli import main as cli
    from mocap.dataset.synth import make_sessions
    from mocap.io.bvh import write_bvh

    folder = tmp_path / "d_takes"
    made = make_sessions(2, folder, [clip], seed=0, seconds=1.0)
    rig = {s: (s / "calibration" / "rig.toml").read_bytes() for s in made}
    assert make_sessions(3, folder, [clip], seed=0, seconds=1.0)[:2] == made  # the same call: reused, one added
    assert {s: (s / "calibration" / "rig.toml").read_bytes() for s in made} == rig
    fresh = make_sessions(1, tmp_path / "fresh", [clip], seed=7, seconds=1.0)[0]
    assert (fresh / "calibration" / "rig.toml").read_bytes() != rig[made[0]]  # seed 7 makes another take
    with pytest.raises(ValueError, match=r"synth_00000: seed 0 \(this call: 7\)"):
        make_sessions(3, folder, [clip], seed=7, seconds=1.0)
    other = write_bvh(body_motion(90, 30.0, seed=3), tmp_path / "other" / "clip.bvh")
    with pytest.raises(ValueError, match="same names, other contents"):
        make_sessions(3, folder, [other], seed=0, seconds=1.0)
    assert {s: (s / "calibration" / "rig.toml").read_bytes() for s in made} == rig  # nothing was rewritten
    recorded = [json.loads((s / "synth.json").read_text()) for s in made]  # what made each take
    assert [(r["seed"], r["clip"], r["pixels"], r["seconds"]) for r in recorded] == [(k, "clip.bvh", False, 1.0)
                                                                                      for k in (0, 1)]
    # the command says so (exit 2, no traceback) before anything runs
    out = tmp_path / "d.h5"
    assert cli(["dataset", "synth", "--takes", "2", "--out", str(out), "--bvh", str(clip), "--seed", "7"]) == 2
    err = capsys.readouterr().err
    assert "seed 0 (this call: 7)" in err and "another --out" in err and "Traceback" not in err
    assert not out.exists()
    # sessions of an earlier version recorded nothing: reused, with a warning
    (made[0] / "synth.json").unlink()
    with caplog.at_level("WARNING", logger="mocap.dataset.synth"):
        assert make_sessions(1, folder, [clip], seed=0, seconds=1.0) == made[:1]
    assert "did not record" in caplog.text
