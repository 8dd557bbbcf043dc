"""TRC marker files (OpenSim, Pose2Sim). One file per person.

OpenSim expects Y up: with ``y_up=True`` (default) world (x, y, z) is written as (x, z, -y).
Missing markers are written as empty fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mocap.io.atomic import atomic_write_text

Z_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def write_trc(path: str | Path, xyz: np.ndarray, names: list[str] | tuple[str, ...], fps: float,
              y_up: bool = True, units: str = "m") -> Path:
    """xyz: (F, J, 3) metres."""
    xyz = np.asarray(xyz, float)
    if xyz.ndim != 3 or xyz.shape[1:] != (len(names), 3):
        raise ValueError(f"TRC: expected (frames, {len(names)}, 3) points, got {xyz.shape}")
    scale = {"m": 1.0, "mm": 1000.0}[units]
    pts = (xyz @ Z_TO_Y_UP.T if y_up else xyz) * scale
    F, J = xyz.shape[:2]
    path = Path(path)
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{fps:g}\t{fps:g}\t{F}\t{J}\t{units}\t{fps:g}\t1\t{F}",
        "Frame#\tTime\t" + "\t\t\t".join(names) + "\t\t",
        "\t\t" + "\t".join(f"X{i + 1}\tY{i + 1}\tZ{i + 1}" for i in range(J)),
        "",
    ]
    row = "%d\t%.6f\t" + "\t".join(["%.6f"] * (3 * J))  # one format per row: rows with gaps field by field
    flat = pts.reshape(F, 3 * J)
    whole = np.isfinite(flat).all(axis=1)
    for f in range(F):
        if whole[f]:
            lines.append(row % (f + 1, f / fps, *flat[f].tolist()))
        else:
            vals = "\t".join("" if not np.isfinite(v) else f"{v:.6f}" for v in flat[f])
            lines.append(f"{f + 1}\t{f / fps:.6f}\t{vals}")
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_trc(path: str | Path, y_up: bool = True) -> tuple[np.ndarray, list[str], float]:
    """Returns (xyz (F, J, 3) metres in the Z-up world, marker names, fps)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: TRC file does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read the TRC file: {e}") from None
    try:
        header = dict(zip(lines[1].split("\t"), lines[2].split("\t"), strict=False))
        fps, units = float(header["DataRate"]), header["Units"]
        names = [n for n in lines[3].split("\t")[2:] if n]
    except (IndexError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a TRC file ({type(e).__name__}: {e})") from None
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"{path}: line 3: DataRate must be positive, got {fps}")
    if units not in ("m", "mm"):
        raise ValueError(f"{path}: line 3: Units must be m or mm, got {units!r}")
    if not names:
        raise ValueError(f"{path}: line 4: no marker names")
    data = []
    for n, line in enumerate(lines[5:], start=6):
        if not line.strip():
            continue
        fields = line.split("\t")[2:2 + 3 * len(names)]
        if len(fields) != 3 * len(names):
            raise ValueError(f"{path}: line {n}: expected {3 * len(names)} coordinates, got {len(fields)}")
        try:
            data.append([float(v) if v.strip() else np.nan for v in fields])
        except ValueError as e:
            raise ValueError(f"{path}: line {n}: {e}") from None
    xyz = np.array(data, float).reshape(len(data), len(names), 3) / {"m": 1.0, "mm": 1000.0}[units]
    return (xyz @ Z_TO_Y_UP if y_up else xyz), names, fps
