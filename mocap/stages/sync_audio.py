"""Camera time offsets from the cameras' audio tracks (``videos/<camera>.wav``): the coarse offsets that sync
refines on the 2D keypoints (:mod:`mocap.stages.sync`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# a camera's audio offset is taken where its cross-correlation peak stands this many robust deviations (1.4826 ×
# the median absolute deviation) above the correlation's median over the lags searched: claps 600-1,700, a track
# without them 3.6, a silent one none (its argmax was the first lag searched: −max_offset_s, applied as the null)
MIN_PEAK_Z = 10.0


def audio_offsets(wavs: dict[str, Path], fps: float, max_offset_s: float) -> dict[str, float | None]:
    """Offsets in frames from the audio tracks (cross-correlation of 1 kHz amplitude envelopes), against the first
    track; None for a camera whose track gives no distinct peak (:data:`MIN_PEAK_Z`: silent, or without the sound
    the others heard), every one None when the first track gives none."""
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
        rk = r[keep]
        mid = np.median(rk)
        spread = 1.4826 * np.median(np.abs(rk - mid))
        distinct = spread > 0 and (rk.max() - mid) / spread >= MIN_PEAK_Z
        out[n] = float(lags[keep][np.argmax(rk)]) / 1000 * fps if distinct else None
    if all(v is None for n, v in out.items() if n != names[0]) and len(names) > 1:
        out[names[0]] = None  # the first track (every one's reference) is the silent one, or nobody heard the same
    return out
