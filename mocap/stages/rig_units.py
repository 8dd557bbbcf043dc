"""A rig that is not in metres, caught before the stages that triangulate: a clear error naming the unit it is
most likely in and the command that converts it (``mocap calibration units``), instead of a performer a
kilometre tall (:mod:`mocap.geometry.units`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mocap.geometry.units import UNITS, camera_spread, likely_unit, performer_span
from mocap.io.rig_files import read_as_millimetres
from mocap.keypoint_sets import get_keypoint_set
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
NOT_METRES = 100.0  # cameras this far (RMS, in the rig's units) from their centre: not a rig in metres


def check_rig_units(rig: Rig, kp: Keypoints2D, rig_source: Path | str, session: Path | str) -> None:
    """Raise when the rig is, by its performer (one detection slot), in centimetres or millimetres, or, without
    a performer to measure, when its cameras stand over :data:`NOT_METRES` units from their centre."""
    span = performer_span(rig, kp, list(get_keypoint_set(kp.keypoint_set).joints)) if kp.shape[2] == 1 else None
    if span is not None:
        unit = likely_unit(*span)
        what = (f"the performer measures {span[0]:.4g} of its units from shoulders to "
                f"{'ankles' if span[1] > 1 else 'hips'} (an adult: about {span[1]:g} m)")
        tenth = 0.05 < span[0] / span[1] < 0.2 and read_as_millimetres(rig_source)  # an Anipose file in cm
        if unit is None and (abs(np.log10(span[0] / span[1])) > 1 or tenth):  # no unit fits, ten times off or more
            raise ValueError(f"{rig_source}: the rig's scale is off: {what}, {span[0] / span[1]:.3g} times that: a "
                             "rig converted twice (mocap calibration units), or calibrated with another board "
                             "square size than the board's? Calibrate again, or scale the rig" + (
                                 f"; about a tenth: an Anipose / Pose2Sim file in centimetres, read as millimetres "
                                 f"(its cameras stand over 50 units away)? mocap calibration units {session} cm"
                                 if tenth else ""))
        if unit in (None, "m"):
            return
    else:
        spread = camera_spread(rig)
        if spread <= NOT_METRES:
            return
        unit = "mm" if spread > 2000 else "cm" if spread < 1000 else None
        what = f"its cameras stand {spread:.4g} of its units from their centre"
    name = {"cm": "centimetres", "mm": "millimetres"}.get(unit, "millimetres or centimetres")
    raise ValueError(f"{rig_source}: the rig looks like it is in {name}, not metres: {what}. Convert it: mocap "
                     f"calibration units {session} {unit or 'mm|cm'} (writes calibration/rig.toml in metres; "
                     "your file is kept)")


def _check_conversion(session, rig: Rig, given: Path, unit: str) -> None:
    """Refuse to convert a rig that is not in ``unit``: the performer, when the session has 2D keypoints, would not
    measure an adult's size in metres after it; without them, the cameras would stand within 5 cm of their centre
    (a rig in metres taken for millimetres: it was divided by 1,000, and the run that followed accepted it)."""
    try:
        kp = session.keypoints2d(rig)
    except (FileNotFoundError, ValueError):
        kp = None
    span = None
    if kp is not None and kp.shape[2] == 1:
        span = performer_span(rig, kp, list(get_keypoint_set(kp.keypoint_set).joints))
    if span is not None:
        after = likely_unit(span[0] * UNITS[unit], span[1])
        if after != "m":
            raise ValueError(f"{given}: not in {unit}: the performer measures {span[0]:.4g} of its units from "
                             f"shoulders to {'ankles' if span[1] > 1 else 'hips'}, {span[0] * UNITS[unit]:.4g} m "
                             f"converted (an adult: about {span[1]:g} m); nothing converted")
    elif (spread := camera_spread(rig)) * UNITS[unit] < 0.05:
        raise ValueError(f"{given}: not in {unit}: its cameras stand {spread:.4g} of its units from their centre, "
                         f"{spread * UNITS[unit]:.3g} m converted (already in metres?); nothing converted")


def convert_rig(session, unit: str) -> Path:
    """Write the session's given rig in metres as ``calibration/rig.toml`` (its lengths × the unit's metres);
    a given ``rig.toml`` is first kept as ``rig.toml.<unit>.orig``; a rig not in that unit is refused
    (:func:`_check_conversion`). Returns the file written."""
    from mocap.geometry.align import with_similarity
    from mocap.io.atomic import atomic_write_text
    from mocap.io.rig_files import read_rig_as_written, write_rig

    if unit not in UNITS or unit == "m":
        raise ValueError(f"calibration units: the unit must be one of cm, mm, got {unit!r}")
    given = session.rig_path()
    rig = read_rig_as_written(given)  # an Anipose file in cm was read as mm (over 50 units): its numbers as written
    _check_conversion(session, rig, given, unit)
    out = session.calibration_dir / "rig.toml"
    keep = out.with_name(f"rig.toml.{unit}.orig")
    if given == out and not keep.exists():  # the user's file, kept once (a second conversion keeps the first)
        atomic_write_text(keep, out.read_text())
        log.info("kept %s as %s", out, keep)
    write_rig(with_similarity(rig, np.zeros((0, 3)), UNITS[unit], np.eye(3), np.zeros(3))[0], out)
    log.info("%s: %s read in %s, written in metres", out, given.name, unit)
    return out
