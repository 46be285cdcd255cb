"""Audio helpers: FLAC bytes in and out, resampling, sanity checks."""
from __future__ import annotations

import io

import numpy as np
import soundfile as sf


def to_mono_float32(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / np.iinfo(x.dtype).max
    return x.astype(np.float32, copy=False)


def peak_normalize(samples: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scale to a fixed peak so quiet or clipping backends (OpenJTalk returns int16-range floats) agree."""
    m = float(np.max(np.abs(samples))) if samples.size else 0.0
    if m == 0.0 or not np.isfinite(m):
        return samples.astype(np.float32)
    return (samples * (peak / m)).astype(np.float32)


def encode_flac(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit FLAC: lossless for what the TTS produced once quantised, ~half the size of WAV."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    samples, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return to_mono_float32(samples), int(sr)


def resample(samples: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return samples.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(samples, sr_in, sr_out).astype(np.float32)


def decode_audio_value(audio: dict | None) -> tuple[np.ndarray, int]:
    """An HF `Audio(decode=False)` value -> (mono float32 samples, rate); raises on missing or empty audio."""
    if not audio or not audio.get("bytes"):
        raise ValueError("no audio bytes")
    samples, sr = decode_audio(audio["bytes"])
    if samples.size == 0:
        raise ValueError("empty audio")
    return samples, sr
