import re

import numpy as np
import pytest

from mocap.skeletons import load_skeleton


def test_default_body_skeleton():
    spec = load_skeleton("body22")
    sk = spec.skeleton
    assert len(sk.joint_names) == 22 and sk.joint_names[0] == "Hips"
    for name in ("Spine2", "Neck", "Head", "LeftToeBase", "RightHand"):
        assert name in sk.joint_names
    assert spec.joints["LeftLeg"].type == "hinge"
    W, mapped = spec.mapping_matrix("blazepose33")
    assert np.allclose(W[mapped].sum(axis=1), 1.0) and mapped.sum() == 17
    # rest pose: a standing T-pose, about 1.7 m from toes to the top of the head
    rest = np.zeros((1, 22, 3))
    for j, p in enumerate(sk.parents):
        rest[0, j] = sk.offsets[j] + (rest[0, p] if p >= 0 else 0)
    assert 1.5 < rest[0, sk.index("Head"), 2] - rest[0, sk.index("LeftToeBase"), 2] < 1.9
    assert rest[0, sk.index("LeftHand"), 0] > 0.6  # left is +X


BASE = '''name = "bad"
[joints]
Root = { offset = [0.0, 0.0, 0.0] }
A = { parent = "Root", offset = [0.0, 0.0, 0.1] }
'''


@pytest.mark.parametrize("extra, message", [
    ('B = { parent = "C", offset = [0.1, 0.0, 0.0] }\nC = { parent = "B", offset = [0.1, 0.0, 0.0] }\n',
     r"joints \['B', 'C'\] form a cycle"),
    ('B = { parent = "Nowhere", offset = [0.1, 0.0, 0.0] }\n', "parent 'Nowhere', which is not a joint"),
    ('B = { parent = "A", offset = [0.0, 0.0, 0.0] }\n', "joint 'B' has a zero-length bone"),
    ('B = { parent = "A", offset = [0.1, 0.0, 0.0] }\n[mappings.coco17]\nB = { left_tail = 1.0 }\n',
     r"keypoint 'left_tail' is not in coco17"),
    ('B = { parent = "A", offset = [0.1, 0.0, 0.0], type = "hinge" }\n', "hinge joint 'B' needs an axis"),
])
def test_bad_skeleton_files_are_named(tmp_path, extra, message):
    path = tmp_path / "bad.toml"
    path.write_text(BASE + extra)
    with pytest.raises(ValueError, match=message):
        load_skeleton(str(path))


@pytest.mark.parametrize("extra, message", [
    ('B = { parent = "A", offset = [0.1, 0.0] }\n', r"joint 'B': offset must be 3 finite numbers, got \[0\.1, 0\.0\]"),
    ('B = { parent = "A", offset = "up" }\n', r"joint 'B': offset must be 3 finite numbers, got 'up'"),
    ('B = { parent = "A", offset = [0.1, nan, 0.0] }\n', r"joint 'B': offset must be 3 finite numbers"),
    ('B = { parent = "A", offset = [0.1, true, 0.0] }\n', r"joint 'B': offset must be 3 finite numbers"),
    ('B = { parent = 5, offset = [0.1, 0.0, 0.0] }\n', r"joint 'B': parent must be a joint name, got 5"),
    ('B = 5\n', r"joint 'B' must be a table"),
    ('B = { parent = "A", offset = [0.1, 0.0, 0.0], type = "hinge", axis = [0.0, 0.0, 0.0] }\n',
     r"joint 'B': axis must not be zero"),
    ('B = { parent = "A", offset = [0.1, 0.0, 0.0], type = "hinge", axis = [1.0, 0.0] }\n',
     r"joint 'B': axis must be 3 finite numbers"),
    ('B = { parent = "A", offset = [0.1, 0.0, 0.0], type = "hinge", axis = [1.0, 0.0, 0.0], limits = "wide" }\n',
     r"joint 'B': limits \(degrees, \[low, high\]\) must be 2 finite numbers, got 'wide'"),
    ('B = { parent = "A", offset = [0.1, 0.0, 0.0], type = "hinge", axis = [1.0, 0.0, 0.0], limits = [90, 10] }\n',
     r"joint 'B': limits must be \[low, high\] with low < high"),
])
def test_bad_joint_values_name_file_and_joint(tmp_path, extra, message):
    path = tmp_path / "bad.toml"
    path.write_text(BASE + extra)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {message}"):
        load_skeleton(str(path))


def test_hinge_axis_and_limits_are_floats():
    spec = load_skeleton("body22").joints["LeftForeArm"]
    assert spec.axis == (0.0, 0.0, -1.0) and spec.limits_deg == (-5.0, 160.0)
    assert all(type(v) is float for v in spec.axis + spec.limits_deg)


RIG = '''name = "myrig"
units = "cm"
[joints]
Root = { offset = [0.0, 0.0, 0.0], source = "Hips" }
Chest = { parent = "Root", offset = [0.0, 0.0, 0.3], source = "Spine" }
'''


@pytest.mark.parametrize("old, new, message", [
    ('source = "Spine"', 'source = "Tail"',
     r"joint 'Chest': source 'Tail' is not a joint of the skeleton it plays \(expected one of \['Hips', "),
    ('source = "Spine"', "source = 3", r"joint 'Chest': source 3 is not a joint of the skeleton it plays"),
    ("[0.0, 0.0, 0.3]", "[0.0, 0.3]", r"joint 'Chest': offset must be 3 finite numbers, got \[0\.0, 0\.3\]"),
    ("[0.0, 0.0, 0.3]", '"up"', r"joint 'Chest': offset must be 3 finite numbers, got 'up'"),
])
def test_bad_target_rig_names_file_and_joint(tmp_path, old, new, message):
    from mocap.retarget import load_target_rig

    path = tmp_path / "myrig.toml"
    path.write_text(RIG)
    assert load_target_rig(str(path)).source == {"Root": "Hips", "Chest": "Spine"}
    path.write_text(RIG.replace(old, new))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {message}"):
        load_target_rig(str(path), load_skeleton("body22").skeleton.joint_names)


KEYPOINTS = '''name = "myset"
joints = ["nose", "left_eye", "right_eye"]
limbs = [["nose", "left_eye"]]
'''


@pytest.mark.parametrize("old, new, message", [
    ('"right_eye"', '"nose"', r"joint names repeat: \['nose'\]"),
    ('joints = ["nose", "left_eye", "right_eye"]', "joints = 5", "joints must be a non-empty list of joint names"),
    ('joints = ["nose", "left_eye", "right_eye"]', 'joints = ["nose", 3]', "joints must be a non-empty list"),
    ('limbs = [["nose", "left_eye"]]', "limbs = 5", r"limbs must be a list of \[joint, joint\] name pairs, got 5"),
    ('limbs = [["nose", "left_eye"]]', 'limbs = [["nose"]]', r"limbs must be a list of \[joint, joint\] name pairs"),
    ('limbs = [["nose", "left_eye"]]', 'bones = [["nose", 1]]', r"bones must be a list of \[joint, joint\]"),
    ('name = "myset"', "name = 5", "name must be a non-empty string, got 5"),
])
def test_bad_keypoint_set_names_the_file(tmp_path, old, new, message):
    from mocap.keypoint_sets import get_keypoint_set

    path = tmp_path / "myset.toml"
    path.write_text(KEYPOINTS.replace(old, new))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {message}"):
        get_keypoint_set(str(path))
