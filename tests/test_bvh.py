import numpy as np
import pytest

from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_quat
from mocap.io.bvh import read_bvh, write_bvh
from mocap.motion import Z_UP_TO_Y_UP, change_axes, scale_motion
from mocap.types import Motion, Skeleton


def toy_motion(frames=50, hand_end=True):
    names = ("Hips", "Spine", "Head", "Head_end", "LeftArm", "LeftHand") + (("LeftHand_end",) if hand_end else ())
    parents = np.array([-1, 0, 1, 2, 1, 4, 5][: len(names)])
    offsets = np.array([[0, 0, 0], [0, 0, 0.2], [0, 0, 0.4], [0, 0, 0.15], [0.2, 0, 0.3], [0.5, 0, 0],
                        [0.1, 0, 0]][: len(names)], float)
    J = len(names)
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2, frames)[:, None]
    aa = 0.6 * np.sin(t * rng.uniform(1, 3, (1, J * 3)) + rng.uniform(0, 6, (1, J * 3))).reshape(frames, J, 3)
    aa[:, [3] + ([6] if hand_end else [])] = 0  # end sites do not rotate
    q = matrix_to_quat(axis_angle_to_matrix(aa))
    root = np.concatenate([np.sin(t), np.cos(t), 0.9 + 0 * t], axis=1)
    return Motion(Skeleton(names, parents, offsets), q, root, 30.0)


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "YZX"])
def test_written_bvh_reads_back_to_the_same_motion(tmp_path, order):
    m = toy_motion()
    path = write_bvh(m, tmp_path / "a.bvh", order=order)
    back = read_bvh(path)
    assert back.skeleton.joint_names == m.skeleton.joint_names
    assert np.array_equal(back.skeleton.parents, m.skeleton.parents)
    _, p0 = m.fk()
    _, p1 = back.fk()
    assert np.allclose(p0, p1, atol=1e-5) and abs(back.fps - 30.0) < 1e-4
    text = path.read_text()
    assert "End Site" in text and f"CHANNELS 6 Xposition Yposition Zposition {order[0]}rotation" in text
    assert text.count("End Site") == 2 and "LeftHand_end" not in text


def test_write_read_write_is_byte_identical(tmp_path):
    m = toy_motion()
    first = write_bvh(m, tmp_path / "1.bvh").read_bytes()
    assert write_bvh(read_bvh(tmp_path / "1.bvh"), tmp_path / "2.bvh").read_bytes() == first


def test_leaf_joints_get_an_end_site(tmp_path):
    m = toy_motion(hand_end=False)
    back = read_bvh(write_bvh(m, tmp_path / "a.bvh"))
    assert back.skeleton.joint_names == m.skeleton.joint_names + ("LeftHand_end",)
    assert np.allclose(back.fk()[1][:, :6], m.fk()[1], atol=1e-5)


def test_axes_and_units(tmp_path):
    m = toy_motion()
    y_up = change_axes(m, Z_UP_TO_Y_UP)
    assert np.allclose(y_up.fk()[1], m.fk()[1] @ Z_UP_TO_Y_UP.T, atol=1e-9)
    cm = scale_motion(m, 100.0)
    assert np.allclose(cm.fk()[1], 100 * m.fk()[1])
    with pytest.raises(ValueError, match="rotation matrix"):
        change_axes(m, np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="permutation of XYZ"):
        write_bvh(m, tmp_path / "x.bvh", order="XXZ")


@pytest.mark.shared_data
def test_cmu_clip_round_trip_is_byte_identical(shared_data, tmp_path):
    m = read_bvh(shared_data / "bvh" / "cmu_01_01.bvh")
    first = write_bvh(m, tmp_path / "1.bvh", order="ZYX")
    second = write_bvh(read_bvh(first), tmp_path / "2.bvh", order="ZYX")
    assert first.read_bytes() == second.read_bytes()
    _, p0 = m.fk()
    _, p1 = read_bvh(second).fk()
    assert np.allclose(p0, p1, atol=1e-4)  # file units (CMU units ≈ 5.6 cm): far below a millimetre


def test_joint_names_with_spaces_are_written_as_one_word_and_read_back(tmp_path, caplog):
    """A custom target rig's 3ds Max Biped names ("Bip01 L Thigh") were written as they are: a file no BVH reader
    takes. Whitespace is written as _, with a warning; names that would then repeat are refused."""

    def motion(names):
        sk = Skeleton(names, np.array([-1, 0, 1]), np.array([[0, 0, 0], [0.1, 0, 0], [0, 0, -0.4]], float))
        rot = np.zeros((2, 3, 4))
        rot[..., 0] = 1.0
        return Motion(sk, rot, np.zeros((2, 3)), 30.0)

    with caplog.at_level("WARNING", logger="mocap.io.bvh"):
        path = write_bvh(motion(("Bip01 Pelvis", "Bip01 L Thigh", "Bip01  L\tCalf")), tmp_path / "biped.bvh")
    assert read_bvh(path).skeleton.joint_names[:3] == ("Bip01_Pelvis", "Bip01_L_Thigh", "Bip01_L_Calf")
    assert "3 joint names hold spaces" in caplog.text
    with pytest.raises(ValueError, match=r"joint names \['L_Thigh'\] would repeat"):
        write_bvh(motion(("Pelvis", "L Thigh", "L_Thigh")), tmp_path / "clash.bvh")


def test_position_channels_on_joints_as_blender_writes_them_are_the_joints_offsets(tmp_path, caplog):
    """Blender's BVH exporter (and Unreal's) writes position channels on every joint; they were refused ("only the
    root may"). They are the joint's offset from its parent, read from the first frame (a warning if they move)."""
    text = ("HIERARCHY\nROOT Hips\n{\n\tOFFSET 0 1 0\n\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation "
            "Yrotation\n\tJOINT Thigh.L\n\t{\n\t\tOFFSET 0 0 0\n\t\tCHANNELS 6 Xposition Yposition Zposition "
            "Zrotation Xrotation Yrotation\n\t\tEnd Site\n\t\t{\n\t\t\tOFFSET 0 -0.4 0\n\t\t}\n\t}\n}\nMOTION\n"
            "Frames: 2\nFrame Time: 0.033333\n0 1 0 0 0 0 0.1 0 0 10 0 0\n0 1.1 0 0 0 0 0.1 0 0 20 0 0\n")
    path = tmp_path / "blender.bvh"
    path.write_text(text)
    m = read_bvh(path)
    assert np.allclose(m.skeleton.offsets[1], [0.1, 0, 0]) and np.allclose(m.root_positions[:, 1], [1.0, 1.1])
    _, p = m.fk()
    assert np.allclose(p[:, 1], [[0.1, 1.0, 0], [0.1, 1.1, 0]])  # the thigh where its channels put it
    assert caplog.text == ""
    path.write_text(text.replace("0 0 0.1 0 0 20", "0 0 0.2 0 0 20"))
    with caplog.at_level("WARNING", logger="mocap.io.bvh"):
        assert np.allclose(read_bvh(path).skeleton.offsets[1], [0.1, 0, 0])
    assert "joint 'Thigh.L' moves along Xposition by 0.1" in caplog.text
