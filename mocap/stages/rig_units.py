"""A rig that is not in metres, caught before the stages that triangulate: a clear error naming the unit it is
most likely in and the command that converts it (``mocap calibration units``), instead of a performer a
kilometre tall (:mod:`mocap.geometry.units`)."""

from __future__ import annotations

import logging
from pathlib import Path

from mocap.geometry.units import UNITS, camera_spread, likely_unit, performer_span
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
        if unit in (None, "m"):
            return
        what = (f"the performer measures {span[0]:.4g} of its units from shoulders to "
                f"{'ankles' if span[1] > 1 else 'hips'} (an adult: about {span[1]:g} m)")
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


def convert_rig(session, unit: str) -> Path:
    """Write the session's given rig in metres as ``calibration/rig.toml`` (its lengths × the unit's metres);
    a given ``rig.toml`` is first kept as ``rig.toml.<unit>.orig``. Returns the file written."""
    import numpy as np

    from mocap.geometry.align import with_similarity
    from mocap.io.atomic import atomic_write_text
    from mocap.io.rig_files import read_rig, write_rig

    if unit not in UNITS or unit == "m":
        raise ValueError(f"calibration units: the unit must be one of cm, mm, got {unit!r}")
    given = session.rig_path()
    rig = read_rig(given)
    out = session.calibration_dir / "rig.toml"
    if given == out:
        keep = out.with_name(f"rig.toml.{unit}.orig")
        atomic_write_text(keep, out.read_text())
        log.info("kept %s as %s", out, keep)
    write_rig(with_similarity(rig, np.zeros((0, 3)), UNITS[unit], np.eye(3), np.zeros(3))[0], out)
    log.info("%s: %s read in %s, written in metres", out, given.name, unit)
    return out
