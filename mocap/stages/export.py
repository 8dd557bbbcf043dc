"""Stage: animation files from the motions (``export/<session>_<motion>.<ext>``).

The formats come from the exporter registry (:mod:`mocap.io.exporters`: bvh, fbx, glb, trc, c3d). Which motions:
``export.motions``, by default the fitted skeleton (``fit.skeleton``) and the retarget target
(``retarget.target``). Units and up axis follow each rig's preference unless set. Every file starts at frame 1 and
spans the take. Where a person is not (the frames before their first fitted frame and after the last: one who walks
in late, or leaves), ``export.absent = "hide"`` hides them: the root joint scaled to 0 in FBX and glTF, no markers
in TRC and C3D; BVH, which cannot hide a joint, holds the nearest pose (as ``"hold"`` does in every format: a
statue where nobody stands). FBX is written natively (:mod:`mocap.io.fbx`, no Blender) unless ``export.fbx_writer =
"blender"`` (Blender's FBX exporter in a child process, as GLB). With several
people, every fitted person's motions, each file named by the person:
``export/<session>_person2_<motion>.<ext>`` from ``motion/<motion>_person2.npz``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mocap.io import exporters
from mocap.io.capture import read_capture
from mocap.motion import fill_gaps, gap_counts
from mocap.retarget import UNITS, load_target_rig
from mocap.session import Person, Session, safe_name
from mocap.stages import Flag
from mocap.stages.aside import set_aside
from mocap.stages.fit import fitted_persons, skeleton_name
from mocap.stages.retarget import target_name
from mocap.types import Motion

log = logging.getLogger(__name__)
NAME = "export"
HELP = "animation files: " + " / ".join(n.upper() for n in exporters.names())
ABSENT = ("hide", "hold")  # Config.absent


@dataclass(frozen=True)
class Config:
    formats: tuple[str, ...] = ("bvh", "fbx")  # any of the registered exporters (mocap export --help)
    motions: tuple[str, ...] = ()  # motion/<name>.npz to export; (): the fitted skeleton and the retarget target
    bvh_order: str = "ZXY"
    units: str | None = None  # m | cm | cmu; None: the rig's preference (m for the fitted skeleton)
    up: str | None = None  # y | z; None: the rig's preference (y for the fitted skeleton)
    fbx_writer: str = "native"  # native (mocap.io.fbx, no Blender) | blender (Blender's FBX exporter in a child)
    # the frames before a person's first fitted frame and after the last: "hide" (root scaled to 0 in FBX and
    # glTF, no markers in TRC and C3D; BVH cannot hide: the pose is held) or "hold" (the nearest pose, everywhere)
    absent: str = "hide"

    def __post_init__(self) -> None:
        if self.absent not in ABSENT:
            raise ValueError(f"export: absent must be one of {', '.join(ABSENT)}, got {self.absent!r}")
        for f in self.formats:
            exporters.get(f)
        if self.fbx_writer not in exporters.FBX_WRITERS:
            raise ValueError(f"export: fbx_writer must be one of {', '.join(exporters.FBX_WRITERS)}, "
                             f"got {self.fbx_writer!r}")
        for m in self.motions:
            safe_name(m, "export.motions entry")
        if self.up not in (None, "y", "z"):
            raise ValueError(f"export: up must be 'y' or 'z', got {self.up!r}")
        if self.units is not None and self.units not in UNITS:  # before the run, not after every stage
            raise ValueError(f"export: units must be one of {', '.join(UNITS)}, got {self.units!r}")
        if sorted(str(self.bvh_order).upper()) != ["X", "Y", "Z"]:
            raise ValueError(f"export: bvh_order must be a permutation of XYZ (ZXY, XYZ, ...), got {self.bvh_order!r}")


def _formats(text: str) -> list[str]:
    return [f.strip() for f in text.split(",") if f.strip()]


FLAGS = (Flag("--formats", "formats", "comma-separated: " + ", ".join(exporters.names()), _formats,
              aliases=("--format",)),
         Flag("--motions", "motions", "comma-separated motion names (default: the fit and the retarget target)",
              _formats),
         Flag("--units", "units", "m | cm | cmu", str, choices=("m", "cm", "cmu")),
         Flag("--up", "up", "y | z", str, choices=("y", "z")),
         Flag("--fbx-writer", "fbx_writer", "native | blender", str, choices=exporters.FBX_WRITERS),
         Flag("--absent", "absent", "hide | hold: where a person is not (before entering, after leaving)", str,
              choices=ABSENT))


def motions(settings) -> tuple[str, ...]:
    return settings.export.motions or (skeleton_name(settings), target_name(settings))


def inputs(session: Session, settings) -> list[Path]:
    return [session.person_motion(m, p) for p in fitted_persons(session, settings) for m in motions(settings)]


def missing_hint(session: Session, path: Path, settings=None) -> str:
    """Which stage, under which setting, makes a motion ``export.motions`` names that no stage makes now; first, where
    ``export.motions`` names it while the run makes another rig (kept from an earlier ``mocap export --motions``, then
    ``--set retarget.target=ue5``), that setting and how to drop it."""
    from mocap.config_files import preset_names

    name = path.stem.split("_person")[0]
    if name in preset_names("rigs"):
        from mocap.settings import read_kept

        kept = settings is not None and settings.export.motions and name != target_name(settings) and \
            "export.motions" in read_kept(session.root)  # kept from an earlier command: forgetting it helps
        return f"; the retarget stage makes it with that rig: `mocap retarget {session.root} --target {name}`" + (
            f"; export.motions = {list(settings.export.motions)} names it while retarget.target is "
            f"{target_name(settings)!r}: to export what the run makes, `mocap config forget {session.root} "
            "export.motions` (or --set export.motions=[...])" if kept else "")
    if name in preset_names("skeletons"):
        return f"; the fit stage makes it with that skeleton: `mocap fit {session.root} --skeleton {name}`"
    return ""


def path_of(session: Session, motion: str, fmt: str, person: Person | None = None) -> Path:
    """``export/<session>_<motion>.<ext>``; for a person of several ``export/<session>_person2_<motion>.<ext>``."""
    return session.person_export(motion, person or Person.of(0, 1), exporters.get(fmt).suffix)


def outputs(session: Session, settings) -> list[Path]:
    return [path_of(session, m, f, p) for p in fitted_persons(session, settings) for m in motions(settings)
            for f in settings.export.formats]


def _preferences(name: str) -> tuple[str, str]:
    try:
        rig = load_target_rig(name)
        return rig.units, rig.up
    except ValueError:
        return "m", "y"


UNIT_WORDS = {"m": "metres", "cm": "centimetres", "cmu": "CMU units of 0.056444 m"}


def unit_note(settings, path: Path) -> str:
    """For the run's list of files: the unit of a BVH's offsets and positions (BVH does not say it; the mixamo
    rig's file is in centimetres beside the fitted skeleton's in metres: imported as metres, 100× too large),
    e.g. " (centimetres: the mixamo rig's unit)"; "" for the other formats (they carry their unit)."""
    if Path(path).suffix.lower() != ".bvh":
        return ""
    motion = next((m for m in sorted(motions(settings), key=len, reverse=True) if Path(path).stem.endswith(f"_{m}")),
                  None)
    if motion is None:
        return ""
    try:
        units, why = load_target_rig(motion).units, f"the {motion} rig's unit"
    except ValueError:  # the fitted skeleton's motion
        units, why = "m", "the fitted skeleton's unit"
    if settings.export.units:
        units, why = settings.export.units, "export.units"
    return f" ({UNIT_WORDS.get(units, units)}: {why})"


def write_motion(motion: Motion, path: Path, fmt: str, units: str = "m", up: str = "y", order: str = "ZXY",
                 extra: dict | None = None, fbx_writer: str = "native", absent: str = "hide") -> Path:
    """One animation file. Gaps (NaN frames) between fitted frames are interpolated first; those before the first
    and after the last are hidden or held (``absent``, :class:`Config`)."""
    _warn_gaps(motion, path.name, absent)
    motion, _ = fill_gaps(motion, ends=False)  # the ends: held or left to the writer by write_files, as absent says
    options = exporters.Options(units, up, order, fbx_writer, absent)
    return exporters.write_files([(fmt, motion, extra or {}, Path(path), options)])[0]


def _warn_gaps(motion: Motion, name: str, absent: str = "hide") -> None:
    """Say which frames without a fit the file fills, and how: interpolated between fitted frames, or held at the
    first (last) fitted pose before (after) them, where the person was not there or not reconstructed; with
    ``absent`` "hide", hidden there but in BVH."""
    inner, before, after = gap_counts(motion)
    if inner:
        log.warning("%s: %d frames without a fit between fitted frames were interpolated", name, inner)
    if absent == "hide" and (before or after):
        where = " and ".join(([f"the {before} frames before the first fitted frame"] if before else [])
                             + ([f"the {after} after the last" if before else f"the {after} frames after the last "
                                 "fitted frame"] if after else []))
        log.warning("%s: the person is hidden over %s (not there, or not reconstructed): the root scaled to 0 in FBX "
                    "and glTF, no markers in TRC and C3D; a BVH, which cannot hide a joint, holds the nearest fitted "
                    "pose there (export.absent = \"hold\": held in every format)", name, where)
        return
    first = f"the first fitted pose is held over the {before} frames before it"
    if before and after:
        log.warning("%s: %s and the last over the %d after it (the person was not there, or not reconstructed)", name,
                    first, after)
    elif before or after:
        log.warning("%s: %s (the person was not there, or not reconstructed)", name,
                    first if before else f"the last fitted pose is held over the {after} frames after it")


def run(motion: Motion, extra: dict, path: Path, fmt: str, options: exporters.Options) -> Path:
    return write_motion(motion, path, fmt, options.units, options.up, options.order, extra, options.fbx_writer,
                        options.absent)


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> list[Path]:
    """``settings``: the pipeline's Settings, or this stage's Config. The files are written together
    (:func:`mocap.io.exporters.write_files`: every file for Blender, GLB and FBX with ``fbx_writer`` "blender",
    through one Blender start)."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    settings = as_settings(settings)
    cfg = settings.export
    outs, jobs = [], []
    for person, name in [(p, m) for p in fitted_persons(session, settings) for m in motions(settings)]:
        src = session.person_motion(name, person)
        if not src.is_file():
            raise FileNotFoundError(f"export: {src} is missing; the fit stage (or retarget, for a game rig) makes "
                                    f"it (mocap run {session.root})")
        units, up = _preferences(name)
        options = exporters.Options(cfg.units or units, cfg.up or up, cfg.bvh_order, cfg.fbx_writer, cfg.absent)
        loaded = None
        for fmt in cfg.formats:
            out = path_of(session, name, fmt, person)
            outs.append(out)
            if out.exists() and not overwrite:
                log.info("%s exists, skipping", out)
                continue
            if loaded is None:
                motion, extra = read_capture(src)
                _warn_gaps(motion, src.name, cfg.absent)
                motion, _ = fill_gaps(motion, ends=False)  # the ends: write_files (export.absent)
                loaded = motion, extra
            jobs.append((fmt, loaded[0], loaded[1], out, options))
    for path in exporters.write_files(jobs):
        log.info("wrote %s", path)
    _remove_stale(session, settings, outs)
    return outs


