"""Stage: time offsets between cameras without hardware sync (``sync.json``), applied downstream.

Offset d_c (frames, sub-frame): what the reference camera sees at frame t, camera c sees at t + d_c.
1. Coarse: the integer lag at which camera c's 2D keypoints best satisfy the epipolar geometry with
   the reference camera's (median distance to the epipolar lines; a moving person makes a sharp
   minimum), or cross-correlation of the audio envelopes when every camera has ``videos/<camera>.wav``.
   (Keypoint-speed cross-correlation, the usual recipe, locked onto the wrong period for repetitive
   motion in our tests, so it is not used.)
2. Fine: a golden-section search within ±1 frame on the same epipolar error, with camera c's tracks
   interpolated in time (the two-view reprojection error; it needs only the reference camera, so the
   cameras do not depend on each other). Optional sweeps then minimise camera c's reprojection error
   against points triangulated from all other cameras.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap.geometry.triangulation import triangulate
from mocap.io.atomic import atomic_write_text
from mocap.session import Session
from mocap.stages import Flag
from mocap.types import Keypoints2D, Rig

log = logging.getLogger(__name__)
NAME = "sync"
HELP = "camera time offsets (epipolar lag search, sub-frame; or audio), kept only when they help"


@dataclass(frozen=True)
class Config:
    enabled: bool = True
    max_offset_s: float = 2.0
    subframe: bool = True  # refine to a fraction of a frame (epipolar error against the reference camera)
    sweeps: int = 0  # then sweeps of reprojection error against points from all other cameras (measured:
    # no better than the epipolar refinement on synthetic takes, 0.02 frames either way)
    audio: bool = True  # use videos/<camera>.wav when every camera has one
    min_score: float = 0.2
    min_gain: float = 0.95  # offsets are applied only if they cut the median triangulation error by 5 %


FLAGS = (Flag("--off", "enabled", "no synchronisation: the cameras are hardware-synchronised", value=False),
         Flag("--max-offset-s", "max_offset_s", "largest offset searched, s", float))


def _wavs(session: Session) -> list[Path]:
    return sorted((session.root / "videos").glob("*.wav"))


def inputs(session: Session, settings) -> list[Path]:
    return session.keypoint_inputs(synced=False) + _wavs(session)


def outputs(session: Session, settings) -> list[Path]:
    return [session.sync_file]


def _normalised(rig: Rig, c: int, xy: np.ndarray) -> np.ndarray:
    from mocap.geometry.camera import pixels_to_normalised

    return np.concatenate([pixels_to_normalised(rig[c], xy), np.ones(xy.shape[:-1] + (1,))], axis=-1)


def _essential(rig: Rig, i: int, j: int) -> np.ndarray:
    T = rig[j].cam_from_world @ np.linalg.inv(rig[i].cam_from_world)
    R, t = T[:3, :3], T[:3, 3]
    return np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]]) @ R


def _epi(E: np.ndarray, ni: np.ndarray, nj: np.ndarray, focal: float) -> np.ndarray:
    line = ni @ E.T
    return np.abs(np.sum(nj * line, axis=-1)) / np.linalg.norm(line[..., :2], axis=-1) * focal


def epipolar_lag(rig: Rig, xy: np.ndarray, c: int, max_lag: int, ref: int = 0) -> tuple[float, float]:
    """Integer lag d of camera c (read at t + d) minimising the median epipolar error against the reference
    camera; the error curve is sharp where the person moves, and needs only these two cameras."""
    F = xy.shape[0]
    E, ni, nc, focal = _essential(rig, ref, c), _normalised(rig, ref, xy[:, ref]), _normalised(rig, c, xy[:, c]), \
        rig[c].K[0, 0]
    step = max(1, F // 400)  # a few hundred frames per lag are plenty
    best, best_e = 0, np.inf
    for d in range(-max_lag, max_lag + 1):
        t = np.arange(max(0, -d), F - max(0, d), step)
        e = _epi(E, ni[t], nc[t + d], focal)
        e = e[np.isfinite(e)]
        if e.size < max(20, xy.shape[2] * len(t) // 10):
            continue
        m = float(np.median(e))
        if m < best_e:
            best, best_e = d, m
    return float(best), best_e


def smooth_tracks(xy: np.ndarray, sigma_frames: float = 1.5) -> np.ndarray:
    """NaN-aware Gaussian smoothing along time of (F, ...) tracks. Sub-frame search needs it: linear
    interpolation halfway between two noisy frames averages their noise, which would otherwise pull
    every offset towards half a frame."""
    from scipy.ndimage import gaussian_filter1d

    ok = np.isfinite(xy)
    num = gaussian_filter1d(np.where(ok, xy, 0.0), sigma_frames, axis=0, mode="nearest")
    den = gaussian_filter1d(ok.astype(float), sigma_frames, axis=0, mode="nearest")
    return np.where(ok & (den > 0.3), num / np.maximum(den, 1e-9), np.nan)


def shift_tracks(data: np.ndarray, offset: float) -> np.ndarray:
    """(F, ...) samples → the same track read at t + offset (linear interpolation; NaN outside)."""
    F = data.shape[0]
    t = np.arange(F) + offset
    i0 = np.floor(t).astype(int)
    w = (t - i0).reshape((F,) + (1,) * (data.ndim - 1))
    valid0 = (i0 >= 0) & (i0 < F)
    valid1 = (i0 + 1 >= 0) & (i0 + 1 < F)
    a = np.where(valid0.reshape(w.shape), data[np.clip(i0, 0, F - 1)], np.nan)
    b = np.where(valid1.reshape(w.shape), data[np.clip(i0 + 1, 0, F - 1)], np.nan)
    exact = w == 0
    return np.where(exact, a, (1 - w) * a + w * b)


def apply_offsets(kp: Keypoints2D, offsets: dict[str, float]) -> Keypoints2D:
    data = kp.data.copy()
    for c, name in enumerate(kp.camera_names):
        d = offsets.get(name, 0.0)
        if d:
            data[:, c] = shift_tracks(kp.data[:, c], d)
    return Keypoints2D(data, kp.camera_names, kp.keypoint_set, kp.fps)


def _reprojection_error(rig: Rig, kp: Keypoints2D, c: int, offset: float, X: np.ndarray) -> float:
    cam = rig[c]
    xy = shift_tracks(kp.data[:, c, 0, :, :2], offset)  # (F, J, 2)
    uv = cam.project(X.reshape(-1, 3)).reshape(xy.shape)
    e = np.linalg.norm(uv - xy, axis=-1)
    e = e[np.isfinite(e)]
    return float(np.median(e)) if e.size > 20 else np.inf


def _golden(f, lo: float, hi: float, tol: float = 0.02) -> float:
    g = (np.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2


def audio_offsets(wavs: dict[str, Path], fps: float, max_offset_s: float) -> dict[str, float]:
    """Offsets in frames from the audio tracks (cross-correlation of 1 kHz amplitude envelopes)."""
    from scipy.io import wavfile
    from scipy.signal import correlate, resample_poly

    env = {}
    for name, path in wavs.items():
        rate, x = wavfile.read(path)
        x = np.asarray(x, float)
        x = x.mean(axis=1) if x.ndim > 1 else x
        e = np.abs(x - x.mean())
        env[name] = resample_poly(e, 1000, int(rate)) if rate != 1000 else e
    names = list(wavs)
    ref = env[names[0]] - env[names[0]].mean()
    out = {names[0]: 0.0}
    max_lag = int(max_offset_s * 1000)
    for n in names[1:]:
        s = env[n] - env[n].mean()
        r = correlate(s, ref, mode="full", method="fft")
        lags = np.arange(-len(ref) + 1, len(s))
        keep = np.abs(lags) <= max_lag
        out[n] = float(lags[keep][np.argmax(r[keep])]) / 1000 * fps
    return out


def run(rig: Rig, kp: Keypoints2D, cfg: Config = Config(), audio: dict[str, Path] | None = None) -> dict:
    """Offsets of every camera relative to the first (frames), and how they were found."""
    if tuple(kp.camera_names) != rig.names:
        raise ValueError(f"sync: keypoint cameras {list(kp.camera_names)} differ from rig {list(rig.names)}")
    F, C = kp.shape[:2]
    max_lag = int(min(cfg.max_offset_s * kp.fps, F // 3))
    names = list(kp.camera_names)
    xy = np.where((kp.score[..., None] >= cfg.min_score), kp.xy, np.nan)[:, :, 0]  # (F, C, J, 2), person 0
    if audio and cfg.audio:
        coarse = audio_offsets(audio, kp.fps, cfg.max_offset_s)
        method = "audio"
    else:
        coarse = {names[0]: 0.0}
        for c in range(1, C):
            lag, e = epipolar_lag(rig, xy, c, max_lag)
            coarse[names[c]] = lag
            log.info("sync %s: %+d frames (epipolar error %.2f px)", names[c], lag, e)
        method = "epipolar consistency of the 2D keypoints"
    offsets = dict(coarse)
    errors = {}
    if cfg.subframe:
        sm = smooth_tracks(xy)
        n_ref = _normalised(rig, 0, sm[:, 0])
        for c in range(1, C):
            E = _essential(rig, 0, c)

            def epi(d: float, c=c, E=E) -> float:
                e = _epi(E, n_ref, _normalised(rig, c, shift_tracks(sm[:, c], d)), rig[c].K[0, 0])
                e = e[np.isfinite(e)]
                return float(np.median(e)) if e.size > 20 else np.inf

            offsets[names[c]] = _golden(epi, offsets[names[c]] - 1.0, offsets[names[c]] + 1.0, tol=0.01)
            errors[names[c]] = epi(offsets[names[c]])
    if cfg.subframe and C >= 3:
        for _ in range(cfg.sweeps):  # each camera against the others as they stand
            for c in range(1, C):
                others = [o for o in range(C) if o != c]
                aligned = apply_offsets(kp, {names[o]: offsets[names[o]] for o in others})
                w = np.where(np.isfinite(aligned.score) & (aligned.score >= cfg.min_score), aligned.score, 0.0)
                uv = np.moveaxis(aligned.xy[:, others, 0], 1, 2).reshape(-1, len(others), 2)
                X, _, _ = triangulate(rig.subset([names[o] for o in others]), uv,
                                      np.moveaxis(w[:, others, 0], 1, 2).reshape(-1, len(others)),
                                      max_reproj_px=30.0)
                X = X.reshape(F, -1, 3)

                def err(d: float, c=c, X=X) -> float:
                    return _reprojection_error(rig, kp, c, d, X)

                d0 = offsets[names[c]]
                offsets[names[c]] = _golden(err, d0 - 0.5, d0 + 0.5, tol=0.01)
                errors[names[c]] = err(offsets[names[c]])
    for c in range(1, C):
        log.info("sync %s: %+.2f frames (median error %.2f px)", names[c], offsets[names[c]], errors.get(names[c], 0))
    result = {"reference": names[0], "offsets_frames": offsets, "coarse_frames": coarse, "method": method,
              "epipolar_px": errors, "fps": kp.fps, "config": asdict(cfg)}
    # keep the offsets only if they make the whole take triangulate better (hardware-synced rigs stay at 0)
    before, after = _triangulation_error(rig, kp, cfg), _triangulation_error(rig, apply_offsets(kp, offsets), cfg)
    result["triangulation_px"] = {"without": before, "with": after}
    if not after < cfg.min_gain * before:
        log.info("sync: offsets do not improve triangulation (%.2f → %.2f px); cameras kept as they are",
                 before, after)
        result["offsets_frames"] = {n: 0.0 for n in names}
        result["applied"] = False
    else:
        result["applied"] = True
    return result


def _triangulation_error(rig: Rig, kp: Keypoints2D, cfg: Config) -> float:
    w = np.where(np.isfinite(kp.score) & (kp.score >= cfg.min_score), kp.score, 0.0)[:, :, 0]
    uv = np.moveaxis(kp.xy[:, :, 0], 1, 2).reshape(-1, kp.shape[1], 2)
    _, err, _ = triangulate(rig, uv, np.moveaxis(w, 1, 2).reshape(-1, kp.shape[1]))
    return float(np.nanmedian(err))


def read_offsets(session: Session) -> dict[str, float]:
    path = session.root / "sync.json"
    if not path.is_file():
        return {}
    return {k: float(v) for k, v in json.loads(path.read_text())["offsets_frames"].items()}


def main(session: Session | str | Path, settings=None, overwrite: bool = False) -> Path:
    """``settings``: the pipeline's Settings, or this stage's Config."""
    from mocap.settings import as_settings

    session = session if isinstance(session, Session) else Session(Path(session))
    cfg = as_settings(settings).sync
    out = session.sync_file
    if out.exists() and not overwrite:
        log.info("%s exists, skipping synchronisation", out)
        return out
    rig = session.rig()
    kp = session.keypoints2d(rig)
    if kp.shape[2] > 1:  # several people per view: synchronise on the performer, not on a bystander
        from mocap.detect.select import select_performer

        kp = select_performer(rig, kp)
    wavs = {c: session.root / "videos" / f"{c}.wav" for c in rig.names}
    audio = wavs if all(p.is_file() for p in wavs.values()) else None
    if not cfg.enabled:
        result = {"reference": rig.names[0], "offsets_frames": {c: 0.0 for c in rig.names}, "method": "disabled",
                  "fps": kp.fps, "config": asdict(cfg)}
    else:
        result = run(rig, kp, cfg, audio)
    return atomic_write_text(out, json.dumps(result, indent=1))
