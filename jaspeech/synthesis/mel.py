"""Mel spectrograms as librosa computes them, in numpy: the slaney filterbank, a centred STFT, power to dB.

Two users share it: the CosyVoice2 runtime's frontend (whisper's and matcha's mels use librosa's filterbank)
and the DNSMOS P.808 features (`librosa.feature.melspectrogram` + `power_to_db`), so neither needs librosa.
Values agree with librosa to float32 rounding (tests/synthesis/test_mel.py checks against librosa).
"""
from __future__ import annotations

import numpy as np


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asanyarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep,
                    f / f_sp)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """librosa.filters.mel (slaney scale, slaney area normalisation) as float32 [n_mels, n_fft // 2 + 1].

    Both whisper (its mel_filters.npz) and matcha use exactly this matrix; computed here the way librosa
    does (float64 triangles stored into float32, then scaled) so the values agree to float32 rounding.
    """
    fmax = float(sample_rate) / 2 if fmax is None else fmax
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


def power_spectrogram(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """|librosa.stft(y, n_fft, hop_length)|**2 with librosa's defaults: periodic Hann window of n_fft,
    centred frames (n_fft // 2 zeros each side, librosa >= 0.10's `pad_mode="constant"`). [..., bins, frames]."""
    y = np.asarray(y, dtype=np.float64)
    pad = n_fft // 2
    padded = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(pad, pad)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[..., ::hop_length, :]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # scipy's hann(n_fft, sym=False)
    spec = np.fft.rfft(frames * window, axis=-1)
    return np.swapaxes(spec.real ** 2 + spec.imag ** 2, -1, -2)


def melspectrogram(y: np.ndarray, sample_rate: int, n_fft: int, hop_length: int, n_mels: int) -> np.ndarray:
    """librosa.feature.melspectrogram(y=y, sr=..., n_fft=..., hop_length=..., n_mels=...): power 2, slaney
    mels. [..., n_mels, frames] float64."""
    return mel_filterbank(sample_rate, n_fft, n_mels).astype(np.float64) @ power_spectrogram(y, n_fft, hop_length)


def power_to_db(s: np.ndarray, amin: float = 1e-10, top_db: float = 80.0) -> np.ndarray:
    """librosa.power_to_db(s, ref=np.max): dB below the loudest bin of each spectrogram (the last two axes),
    floored `top_db` below it."""
    db = 10.0 * np.log10(np.maximum(amin, s))
    db -= 10.0 * np.log10(np.maximum(amin, s.max(axis=(-2, -1), keepdims=True)))
    return np.maximum(db, db.max(axis=(-2, -1), keepdims=True) - top_db)