def _remove_stale(session: Session, settings, outs: list[Path]) -> None:
    """The files of this stage's motions and formats for people who are no longer in the take (or, after a
    take of several, the unsuffixed ones of a one-person take and vice versa): moved to ``export/previous/`` (they
    were deleted: a run with another ``persons`` lost the earlier people's files). Those of another motion or
    format (made under earlier settings: another target rig, skeleton or format list) are moved to
    ``export/previous/``, said: beside the current ones they passed for current (a mixamo file of the fit before);
    so are those named after another session (this one copied or renamed: ``cp -r s1 s2`` left s1's files in s2's
    export folder beside its own)."""
    import re

    from mocap.config_files import preset_names

    now = set(motions(settings)), {exporters.get(f).suffix for f in settings.export.formats}
    names = "|".join(re.escape(m) for m in {*now[0], *preset_names("rigs"), *preset_names("skeletons")})
    suffixes = "|".join(re.escape(e.suffix) for e in exporters.exporters().values())
    # names compared without case: on a case-insensitive file system a folder renamed Take → take keeps its files'
    # old spelling, and they are this session's (moved aside, they would take the current files with them)
    pattern = re.compile(rf"{re.escape(session.export_stem)}(_person[0-9]+)?_({names})({suffixes})", re.IGNORECASE)
    another = re.compile(rf"(.+?)(_person[0-9]+)?_({names})({suffixes})")  # the session copied or renamed
    kept = {p.name.lower() for p in outs}
    aside: dict[str, list[Path]] = {}  # why → files, each reason said once
    for f in sorted(session.export_dir.glob("*")) if session.export_dir.is_dir() else []:
        if not f.is_file() or f.name.lower() in kept:
            continue
        if not (m := pattern.fullmatch(f.name)):
            if o := another.fullmatch(f.name):
                aside.setdefault(f"named after another session, {o.group(1)!r} (this one copied or renamed); the "
                                 f"export folder holds what this session, {session.export_stem!r}, makes", []).append(f)
            continue
        if m.group(2) in now[0] and m.group(3) in now[1]:
            aside.setdefault("of people not in this take any more (its people changed)", []).append(f)
        else:
            aside.setdefault("made under earlier settings (another target rig, skeleton or format); the export "
                             "folder holds what the current settings make", []).append(f)
    for why, files in aside.items():
        set_aside(files, why, log)
