"""BVH and TRC as exporters (:mod:`mocap.io.exporters`)."""

from __future__ import annotations

from pathlib import Path

from mocap.io.bvh import write_bvh
from mocap.io.exporters import Options, register
from mocap.io.trc import write_trc
from mocap.motion import Z_UP_TO_Y_UP, change_axes, scale_motion
from mocap.retarget import UNITS
from mocap.types import Motion


@register("bvh", ".bvh", "joint rotations, positions on the root (any Euler order, the rig's units and up axis)")
def bvh(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    m = change_axes(motion, Z_UP_TO_Y_UP) if opt.up == "y" else motion
    return write_bvh(scale_motion(m, UNITS[opt.units]), path, order=opt.order)


@register("trc", ".trc", "joint positions (OpenSim / Pose2Sim markers)")
def trc(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    _, p = motion.fk()
    return write_trc(path, p, motion.skeleton.joint_names, motion.fps, y_up=(opt.up == "y"))
