"""Camera calibration of a multi-camera rig (boards, detection, intrinsics, extrinsics, bundle
adjustment, report). Builds on :mod:`mocap`; ``mocap`` never imports this package."""
