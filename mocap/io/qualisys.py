"""Qualisys QTM calibration export (``.qca.txt``, XML).

Per camera: ``transform`` holds the camera centre (x, y, z, mm) and a rotation whose rows are the
camera axes in the world with y up and z backwards (so OpenCV's ``R = diag(1, -1, -1) @ rows``);
``intrinsic`` holds focal lengths and principal point in sub-pixel units (÷ 64 for pixels),
radial k1..k3 and tangential p1, p2; ``fov_video`` gives the image rectangle. A system's marker cameras, exported
beside its video cameras, are left out (:func:`_video`).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from mocap.io.rig_files import check_camera_name
from mocap.types import Camera, Rig

SUBPIXEL = 64.0
FLIP = np.diag([1.0, -1.0, -1.0])
log = logging.getLogger(__name__)


def _video(cam: ET.Element) -> bool:
    """Whether a ``<camera>`` is a video camera: its model names video ("Miqus Video", "Miqus Video UnderWater"),
    or none is given (as Pose2Sim reads QTM's exports); a marker camera ("Miqus M3", "Arqus A12") records none."""
    model = (cam.get("model") or "none").strip().lower()
    return model in ("", "none") or "video" in model


def read_qualisys(path: str | Path) -> Rig:
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise FileNotFoundError(f"calibration file {path} does not exist") from None
    except ET.ParseError as e:
        raise ValueError(f"{path}: not a Qualisys calibration (XML error: {e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read the calibration file: {e}") from None
    cams = []
    entries = list(root.iter("camera"))
    video = [_video(c) for c in entries]
    if any(video) and not all(video):  # a system's marker (IR) cameras beside its video cameras: no videos of theirs
        log.info("%s: %d marker cameras left out (%s): only video cameras are read", path, video.count(False),
                 ", ".join(sorted({c.get("model", "") for c, v in zip(entries, video, strict=True) if not v})))
        entries = [c for c, v in zip(entries, video, strict=True) if v]
    names = [cam.get("serial") or f"cam{i + 1:02d}" for i, cam in enumerate(entries)]  # as the loop below names them
    off = [i for i, c in enumerate(entries) if c.get("active", "1").strip() == "0"]
    if off and len(off) < len(entries):  # a camera the calibration did not use (Qualisys' active="0"): no video of it
        log.info("%s: inactive cameras left out (active=\"0\"): %s", path, ", ".join(names[i] for i in off))
        entries = [c for i, c in enumerate(entries) if i not in off]
        names = [n for i, n in enumerate(names) if i not in off]
    for i, (cam, given) in enumerate(zip(entries, names, strict=True)):
        name = check_camera_name(path, given, f"<camera> #{i + 1} serial")
        where = f"{path}: camera {name!r}"
        tr, intr, fov = cam.find("transform"), cam.find("intrinsic"), cam.find("fov_video")
        if tr is None or intr is None or fov is None:
            raise ValueError(f"{where}: needs <transform>, <intrinsic> and <fov_video>")
        if cam.get("viewrotation", "0") not in ("0", ""):
            raise ValueError(f"{where}: viewrotation={cam.get('viewrotation')} is not supported")
        try:
            rows = np.array([[float(tr.get(f"r{a}{b}")) for b in "123"] for a in "123"])
            centre = np.array([float(tr.get(k)) for k in "xyz"]) / 1000.0
            left, top = int(fov.get("left")), int(fov.get("top"))
            width, height = int(fov.get("right")) - left + 1, int(fov.get("bottom")) - top + 1
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: missing or malformed attribute ({e})") from None
        if not (np.all(np.isfinite(rows)) and np.all(np.isfinite(centre))):
            raise ValueError(f"{where}: <transform> contains NaN or infinity")

        def f(key: str, intr=intr, where=where) -> float:
            try:
                return float(intr.get(key, "0"))
            except ValueError:
                raise ValueError(f"{where}: <intrinsic> {key}={intr.get(key)!r} is not a number") from None

        K = np.array([[f("focalLengthU") / SUBPIXEL, f("skew"), f("centerPointU") / SUBPIXEL - left],
                      [0.0, f("focalLengthV") / SUBPIXEL, f("centerPointV") / SUBPIXEL - top],
                      [0.0, 0.0, 1.0]])
        dist = [f("radialDistortion1"), f("radialDistortion2"), f("tangentalDistortion1"),
                f("tangentalDistortion2"), f("radialDistortion3")]
        R = FLIP @ rows
        U, _, Vt = np.linalg.svd(R)  # re-orthonormalise the printed digits
        R = U @ Vt
        if np.linalg.det(R) < 0 or not np.allclose(R, FLIP @ rows, atol=1e-2):
            raise ValueError(f"{where}: <transform> r11..r33 is not a rotation matrix")
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, -R @ centre
        try:
            cams.append(Camera(name, K, dist, T, (width, height)))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    if not cams:
        raise ValueError(f"{path}: no <camera> entries found")
    try:
        return Rig(tuple(cams))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
