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
