"""Camera time offsets from the cameras' audio tracks (``videos/<camera>.wav``): the coarse offsets that sync
refines on the 2D keypoints (:mod:`mocap.stages.sync`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
