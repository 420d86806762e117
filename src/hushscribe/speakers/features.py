"""The speaker encoder's input: a 40-bin linear-power mel spectrogram (25 ms / 10 ms), computed as Resemblyzer
computes it (librosa defaults: Slaney mel scale, Hann window, centred frames), in numpy."""

from __future__ import annotations

import functools

import numpy as np

from hushscribe.audio import SAMPLE_RATE

N_FFT = 400  # 25 ms
HOP = 160  # 10 ms: one frame
N_MELS = 40
FRAME_S = HOP / SAMPLE_RATE


@functools.cache
def mel_filters() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) Slaney-style mel filterbank, area-normalised (librosa.filters.mel defaults)."""

    def hz_to_mel(hz):
        hz = np.asarray(hz, np.float64)
        log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(hz >= 1000.0, log_part, hz * 3.0 / 200.0)

    def mel_to_hz(mel):
        mel = np.asarray(mel, np.float64)
        return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), mel * 200.0 / 3.0)

    fft_hz = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    ramps = edges[:, None] - fft_hz[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def mel_power(samples: np.ndarray, block_frames: int = 6000) -> np.ndarray:
    """(frames, N_MELS) linear-power mel spectrogram, one frame per HOP samples, frames centred (zero padding),
    computed a minute at a time."""
    padded = np.pad(samples.astype(np.float32, copy=False), N_FFT // 2)
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa
    out = np.empty((n_frames, N_MELS), np.float32)
    for first in range(0, n_frames, block_frames):
        count = min(block_frames, n_frames - first)
        frames = np.lib.stride_tricks.sliding_window_view(padded[first * HOP:(first + count - 1) * HOP + N_FFT],
                                                          N_FFT)[::HOP]
        power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
        out[first:first + count] = power.astype(np.float32) @ mel_filters().T
    return out
