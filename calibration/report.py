"""Calibration report: JSON numbers, a residual plot and a top-down camera layout (PNG)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from calibration.calibrate import Calibration
from mocap.io.atomic import atomic_write_text


def write_report(cal: Calibration, folder: str | Path) -> dict[str, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    s = cal.summary
    data = {
        "usable": s.usable, "message": s.message, "iterations": s.iterations,
        "rms_px": s.final_rms_px, "initial_rms_px": s.initial_rms_px, "observations": s.observations,
        "rejected": s.rejected,
        "cameras": {c.name: {"rms_px": s.rms_per_camera.get(c.name), "views_used": cal.views_used.get(c.name, 0),
                             "fx": c.K[0, 0], "fy": c.K[1, 1], "cx": c.K[0, 2], "cy": c.K[1, 2],
                             "dist": c.dist.tolist(), "model": c.model, "centre_m": c.center.tolist(),
                             "intrinsics_rms_px": cal.intrinsics[c.name].rms_px if c.name in cal.intrinsics else None}
                    for c in cal.rig},
        "view_rms_px": {cam: {str(f): v for f, v in views.items()} for cam, views in cal.view_rms.items()},
    }
    paths = {"json": atomic_write_text(folder / "report.json", json.dumps(data, indent=2))}
    paths["residuals"] = _plot_residuals(cal, folder / "residuals.png")
    paths["layout"] = _plot_layout(cal, folder / "layout.png")
    return paths


def write_intrinsics_report(intrinsics: dict, folder: str | Path) -> Path:
    """``intrinsics.json`` of ``mocap calibrate --intrinsics-only`` (``{camera: Intrinsics}``): each camera's RMS,
    views used and camera matrix (the full calibration's ``report.json`` is left as it was)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = {"cameras": {name: {"rms_px": i.rms_px, "views_used": len(i.views), "fx": i.K[0, 0], "fy": i.K[1, 1],
                               "cx": i.K[0, 2], "cy": i.K[1, 2], "dist": i.dist.tolist(), "model": i.model,
                               "size": list(i.size)} for name, i in intrinsics.items()}}
    return atomic_write_text(folder / "intrinsics.json", json.dumps(data, indent=2, default=float))


def _plot_residuals(cal: Calibration, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(cal.view_rms)
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 1.6 * len(names) + 1), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        views = cal.view_rms[name]
        frames = np.array(sorted(views))
        rms = np.array([views[f] for f in frames])
        ax.bar(frames, rms, width=max(1.0, (frames.ptp() if frames.size else 1) / 300), color="tab:blue")
        ax.axhline(cal.summary.rms_per_camera.get(name, np.nan), color="tab:red", lw=1)
        ax.set_ylabel(f"{name}\npx", rotation=0, ha="right", va="center")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("frame")
    fig.suptitle(f"Reprojection error per board view (red: camera RMS); overall {cal.summary.final_rms_px:.3f} px")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_layout(cal: Calibration, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 7))
    boards = np.array([T[:3, 3] for T in cal.board_poses.values()])
    if boards.size:
        ax.scatter(boards[:, 0], boards[:, 1], s=4, c="0.6", label="board positions")
    scale = max(1.0, float(np.ptp([c.center[:2] for c in cal.rig], axis=0).max()) * 0.08)
    for c in cal.rig:
        x, y = c.center[:2]
        d = c.R[2][:2]
        d = d / (np.linalg.norm(d) + 1e-9) * scale
        ax.annotate("", xy=(x + d[0], y + d[1]), xytext=(x, y), arrowprops={"arrowstyle": "->", "color": "tab:red"})
        ax.plot(x, y, "o", color="tab:red")
        ax.text(x, y, f"  {c.name}\n  z={c.center[2]:.2f} m", fontsize=8)
    ax.plot([0, scale], [0, 0], color="tab:red", lw=2)
    ax.plot([0, 0], [0, scale], color="tab:green", lw=2)
    ax.set_aspect("equal")
    ax.set_xlabel("X (m)")
    ax.set_ylabel("Y (m)")
    ax.set_title("Camera layout seen from above (world origin: red X, green Y)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
