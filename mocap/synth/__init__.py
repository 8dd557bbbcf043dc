"""Synthetic captures with ground truth: motion → keypoints → virtual rig → corrupted 2D."""

from mocap.synth.groundtruth import (
    CorruptionSpec,
    RigSpec,
    SyntheticTake,
    corrupt,
    keypoints_from_motion,
    load_marker_map,
    make_take,
    ring_rig,
    write_session,
)

__all__ = ["CorruptionSpec", "RigSpec", "SyntheticTake", "corrupt", "keypoints_from_motion", "load_marker_map",
           "make_take", "ring_rig", "write_session"]
