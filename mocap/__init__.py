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

__all__ = ["Camera", "Rig", "Keypoints2D", "Points3D", "KeypointSet", "Skeleton", "Motion", "run", "__version__"]


def run(session, config=None, **kwargs):
    """The whole pipeline on a session folder (``mocap run``); see :func:`mocap.pipeline.run`.
    ``config``: a PipelineConfig, or a path to a TOML file; keyword arguments: sets, from_stage."""
    from pathlib import Path

    from mocap.pipeline import PipelineConfig
    from mocap.pipeline import run as _run

    if isinstance(config, str | Path):
        return _run(session, config_path=config, **kwargs)
    if config is not None and not isinstance(config, PipelineConfig):
        raise TypeError(f"config must be a PipelineConfig or a TOML path, got {type(config).__name__}")
    return _run(session, config, **kwargs)
