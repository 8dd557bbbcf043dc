"""Multi-camera markerless motion capture.

Conventions, stated once for the whole project:

* lengths in metres, time in seconds, angles in radians unless a name says otherwise;
* the world frame is right-handed with Z up;
* cameras follow OpenCV: x right, y down, z forward; ``cam_from_world`` maps world points to camera
  coordinates, ``X_cam = R @ X_world + t``;
* pixel coordinates have the centre of the top-left pixel at (0, 0);
* quaternions are (w, x, y, z), unit norm;
* missing data is NaN, never 0.
"""

from mocap.types import Camera, Keypoints2D, KeypointSet, Motion, Points3D, Rig, Skeleton

__version__ = "0.1.0"

__all__ = ["Camera", "Rig", "Keypoints2D", "Points3D", "KeypointSet", "Skeleton", "Motion", "__version__"]
