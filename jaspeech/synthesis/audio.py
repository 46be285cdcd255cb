"""Audio helpers: FLAC bytes in and out, resampling, sanity checks."""
from __future__ import annotations

import io

import numpy as np


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
    import soundfile as sf  # here, not at import: a GPU node timing the ear needs no FLAC codec

    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

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


def split_at_pauses(samples: np.ndarray, sample_rate: int, max_seconds: float = 30.0,
                    search_seconds: float = 10.0) -> list[np.ndarray]:
    """Cut a clip into consecutive pieces of at most `max_seconds`, each cut in a pause.

    Whisper hears 30 s at a time. A clip cut at exactly 30 s may split a word between two windows, and
    both halves are then misheard; a cut in the quietest 200 ms of the last `search_seconds` before the
    limit falls between sentences or clauses of read speech (Kokoro leaves 0.35 s between sentences).
    Where there is no pause, the quietest moment still is the best guess. The pieces are views of
    `samples` and join back to it exactly; the result depends only on the clip.
    """
    limit = int(max_seconds * sample_rate)
    if samples.size <= limit:
        return [samples]
    frame = max(1, int(0.02 * sample_rate))
    n_frames = samples.size // frame
    energy = np.square(samples[: n_frames * frame].astype(np.float64)).reshape(n_frames, frame).mean(axis=1)
    smooth = np.convolve(energy, np.ones(10) / 10, mode="same")  # 10 frames of 20 ms
    pieces, start = [], 0
    while samples.size - start > limit:
        lo = -(-(start + max(1, limit - int(search_seconds * sample_rate))) // frame)  # first whole frame
        hi = (start + limit) // frame  # frames lo..hi-1 end before the limit
        region = smooth[lo:hi]
        if region.size == 0:  # a search span shorter than one frame: cut at the limit
            cut = start + limit
        else:
            k = lo + region.size - 1 - int(np.argmin(region[::-1]))  # the latest of equally quiet frames
            cut = k * frame + frame // 2
        pieces.append(samples[start:cut])
        start = cut
    pieces.append(samples[start:])
    return pieces
