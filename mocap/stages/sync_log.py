"""What the sync stage found, said in the log (:func:`log_result`): per camera its offset, halves and test, a lag
not proven yet what a late video looks like, halves apart (frames lost mid-take?), cameras left untimed."""

from __future__ import annotations

import logging

from mocap.stages.sync_steps import HALVES_OWN_GAIN

log = logging.getLogger("mocap.stages.sync")


def log_result(result: dict) -> None:
    """What :func:`run` found, per camera, and the last check's verdict (the stage logs it: the camera
    refinement's check of the same test stays quiet)."""
    for n, info in result.get("cameras", {}).items():
        if info.get("steps") and n in result.get("steps", {}):
            log.warning("sync %s: %s", n, info["reason"])
        elif info["halves_frames"] is None:
            log.info("sync %s: %+.2f frames: %s", n, info["estimate_frames"], info["reason"])
        else:  # halves ≥ 2 frames apart, each 20 % better at its own offset (2 frames lost: 80-90 %), nothing applied:
            # said (6 frames lost mid-take: INFO only); apart on noise alone (0 / +2.8 frames, 1-15 % better): INFO
            apart = not info["applied"] and min(info.get("halves_own_gain") or [0.0]) >= HALVES_OWN_GAIN
            late = info.get("whole_lag_frames")  # a whole lag both halves find, not proven: said too
            log.log(logging.WARNING if apart or late else logging.INFO, "sync %s: %+.2f frames (halves %+.2f / %+.2f, "
                    "held-out gain %.1f %%, p = %.2g): %s%s", n, info["estimate_frames"], *info["halves_frames"],
                    100 * info["heldout_gain"], info["p_value"],
                    "applied" if info["applied"] else f"not applied, {info['reason']}",
                    "; the halves 2 frames or more apart: frames dropped or repeated mid-take? (check the video's "
                    "frame count; a take too short for sync.min_step_s parts is not cut)" if apart else
                    f"; both halves find {late:+d} frames: the camera may be out of time (late video?)" if late else "")
    least = max(2, (result.get("config") or {}).get("min_blocks", 16) // 4)
    untested = [n for n, info in result.get("cameras", {}).items()
                if info["halves_frames"] is not None and not info["applied"] and info.get("blocks", 0) < least]
    if untested:
        log.warning("sync: %s not timed: fewer than %d test blocks where a person sync works on is seen by both "
                    "the camera and the reference %s (a take too short or too still, or cameras that see different "
                    "people only?); were these cameras not hardware-synchronised, their time offsets are unknown (the "
                    "report flags a camera out of time)",
                    ", ".join(untested), least, result.get("timed_against", result.get("reference", "camera")))
    px = result.get("triangulation_px")
    if px and not any(result["offsets_frames"].values()) and not result.get("steps"):
        log.info("sync: the offsets do not improve triangulation in the cameras they move (%.2f → %.2f px); "
                 "cameras kept as they are", px["without"], px["with"])
