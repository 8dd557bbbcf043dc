"""A capture session on disk. Layout::

    SESSION/
      session.toml              take metadata: fps, keypoint_set (optional)
      calibration/rig.toml      the rig (or calibration/*.toml Anipose/Pose2Sim, *.qca.txt, *.yml)
      videos/<camera>.mp4       camera videos
      pose2d.h5                 2D keypoints (project HDF5), or
      pose2d/<camera>/*.json    2D keypoints as OpenPose JSON, one folder per camera
      points3d/<stage>.h5       3D points (triangulated, refined) and a .trc per person
      motion/body22.npz         fitted skeleton motion (capture file: see mocap.io.capture)
      motion/<rig>.npz          the motion retargeted onto a game rig (mixamo, ue5, unity, cmu)
      export/<session>_<rig>.bvh|fbx|glb|trc   animation files
      groundtruth/points3d.h5   synthetic sessions only

With several people (P > 1 on the persons axis of ``points3d/*.h5``) every per-person file carries the
person's name (:mod:`mocap.persons`): ``motion/body22_person2.npz``, ``motion/body22_person2.gaps.json``,
``motion/mixamo_person2.npz``, ``export/<session>_person2_mixamo.bvh``, and ``motion/body22.persons.json``
lists who was fitted (see :meth:`Session.persons` and :func:`mocap.stages.fit.person_files`).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap.config_files import check_keys, read_toml
from mocap.io.hdf5 import read_keypoints2d_shared
from mocap.io.openpose import read_openpose
from mocap.io.rig_files import read_rig
from mocap.persons import person_name, person_suffix
from mocap.session_checks import check_cameras, say_once
from mocap.types import Keypoints2D, Rig

# first match wins: ours, Anipose's, Pose2Sim's (Calib*.toml), Qualisys, OpenCV / EasyMocap
log = logging.getLogger(__name__)
RIG_PATTERNS = ("rig.toml", "calibration.toml", "[Cc]alib*.toml", "*.qca.txt", "intri.yml", "*.yml", "*.yaml")


@dataclass(frozen=True)
class Person:
    """One person of a take: ``index`` on the persons axis of ``points3d/*.h5``, ``name`` (``person1``...)
    and ``suffix``, what the person's files append to their stem (``""`` in a one-person take)."""

    index: int
    name: str
    suffix: str

    @staticmethod
    def of(index: int, persons: int) -> Person:
        return Person(index, person_name(index), person_suffix(index, persons))


@dataclass(frozen=True)
class Session:
    root: Path

    def __post_init__(self) -> None:
        root = Path(self.root)
        if not root.is_dir():
            raise FileNotFoundError(f"session folder {root} does not exist" if not root.exists() else
                                    f"{root} is a file, not a session folder")
        object.__setattr__(self, "root", root)

    @property
    def name(self) -> str:
        """The session folder's name (also for ``.`` or a path ending in ``..``): export file names use it."""
        return self.root.resolve().name

    @property
    def calibration_dir(self) -> Path:
        return self.root / "calibration"

    @property
    def pose2d_h5(self) -> Path:
        return self.root / "pose2d.h5"

    @property
    def pose2d_json(self) -> Path:
        return self.root / "pose2d"

    @property
    def points3d_dir(self) -> Path:
        return self.root / "points3d"

    @property
    def groundtruth_dir(self) -> Path:
        return self.root / "groundtruth"

    @property
    def motion_dir(self) -> Path:
        return self.root / "motion"

    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    @property
    def metadata_file(self) -> Path:
        return self.root / "session.toml"

    @property
    def sync_file(self) -> Path:
        return self.root / "sync.json"

    def motion(self, name: str) -> Path:
        return self.motion_dir / f"{safe_name(name, 'motion name')}.npz"

    def points3d(self, stage: str) -> Path:
        return self.points3d_dir / f"{safe_name(stage, 'points3d name')}.h5"

    def person_count(self, stage: str | None = None) -> int | None:
        """P, the number of people of ``points3d/<stage>.h5`` read from its header (``stage`` None: the
        refined points, else the triangulated ones); None when there is no such file."""
        for name in [stage] if stage else ["refined", "triangulated"]:
            path = self.points3d(name)
            if path.is_file():
                return _points3d_persons(path)
        return None

    def persons(self, stage: str | None = None) -> list[Person]:
        """The people of the take, in the order of the persons axis (one, unsuffixed, when there are no
        3D points yet). Their files: :meth:`person_motion`, :meth:`person_export`."""
        P = self.person_count(stage) or 1
        return [Person.of(p, P) for p in range(P)]

    def person_motion(self, name: str, person: Person) -> Path:
        """``motion/<name><suffix>.npz``: ``motion/body22.npz`` alone, ``motion/body22_person2.npz`` with others."""
        return self.motion(f"{safe_name(name, 'motion name')}{person.suffix}")

    @property
    def export_stem(self) -> str:
        """The session folder's name, which starts the export files' names. The user named that folder (it is
        not read from a file), so a space or an accent is fine ("Take 01", "séance 1"); what a file name
        cannot hold, or would hide, is refused."""
        n = self.name
        if not n or n.strip() != n or n.startswith(".") or ".." in n or any(c in n for c in "/\\\0") \
                or any(ord(c) < 32 for c in n):
            raise ValueError(f"session folder name {n!r} cannot start the export files' names (no leading or "
                             "trailing space, leading '.', '..', '/', '\\' or control characters): rename the folder")
        return n

    def person_export(self, motion: str, person: Person, suffix: str) -> Path:
        """``export/<session>_<motion><suffix>`` alone, ``export/<session>_person2_<motion><suffix>`` with
        others (``suffix``: the format's, e.g. ``.bvh``)."""
        return self.export_dir / (f"{self.export_stem}{person.suffix}_"
                                  f"{safe_name(motion, 'motion name')}{suffix}")

    def videos(self) -> list[Path]:
        from mocap.io.video import VIDEO_SUFFIXES

        d = self.root / "videos"
        return sorted(p for p in d.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if d.is_dir() else []

    @property
    def refined_rig_dir(self) -> Path:
        """Where the rig_refine stage writes: ``report.json`` and, when applied, ``rig.toml``."""
        return self.calibration_dir / "refined"

    def refined_rig_file(self) -> Path | None:
        """``calibration/refined/rig.toml`` when it exists, its ``report.json`` says applied and the given rig
        is still the one it was refined from (its SHA-256 in the report); else None."""
        import hashlib
        import json

        rig, report = self.refined_rig_dir / "rig.toml", self.refined_rig_dir / "report.json"
        given = self.given_rig_path()
        if not (rig.is_file() and report.is_file() and given.is_file()):
            return None
        try:
            info = json.loads(report.read_text())
            applied = info.get("applied") is True and \
                info.get("given_rig_sha256") == hashlib.sha256(given.read_bytes()).hexdigest()
        except (json.JSONDecodeError, AttributeError, OSError):
            return None
        return rig if applied else None

    def given_rig_path(self) -> Path:
        """The given rig file (see :meth:`rig_path`), or (when there is none yet) the one the calibrate
        stage would write; never the refined rig."""
        try:
            return self.rig_path()
        except FileNotFoundError:
            return self.calibration_dir / "rig.toml"

    def rig_input(self) -> Path:
        """The rig file the stages after rig_refine read: the refined rig when it was applied, else
        :meth:`given_rig_path`."""
        return self.refined_rig_file() or self.given_rig_path()

    def pose2d_input(self) -> Path:
        """The 2D keypoints: pose2d.h5, the OpenPose folder, or (neither yet) pose2d.h5 as detect writes it."""
        return self.pose2d_json if not self.pose2d_h5.is_file() and self.pose2d_json.is_dir() else self.pose2d_h5

    def keypoint_inputs(self, synced: bool = True) -> list[Path]:
        """What reading the 2D keypoints depends on: the keypoints, the rig, session.toml (fps, keypoint
        set) when present and, with ``synced``, the camera offsets when present."""
        out = [self.rig_input(), self.pose2d_input()]
        out += [p for p in [self.camera_moves_file()] if p is not None]
        out += [p for p in [self.metadata_file] if p.is_file()]
        out += [p for p in [self.sync_file] if synced and p.is_file()]
        return out

    def metadata(self) -> dict:
        path = self.root / "session.toml"
        if not path.is_file():
            return {}
        table = read_toml(path)
        check_keys(table, {"fps", "keypoint_set", "description"}, str(path))
        fps = table.get("fps", 30.0)
        if isinstance(fps, bool) or not isinstance(fps, int | float) or not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"{path}: fps must be a positive number of frames per second, got {fps!r}")
        if "keypoint_set" in table:
            from mocap.config_files import preset_names

            ks = table["keypoint_set"]
            if not isinstance(ks, str) or (ks not in preset_names("keypoints") and not ks.endswith(".toml")):
                raise ValueError(f"{path}: keypoint_set must be one of {preset_names('keypoints')} (or a .toml "
                                 f"file), got {ks!r}")
        if not isinstance(table.get("description", ""), str):
            raise ValueError(f"{path}: description must be a string")
        return table

    def rig_path(self) -> Path:
        """The given rig: the first match of :data:`RIG_PATTERNS` directly in ``calibration/`` (not its
        subfolders, so never ``calibration/refined/rig.toml``)."""
        for pattern in RIG_PATTERNS:
            found = sorted(self.calibration_dir.glob(pattern))
            if found:
                _say_other_rigs(self.calibration_dir, found[0])
                return found[0]
        raise FileNotFoundError(f"session {self.root}: no calibration found in {self.calibration_dir} "
                                f"(expected one of {', '.join(RIG_PATTERNS)})")

    def rig(self) -> Rig:
        """The rig the stages use: the refined one when rig_refine applied it, else the given one."""
        refined = self.refined_rig_file()
        return _read_rig(refined if refined else self.rig_path())

    def video_sampling(self) -> tuple[int, int]:
        """(start, stride): keypoint frame t is video frame ``start + t * stride`` (the detect stage's
        settings stored in ``pose2d.h5``; (0, 1) for keypoints from elsewhere)."""
        if not self.pose2d_h5.is_file():
            return 0, 1
        from mocap.io.hdf5 import FileInUseError, keypoints2d_status

        try:
            config = keypoints2d_status(self.pose2d_h5)[1]
        except FileInUseError:  # not unreadable: open in another process (said as it is)
            raise
        except (OSError, KeyError, ValueError):
            return 0, 1
        start, stride = config.get("start", 0), config.get("stride", 1)
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stride)) and start >= 0 and stride >= 1
        return (start, stride) if ok else (0, 1)

    def camera_moves_file(self) -> Path | None:
        """``calibration/refined/moves.json`` (cameras moved mid-take, :mod:`mocap.stages.rig_moves`) when the
        refined rig beside it is the one in use (:meth:`refined_rig_file`); else None."""
        path = self.refined_rig_dir / "moves.json"
        return path if path.is_file() and self.refined_rig_file() else None

    def camera_moves(self) -> list:
        """The cameras moved mid-take (:class:`~mocap.geometry.camera_moves.CameraMove`, from
        :meth:`camera_moves_file`), or []."""
        path = self.camera_moves_file()
        if path is None:
            return []
        from mocap.io.camera_moves import read_moves

        return read_moves(path)

    def keypoints2d(self, rig: Rig | None = None, moves: bool = True) -> Keypoints2D:
        """2D keypoints from ``pose2d.h5`` or the OpenPose folders, checked against the rig; with ``moves``, the
        detections of a camera moved mid-take read back into its pose in the refined rig
        (:meth:`camera_moves_file`; ``rig``: that rig, the default). The detections of frames a camera repeated
        (a frozen video: :mod:`mocap.detect.repeats`) are left out."""
        moved = self.camera_moves() if moves else []
        if moved:
            from mocap.geometry.camera_moves import apply_moves

            refined = _read_rig(self.refined_rig_dir / "rig.toml")
            return apply_moves(self.keypoints2d(rig, moves=False), refined, moved)
        rig = rig or self.rig()
        meta = self.metadata()
        if self.pose2d_h5.is_file():
            from mocap.io.hdf5 import keypoints2d_info
            from mocap.repeated_frames import mask_repeated  # a camera's repeated frames: stale detections, not used

            kp, source = read_keypoints2d_shared(self.pose2d_h5), self.pose2d_h5
            kp = mask_repeated(kp, keypoints2d_info(self.pose2d_h5))[0]
        elif self.pose2d_json.is_dir():
            folders = sorted(p.name.removesuffix("_json") for p in self.pose2d_json.iterdir() if p.is_dir())
            if sorted(rig.names) != folders:
                raise ValueError(
                    f"{self.pose2d_json}: camera folders {folders} do not match rig {self.rig_path()} cameras "
                    f"{list(rig.names)}; not in the rig: {sorted(set(folders) - set(rig.names))}; "
                    f"no keypoints for: {sorted(set(rig.names) - set(folders))}")
            kp = read_openpose(self.pose2d_json, rig.names, float(meta.get("fps", 30.0)), meta.get("keypoint_set"))
            source = self.pose2d_json
            if "fps" not in meta:  # OpenPose's JSON holds no frame rate: the BVH's frame time, the motion priors
                say_once(f"{source}: OpenPose JSON holds no frame rate and {self.metadata_file} names none: read at "
                          f"{kp.fps:g} fps; give the cameras' rate as fps = ... in {self.metadata_file} (a 60 fps "
                          "take read at 30 plays at half speed)")
        else:
            raise FileNotFoundError(f"session {self.root}: no 2D keypoints ({self.pose2d_h5.name} or "
                                    f"{self.pose2d_json.name}/<camera>/*.json)")
        check_cameras(kp, rig, source, self.rig_path())
        if source == self.pose2d_h5 and "fps" in meta and abs(float(meta["fps"]) - kp.fps) > 0.01 * kp.fps:
            say_once(f"{source}: its frame rate {kp.fps:g} fps differs from {self.metadata_file}'s fps = "
                      f"{meta['fps']:g}: the keypoints are read at {kp.fps:g} fps (the file's, from its videos); "
                      f"correct or remove fps in {self.metadata_file}")
        if meta.get("keypoint_set", kp.keypoint_set) != kp.keypoint_set:
            raise ValueError(f"{source}: keypoint set {kp.keypoint_set!r} differs from {self.metadata_file}'s "
                             f"keypoint_set = {meta['keypoint_set']!r}")
        if not np.isfinite(kp.xy).any():
            raise ValueError(f"{source}: no detection in any frame of any camera ({kp.shape[0]} frames)")
        return kp


_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")


def safe_name(name: str, what: str = "name", source: str | Path | None = None) -> str:
    """``name`` when it can be a file name (letters, digits, ``_ . + -``, not starting with a dot, no
    ``..``); otherwise a ValueError naming where it came from. Names read from user files (rig names,
    camera names, skeleton names) become paths only through this."""
    if not isinstance(name, str) or not _SAFE.fullmatch(name) or ".." in name:
        where = f"{source}: " if source else ""
        raise ValueError(f"{where}{what} {name!r} cannot be used in a file name: use letters, digits, '_', '-', "
                         "'.', '+' (not starting with '.', no '..', at most 128 characters)")
    return name


# ----- what the stages of a run ask again and again, read once per file content -----------------------------
# The stages after detection ask for the rig 5-6 times a run and for the number of people of the 3D points
# 13 times (each stage's inputs and outputs, the runner's checks): 1-2 ms each, read once per content instead.
_MEMO_KEEP = 8
_rigs: dict[str, tuple] = {}  # resolved path → (file_key, rig read)
_persons: dict[tuple, int] = {}


def _remember(memo: dict, key, value):
    memo.pop(key, None)
    while len(memo) >= _MEMO_KEEP:
        memo.pop(next(iter(memo)))
    memo[key] = value
    return value


def _read_rig(path: Path) -> Rig:
    """:func:`read_rig`, kept per file content (:func:`mocap.io.hdf5.file_key`: path, inode, size, times and a
    digest of the bytes, so a file edited or replaced is read again); every caller gets its own copy."""
    import copy

    from mocap.io.hdf5 import read_once

    return copy.deepcopy(read_once(_rigs, _MEMO_KEEP, path, read_rig)[0])


def _points3d_persons(path: Path) -> int:
    """:func:`mocap.io.hdf5.points3d_persons`, kept per file (device, inode, size, modification and change
    times: the points are written by renaming a new file over the old one, which changes them all)."""
    from mocap.io.hdf5 import points3d_persons

    st = path.stat()
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _persons:
        _remember(_persons, key, points3d_persons(path))
    return _persons[key]


_told_rigs: set[tuple[str, ...]] = set()


def _say_other_rigs(folder: Path, used: Path) -> None:
    """A warning (once per process) when ``folder`` holds other rig files than the one used (an old calibration.toml
    beat a new Calib_2026-12-05.qca.txt, unsaid): this project's rig.toml with its Anipose copy calibration.toml,
    and EasyMocap's intri.yml with its extri.yml, are one rig each."""
    names = {p.name for pattern in RIG_PATTERNS for p in folder.glob(pattern)}
    names -= {"calibration.toml"} if "rig.toml" in names else set()
    names -= {"extri.yml"} if "intri.yml" in names else set()
    others = sorted(names - {used.name})
    if others and (key := (str(folder), used.name, *others)) not in _told_rigs:
        _told_rigs.add(key)
        log.warning("%s: several calibration files: %s is used (the first of %s), not %s; keep one", folder,
                    used.name, ", ".join(RIG_PATTERNS), ", ".join(others))
