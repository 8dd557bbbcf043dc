import numpy as np
import pytest
from body_synth import body_motion

from mocap.fit.bones import rest_positions
from mocap.geometry.rotations import axis_angle_to_matrix
from mocap.motion import motion_from_world
from mocap.retarget import FootLock, foot_contacts, foot_lock, hip_height, load_target_rig, retarget_to_rig
from mocap.types import Motion


def _aim(sk, j):
    kids = [c for c in range(len(sk.joint_names)) if sk.parents[c] == j and np.linalg.norm(sk.offsets[c]) > 1e-6]
    return kids[0] if len(kids) == 1 else None


@pytest.mark.parametrize("rig_name", ["mixamo", "ue5", "unity", "cmu"])
def test_retargeted_bones_point_where_the_source_bones_point(rig_name):
    src = body_motion(60)
    rig = load_target_rig(rig_name)
    out = retarget_to_rig(src, rig, None)
    assert out.skeleton.joint_names == rig.skeleton.joint_names and out.n_frames == src.n_frames
    _, ps = src.fk()
    _, pt = out.fk()
    checked = 0
    for t, s in rig.source.items():
        if s not in src.skeleton.joint_names:
            continue  # the rig's finger bones (body52): a body22 motion has none (tests/test_fingers_retarget.py)
        ti, si = rig.skeleton.index(t), src.skeleton.index(s)
        a = _aim(rig.skeleton, ti)
        if a is None or rig.skeleton.joint_names[a] not in rig.source:
            continue
        sa = src.skeleton.index(rig.source[rig.skeleton.joint_names[a]])
        if sa in (si,) or src.skeleton.parents[sa] != si:
            continue  # only bones that are bones in both skeletons
        u = pt[:, a] - pt[:, ti]
        v = ps[:, sa] - ps[:, si]
        cos = np.sum(u * v, axis=1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.5, (t, s)
        checked += 1
    assert checked >= 10
    # root motion scaled by leg length: its travel from where it starts
    ratio = hip_height(rig.skeleton) / hip_height(src.skeleton)
    travel = lambda m: m.root_positions[:, :2] - m.root_positions[0, :2]  # noqa: E731
    assert np.allclose(travel(out), travel(src) * ratio) and np.allclose(out.root_positions[0, :2],
                                                                         src.root_positions[0, :2])


@pytest.mark.parametrize("shift", [(0.0, 0.0, 1.0), (4.0, -2.0, -1.2)])
def test_a_retargeted_body_stands_where_the_source_stands_wherever_the_world_origin_is(shift):
    """The root is scaled about the source's floor and first position, not the world's origin: a floor 1 m above
    or 1.2 m below it made a larger target float or sink by (ratio − 1) × that, and people changed places."""
    src = body_motion(120, scale=0.85)
    rig = load_target_rig("mixamo")
    moved = Motion(src.skeleton, src.rotations, src.root_positions + shift, src.fps)
    here, there = retarget_to_rig(src, rig, None), retarget_to_rig(moved, rig, None)
    assert np.allclose(there.root_positions, here.root_positions + shift, atol=1e-9)
    _, ps = src.fk()
    _, pt = here.fk()
    assert abs(pt[..., 2].min() - ps[..., 2].min()) < 0.05  # the target's feet on the source's floor (its own feet)


def test_rig_files_are_checked(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[joints]\nroot = { offset = [0, 0, 0], source = "Hips", colour = 1 }\n')
    with pytest.raises(ValueError, match="unknown key 'colour'"):
        load_target_rig(str(bad))
    bad.write_text('name = "x"\n[joints]\nroot = { offset = [0, 0, 0], source = "Hips" }\n'
                   'arm = { parent = "root", offset = [0.1, 0, 0], source = "NoSuchJoint" }\n')
    with pytest.raises(ValueError, match=r"source skeleton has no joints \['NoSuchJoint'\]"):
        retarget_to_rig(body_motion(5), load_target_rig(str(bad)), None)
    with pytest.raises(ValueError, match=r"bad\.toml: joint 'arm': source 'NoSuchJoint' is not a joint of the "
                                         r"skeleton it plays \(expected one of \['Hips'"):
        load_target_rig(str(bad), body_motion(5).skeleton.joint_names)


def _stepping_motion(fps=60.0, frames=240):
    """body22 stepping in place while the whole body drifts 6 cm per second: planted feet slide."""
    m = body_motion(frames, fps)
    sk = m.skeleton
    t = np.arange(frames) / fps
    J = len(sk.joint_names)
    rv = np.zeros((frames, J, 3))
    # alternate the legs: a lift (hip flexion + knee bend) half of each 1 s cycle
    for side, phase in (("Left", 0.0), ("Right", 0.5)):
        lift = np.clip(np.sin(2 * np.pi * (t + phase)), 0, None)
        rv[:, sk.index(f"{side}UpLeg"), 0] = -0.6 * lift
        rv[:, sk.index(f"{side}Leg"), 0] = 1.2 * lift
    G = axis_angle_to_matrix(rv)
    Gw = np.empty_like(G)
    for j in range(J):
        Gw[:, j] = G[:, j] if sk.parents[j] < 0 else Gw[:, sk.parents[j]] @ G[:, j]
    hip = -rest_positions(sk)[:, 2].min()
    root = np.stack([0.06 * t, np.zeros_like(t), np.full_like(t, hip)], axis=1)
    return motion_from_world(sk, Gw, root, fps)


def test_foot_lock_stops_planted_feet_sliding():
    m = _stepping_motion()
    sk = m.skeleton
    legs = [tuple(sk.index(f"{s}{n}") for n in ("UpLeg", "Leg", "Foot", "ToeBase")) for s in ("Left", "Right")]
    _, p = m.fk()
    contact = foot_contacts(p[:, sk.index("LeftToeBase")], m.fps, FootLock())
    assert 0.3 < contact.mean() < 0.7
    locked, stats = foot_lock(m, legs, FootLock())
    assert stats["LeftFoot before"] > 0.8  # 1 mm per frame of slide
    assert stats["LeftFoot"] < 0.25 * stats["LeftFoot before"]
    assert stats["RightFoot"] < 0.25 * stats["RightFoot before"]
    # bones keep their lengths, the root and the upper body are untouched
    _, pl = locked.fk()
    assert np.allclose(locked.skeleton.offsets, sk.offsets)
    assert np.abs(pl[:, sk.index("Head")] - p[:, sk.index("Head")]).max() < 1e-9


def test_a_target_rig_is_loaded_once_per_file_content(tmp_path):
    """A run loads the same rig many times: the same immutable rig comes back while the file is unchanged, and a
    changed file is read again."""
    from mocap.config_files import preset_path
    from mocap.retarget import load_target_rig

    assert load_target_rig("mixamo").skeleton is load_target_rig("mixamo").skeleton
    src = preset_path("rigs", "mixamo").read_text()
    rig = tmp_path / "myrig.toml"
    rig.write_text(src)
    a = load_target_rig(str(rig))
    assert load_target_rig(str(rig)).skeleton is a.skeleton and a.units == "cm"
    rig.write_text(src.replace('units = "cm"', 'units = "m"'))
    b = load_target_rig(str(rig))
    assert b.units == "m" and b.skeleton is not a.skeleton and b.skeleton.joint_names == a.skeleton.joint_names


@pytest.mark.parametrize("tilt_deg", [0.0, 3.0, 10.0])
def test_foot_contacts_follow_a_floor_a_few_degrees_off_level(tilt_deg):
    """A foot walking 3.5 m, planted half of each step, on a floor tilted ``tilt_deg`` from the world's XY (a
    calibration a little off level): its contacts are found along the whole walk. One floor height (the take's
    2nd percentile) lost the far end's: at 3° the floor there is 18 cm higher."""
    fps, steps = 60.0, 10
    t = np.arange(int(steps * fps)) / fps
    phase = t % 1.0
    x = 0.35 * (np.floor(t) + np.clip((phase - 0.5) / 0.5, 0, 1))  # planted in the first half of each step
    lift = 0.12 * np.sin(np.pi * np.clip((phase - 0.5) / 0.5, 0, 1))
    foot = np.stack([x, np.zeros_like(x), 0.05 + lift + x * np.tan(np.radians(tilt_deg))], axis=1)
    planted = phase < 0.5
    contact = foot_contacts(foot, fps)
    assert (contact == planted).mean() > 0.95 and contact[planted].mean() > 0.9, (contact.mean(), planted.mean())
