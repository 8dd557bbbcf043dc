"""BVH and TRC as exporters (:mod:`mocap.io.exporters`)."""

from __future__ import annotations

from pathlib import Path

from mocap.io.bvh import write_bvh
from mocap.io.exporters import Options, register
from mocap.io.trc import write_trc
from mocap.motion import Z_UP_TO_Y_UP, change_axes, fill_gaps, scale_motion
from mocap.retarget import UNITS
from mocap.skeletons import fingertip_sites
from mocap.types import Motion


@register("bvh", ".bvh", "joint rotations, positions on the root (any Euler order, the rig's units and up axis)",
          takes_absent=True)  # cannot hide: it holds the pose itself, as a writer given NaN ends must
def bvh(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    motion, _ = fill_gaps(motion)  # BVH cannot hide a joint: where the person is not, the nearest pose held
    m = scale_motion(change_axes(motion, Z_UP_TO_Y_UP) if opt.up == "y" else motion, UNITS[opt.units])
    return write_bvh(m, path, order=opt.order, end_sites=fingertip_sites(m.skeleton))  # fingers end at their tips


@register("trc", ".trc", "joint positions (OpenSim / Pose2Sim markers)", takes_absent=True)
def trc(motion: Motion, extra: dict, path: Path, opt: Options) -> Path:
    _, p = fill_gaps(motion, ends=False)[0].fk()  # where the person is not (NaN ends): no markers
    return write_trc(path, p, motion.skeleton.joint_names, motion.fps, y_up=(opt.up == "y"))
