import numpy as np
import pytest

from mocap.geometry import rotations as rot


@pytest.fixture
def rng():
    return np.random.default_rng(1)


def test_quaternion_matrix_round_trip(rng):
    q = rng.normal(size=(100, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, :1])
    R = rot.quat_to_matrix(q)
    assert np.allclose(R @ np.swapaxes(R, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(R), 1.0)
    assert np.allclose(rot.matrix_to_quat(R), q, atol=1e-12)


def test_quaternion_product_matches_matrices(rng):
    a, b = rng.normal(size=(2, 50, 4))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    assert np.allclose(rot.quat_to_matrix(rot.quat_mul(a, b)), rot.quat_to_matrix(a) @ rot.quat_to_matrix(b))
    assert np.allclose(rot.quat_mul(a, rot.quat_conjugate(a)), [1, 0, 0, 0], atol=1e-12)


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_euler_round_trip(order, rng):
    angles = rng.uniform(-1.4, 1.4, size=(200, 3))
    R = rot.euler_to_matrix(angles, order)
    assert np.allclose(rot.matrix_to_euler(R, order), angles, atol=1e-9)
    first, second, third = (rot.euler_to_matrix(np.eye(3)[i] * angles[:, i : i + 1], order) for i in range(3))
    assert np.allclose(first @ second @ third, R)


def test_euler_order_is_matrix_product():
    R = rot.euler_to_matrix(np.array([0.3, 0.0, 0.0]), "ZXY")
    c, s = np.cos(0.3), np.sin(0.3)
    assert np.allclose(R, [[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_axis_angle_round_trip_and_small_angles(rng):
    v = rng.normal(size=(100, 3))
    v *= rng.uniform(0, 3.0, size=(100, 1)) / np.linalg.norm(v, axis=1, keepdims=True)  # angles below π
    assert np.allclose(rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(v)), v, atol=1e-9)
    tiny = np.array([1e-10, -2e-10, 0.0])
    assert np.allclose(rot.axis_angle_to_matrix(tiny), np.eye(3), atol=1e-9)
    assert np.allclose(rot.matrix_to_axis_angle(np.eye(3)), 0)


def test_quat_continuity_removes_sign_flips(rng):
    q = np.tile([1.0, 0.0, 0.0, 0.0], (10, 1))
    q[5:] *= -1
    assert np.all(rot.quat_continuous(q)[:, 0] > 0)


def _continuous_by_loop(q: np.ndarray, axis: int) -> np.ndarray:
    """The definition, frame by frame: flip a quaternion whose dot product with the one before, as flipped, is < 0."""
    q = np.moveaxis(q.copy(), axis, 0)
    for i in range(1, len(q)):
        q[i] = np.where(np.sum(q[i] * q[i - 1], axis=-1, keepdims=True) < 0, -q[i], q[i])
    return np.moveaxis(q, 0, axis)


def test_quat_continuity_equals_the_frame_by_frame_definition(rng):
    """Along any axis, with runs of flips, missing (NaN) and zero quaternions (both restart the sign) and one frame."""
    for shape in [(60, 4), (40, 5, 4), (6, 3, 2, 4), (1, 4), (2, 4)]:
        q = np.cumsum(rng.normal(size=shape) * 0.2, axis=0) + 1.0
        q *= rng.choice([-1.0, 1.0], size=shape[:-1] + (1,))  # sign flips to undo
        q[rng.random(shape[:-1]) < 0.08] = np.nan
        q[rng.random(shape[:-1]) < 0.08] = 0.0
        for axis in range(len(shape) - 1):
            expected = _continuous_by_loop(q, axis)
            got = rot.quat_continuous(q, axis)
            assert got.shape == expected.shape and np.array_equal(got, expected, equal_nan=True), (shape, axis)
    assert rot.quat_continuous(np.zeros((0, 4))).shape == (0, 4)
    fixed = np.tile([1.0, 0.0, 0.0, 0.0], (5, 1)) * np.array([[1], [-1], [1], [1], [-1]])
    fixed.flags.writeable = False  # the project's arrays are read-only: a new array comes back
    assert np.all(rot.quat_continuous(fixed)[:, 0] == 1) and fixed[1, 0] == -1
    with pytest.raises(ValueError, match=r"expected shape \(T, \.\.\., 4\).*got \(4,\)"):
        rot.quat_continuous(np.array([1.0, 0.0, 0.0, 0.0]))


def test_shape_errors_state_expected_and_actual():
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., 4\), got \(3,\)"):
        rot.quat_to_matrix(np.zeros(3))
    with pytest.raises(ValueError, match="permutation of XYZ"):
        rot.euler_to_matrix(np.zeros(3), "XXY")
