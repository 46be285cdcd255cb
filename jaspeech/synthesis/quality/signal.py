"""Cheap signal checks of a stored clip: level, clipping and silences, in seconds and dBFS.

What a MOS model averages away: a clip can sound clean and still start with two seconds of dead air, end
in a long tail, or have its peaks flattened at full scale. Each figure is a few numpy passes over the clip
at its own rate (~1 ms per second of audio), so every spoken turn gets them, whatever `--quality` says.
"""
from __future__ import annotations

import numpy as np

SIGNAL_FIELDS = ("peak", "clipping", "leading_silence", "trailing_silence", "rms_db", "longest_silence")

FRAME_S = 0.02  # 20 ms frames ...
HOP_S = 0.01  # ... every 10 ms
SILENCE_DB = 40.0  # a frame this far below the clip's loudest frame is silence
FULL_SCALE = 0.999  # |x| at or above it: a sample at the ceiling (16-bit full scale is 32767/32768)
FLOOR_DB = -120.0  # the level of digital silence


def _db(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, 10 ** (FLOOR_DB / 10)))


def frame_levels(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level in dBFS of each 20 ms frame, every 10 ms (a clip shorter than a frame is one frame)."""
    x = np.asarray(samples, dtype=np.float64)
    frame, hop = max(1, round(FRAME_S * sample_rate)), max(1, round(HOP_S * sample_rate))
    if x.size < frame:
        x = np.pad(x, (0, frame - x.size))
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(0, x.size - frame + 1, hop)
    return _db((csum[starts + frame] - csum[starts]) / frame)


def signal_checks(samples: np.ndarray, sample_rate: int) -> dict[str, float]:
    """The six figures of `SIGNAL_FIELDS` for one clip.

    peak: max |x| (1.0 is full scale); clipping: share of samples at full scale (|x| >= 0.999);
    rms_db: the whole clip's RMS in dBFS; leading_silence / trailing_silence: seconds before the first and
    after the last frame within 40 dB of the loudest 20 ms frame; longest_silence: the longest run of
    such silent frames between them (a pause inside the speech), in seconds. Silence is relative to the
    clip's own loudest frame, so a quiet but clean voice has none; noise filling the pauses is not silence
    (the DNSMOS BAK score is what hears noise). A clip with no sound at all is all leading and trailing silence.
    """
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    n = x.size
    if n == 0:
        return {"peak": 0.0, "clipping": 0.0, "leading_silence": 0.0, "trailing_silence": 0.0,
                "rms_db": FLOOR_DB, "longest_silence": 0.0}
    magnitude = np.abs(x)
    levels = frame_levels(x, sample_rate)
    voiced = (levels > levels.max() - SILENCE_DB) & (levels > FLOOR_DB + 20)  # digital silence is never voice
    hop, frame = max(1, round(HOP_S * sample_rate)), max(1, round(FRAME_S * sample_rate))
    on = np.flatnonzero(voiced)
    if on.size == 0:  # nothing but silence: all of it is both leading and trailing
        return {"peak": float(magnitude.max()), "clipping": float(np.count_nonzero(magnitude >= FULL_SCALE) / n),
                "leading_silence": n / sample_rate, "trailing_silence": n / sample_rate,
                "rms_db": float(_db(np.mean(np.square(x, dtype=np.float64)))), "longest_silence": 0.0}
    first, last = int(on[0]), int(on[-1])
    leading = first * hop / sample_rate
    trailing = max(0, n - (last * hop + frame)) / sample_rate
    longest = 0
    if last > first:  # the longest run of silent frames between the first and the last voiced one
        inner = ~voiced[first:last + 1]
        edges = np.diff(np.concatenate([[0], inner.astype(np.int8), [0]]))
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        longest = int(runs.max()) if runs.size else 0
    return {
        "peak": float(magnitude.max()),
        "clipping": float(np.count_nonzero(magnitude >= FULL_SCALE) / n),
        "leading_silence": leading,
        "trailing_silence": trailing,
        "rms_db": float(_db(np.mean(np.square(x, dtype=np.float64)))),
        "longest_silence": longest * hop / sample_rate,
    }
