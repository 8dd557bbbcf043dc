import numpy as np
import pytest

from mocap.filters import butterworth, hampel, interpolate_gaps, one_euro

FPS = 100.0


@pytest.fixture
def signal():
    t = np.arange(1000) / FPS
    clean = np.stack([np.sin(2 * np.pi * 0.5 * t), np.cos(2 * np.pi * 1.0 * t)], axis=1)
    noisy = clean + np.random.default_rng(0).normal(0, 0.05, clean.shape)
    return clean, noisy


def rms(a):
    return float(np.sqrt(np.nanmean(a**2)))


def test_butterworth_removes_noise_without_lag(signal):
    clean, noisy = signal
    out = butterworth(noisy, FPS, 2.0)  # white noise keeps ~sqrt(2 / 50) of its amplitude
    assert rms(out - clean) < 0.3 * rms(noisy - clean)
    lag = np.argmax(np.correlate(out[:, 0], clean[:, 0], "full")) - (len(clean) - 1)
    assert lag == 0


def test_butterworth_respects_gaps(signal):
    clean, noisy = signal
    noisy = noisy.copy()
    noisy[400:420] = np.nan
    out = butterworth(noisy, FPS, 2.0)
    assert np.all(np.isnan(out[400:420])) and np.all(np.isfinite(out[:400])) and np.all(np.isfinite(out[420:]))
    assert rms(out[:390] - clean[:390]) < 0.3 * rms(noisy[:390] - clean[:390])
    with pytest.raises(ValueError, match="cut-off must be in"):
        butterworth(noisy, FPS, 80.0)


def test_interpolate_gaps_fills_short_runs_only():
    x = np.arange(20, dtype=float)
    x[3:5] = np.nan  # 2 frames
    x[10:16] = np.nan  # 6 frames
    x[0] = np.nan  # leading
    out = interpolate_gaps(x, max_gap=3)
    assert np.allclose(out[3:5], [3, 4]) and np.all(np.isnan(out[10:16])) and np.isnan(out[0])


def test_one_euro_smooths_still_signals_and_follows_fast_ones():
    rng = np.random.default_rng(1)
    still = 1.0 + rng.normal(0, 0.05, 500)
    still[250] = np.nan
    out = one_euro(still, FPS, min_cutoff=1.0, beta=0.0)
    assert rms(out[100:250] - 1.0) < 0.3 * rms(still[100:250] - 1.0)
    assert np.isnan(out[250]) and out[251] == still[251]  # restarted after the gap
    step = np.where(np.arange(300) < 150, 0.0, 1.0)
    slow = one_euro(step, FPS, min_cutoff=1.0, beta=0.0)
    fast = one_euro(step, FPS, min_cutoff=1.0, beta=1.0)
    assert fast[160] > slow[160] + 0.2  # speed raises the cut-off


def test_hampel_replaces_spikes(signal):
    clean, noisy = signal
    spiky = noisy.copy()
    spiky[[100, 300, 700], 0] += 2.0
    out, mask = hampel(spiky, half_window=5, n_sigmas=3)
    assert mask[[100, 300, 700], 0].all() and mask.mean() < 0.02
    assert np.max(np.abs(out - clean)) < 0.5
