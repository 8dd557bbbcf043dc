"""Where a session's calibration footage lives. Layout::

    SESSION/calibration/
      board.toml                     the board (or pass --board NAME)
      board/<camera>.mp4             synchronised board take, one video per camera, or
      board/<camera>/*.jpg           one image folder per camera (frame order = file name order)
      intrinsics/<camera>[.mp4|/]    optional separate take for intrinsics (Pose2Sim: int_<camera>_img/)
"""

from __future__ import annotations

from pathlib import Path

from calibration.detect import camera_name
from mocap.io.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, probe


def find_sources(folder: Path) -> dict[str, Path]:
    """camera name → video file or image folder, for every camera found in ``folder``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration footage folder {folder} does not exist")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        is_video = p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
        is_images = p.is_dir() and any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir())
        if p.is_dir() and not is_images:
            raise ValueError(f"camera folder {p} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        if is_video or is_images:
            name = camera_name(p)
            if name in out:
                raise ValueError(f"{folder}: two sources for camera {name!r}: {out[name].name} and {p.name}")
            out[name] = p
    if not out:
        raise ValueError(f"{folder}: no camera videos ({', '.join(sorted(VIDEO_SUFFIXES))}) or image folders")
    return out


def check_same_length(sources: dict[str, Path]) -> None:
    """A synchronised take has the same number of frames in every camera."""
    counts = {cam: probe(p).frames for cam, p in sources.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"calibration videos have different lengths {counts}: the board take must be recorded "
                         "synchronised by every camera (trim them to the same frames)")
