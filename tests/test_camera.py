import cv2
import numpy as np
import pytest

from mocap.geometry.camera import distort, fold_r2, pixels_to_normalised, project, project_rows, undistort
from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from mocap.types import Camera, Rig

PINHOLE_DIST = np.array([-0.28, 0.09, 0.001, -0.0008, -0.015])
FISHEYE_DIST = np.array([0.05, -0.01, 0.002, -0.0005])


def make_camera(model="pinhole", name="cam", skew=0.5):
    T = np.eye(4)
    T[:3, :3] = axis_angle_to_matrix(np.array([0.1, -0.2, 0.05]))
    T[:3, 3] = [0.1, -0.2, 3.0]
    K = np.array([[900.0, skew, 640.0], [0.0, 910.0, 360.0], [0.0, 0.0, 1.0]])
    dist = PINHOLE_DIST if model == "pinhole" else FISHEYE_DIST
    return Camera(name, K, dist, T, (1280, 720), model)


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_undistort_inverts_distort(model):
    rng = np.random.default_rng(0)
    xy = rng.uniform(-0.6, 0.6, size=(1000, 2))
    dist = PINHOLE_DIST if model == "pinhole" else FISHEYE_DIST
    d, _ = distort(xy, dist, model)
    assert np.allclose(undistort(d, dist, model), xy, atol=1e-12)


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_projection_matches_opencv(model):
    cam = make_camera(model, skew=0.0)  # OpenCV's projectPoints has no skew
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(500, 3))
    rvec = matrix_to_axis_angle(cam.R)
    if model == "pinhole":
        ref, _ = cv2.projectPoints(X, rvec, cam.t, cam.K, cam.dist)
    else:
        ref, _ = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), rvec, cam.t, cam.K, cam.dist)
    assert np.allclose(project(cam, X), ref.reshape(-1, 2), atol=1e-6)


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_projection_jacobian_matches_finite_differences(model):
    cam = make_camera(model)
    X = np.random.default_rng(2).uniform(-1, 1, size=(50, 3))
    _, J = project(cam, X, jacobian=True)
    h = 1e-6
    num = np.stack([(project(cam, X + h * e) - project(cam, X - h * e)) / (2 * h) for e in np.eye(3)], axis=-1)
    assert np.allclose(J, num, rtol=1e-5, atol=1e-4)


def test_pixels_to_normalised_round_trip():
    cam = make_camera()
    X = np.random.default_rng(3).uniform(-1, 1, size=(100, 3))
    xn = pixels_to_normalised(cam, project(cam, X))
    Xc = X @ cam.R.T + cam.t
    assert np.allclose(xn, Xc[:, :2] / Xc[:, 2:], atol=1e-12)


def test_points_behind_camera_are_nan():
    cam = make_camera()
    behind = cam.center - 2.0 * cam.R[2]  # two metres behind the optical centre
    assert np.all(np.isnan(project(cam, behind)))


def _looking_down_z(model, dist):
    K = np.array([[600.0, 0.0, 640.0], [0.0, 600.0, 360.0], [0.0, 0.0, 1.0]])
    return Camera("wide", K, np.asarray(dist, float), np.eye(4), (1280, 720), model)


@pytest.mark.parametrize("model, dist", [("pinhole", [-0.3, 0.0, 0.0, 0.0, 0.0]),
                                         ("pinhole", [-0.35, 0.05, 0.001, -0.001, 0.0]),
                                         ("fisheye", [-0.3, 0.0, 0.0, 0.0])])
def test_points_past_the_lens_fold_are_nan_not_wrapped_into_the_image(model, dist):
    """A wide lens' k1 < 0 calibration is a polynomial that turns back: a point far off axis lands inside the
    image, on top of points that are there (emptiness checks then read a camera as seeing a spot it cannot)."""
    cam = _looking_down_z(model, dist)
    fold = fold_r2(cam.dist, model)
    assert 0 < fold < np.inf
    r = np.sqrt(fold) * np.array([0.3, 0.6, 0.9, 0.99, 1.01, 1.5, 3.0])
    X = np.stack([r, np.zeros_like(r), np.ones_like(r)], axis=-1)
    radial, _ = distort(X[:, :2], cam.dist, model)  # the polynomial itself: past the fold it comes back
    assert radial[5, 0] < radial[3, 0]
    uv = project(cam, X)
    inside, past = slice(0, 4), slice(4, None)
    assert np.allclose(uv[inside], radial[inside] @ cam.K[:2, :2].T + cam.K[:2, 2])
    assert np.isnan(uv[past]).all()
    uv_j, J = project(cam, X, jacobian=True)
    assert np.isnan(uv_j[past]).all() and np.isnan(J[past]).all() and np.isfinite(J[inside]).all()
    rows, J_rows = project_rows(cam, X)
    assert np.isnan(rows[:, past]).all() and np.allclose(rows[:, inside].T, uv[inside])
    # the fold is where the radial map stops growing (its slope 1 at the centre; the tangential terms, left
    # out of the fold, tilt it by under 1 %)
    h = 1e-6 * np.sqrt(fold)
    at = np.array([[np.sqrt(fold) - h, 0.0], [np.sqrt(fold) + h, 0.0]])
    d = distort(at, cam.dist, model)[0][:, 0]
    assert abs(d[1] - d[0]) / (2 * h) < 0.01


def test_lenses_that_never_fold_project_everything_in_front():
    assert fold_r2(np.zeros(5), "pinhole") == np.inf
    assert fold_r2(np.array([0.1, 0.02, 0.0, 0.0, 0.0]), "pinhole") == np.inf
    assert fold_r2(np.zeros(4), "fisheye") == np.inf
    assert fold_r2(np.array([-0.0462, 0.14, 0.0006, 0.0007, 0.0]), "pinhole") == np.inf  # a Qualisys lens
    cam = _looking_down_z("pinhole", [0.1, 0.02, 0.0, 0.0, 0.0])
    assert np.isfinite(project(cam, np.array([[30.0, 0.0, 1.0]]))).all()
    with pytest.raises(ValueError, match="unknown camera model 'orthographic'"):
        fold_r2(np.zeros(5), "orthographic")


@pytest.mark.parametrize("fx, message", [(np.nan, "focal length must be positive and finite"),
                                         (0.0, "focal length must be positive"),
                                         (-5.0, "focal length must be positive")])
def test_bad_focal_length_names_the_camera(fx, message):
    K = np.diag([fx, 800.0, 1.0])
    with pytest.raises(ValueError, match=rf"camera 'left': {message}"):
        Camera("left", K, np.zeros(5), np.eye(4), (640, 480))


def test_bad_rotation_and_distortion_and_names():
    R = np.eye(4)
    R[0, 0] = 2
    with pytest.raises(ValueError, match="not a proper rotation"):
        Camera("c", np.eye(3), np.zeros(5), R, (10, 10))
    with pytest.raises(ValueError, match="fisheye distortion needs 4"):
        Camera("c", np.eye(3), np.zeros(5), np.eye(4), (10, 10), "fisheye")
    with pytest.raises(ValueError, match="unknown model 'orthographic'"):
        Camera("c", np.eye(3), np.zeros(5), np.eye(4), (10, 10), "orthographic")
    cam = make_camera()
    with pytest.raises(ValueError, match=r"repeated: \['cam'\]"):
        Rig((cam, cam))


def test_camera_centre_and_projection_matrix():
    cam = make_camera()
    assert np.allclose(cam.R @ cam.center + cam.t, 0)
    assert cam.P.shape == (3, 4)


def test_undistort_skips_missing_points_with_the_same_result():
    """Missing detections (NaN, half of a multi-person take's slots) are not iterated on: every other point as when
    undistorted alone, NaN where a coordinate is missing, the shape kept."""
    rng = np.random.default_rng(4)
    xy = rng.uniform(-0.6, 0.6, (50, 3, 2))
    gone = rng.random((50, 3)) < 0.4
    holes = xy.copy()
    holes[gone] = np.nan
    holes[0, 0, 1] = np.nan  # one coordinate of a point
    dist = np.array([-0.08, 0.02, 0.0005, -0.0005, 0.0])
    out = undistort(distort(holes, dist, "pinhole")[0], dist, "pinhole")
    assert out.shape == xy.shape
    kept = ~gone & ~np.isnan(holes).any(axis=-1)
    assert np.isnan(out[~kept]).all()
    assert np.array_equal(out[kept], undistort(distort(xy[kept], dist, "pinhole")[0], dist, "pinhole"))
    assert np.allclose(out[kept], xy[kept], atol=1e-12)
