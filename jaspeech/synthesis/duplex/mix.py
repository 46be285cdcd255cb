"""The stereo recording of a timeline, and the checks that make it trustworthy.

`mix` only places samples: each piece of each segment is written at its start on its own channel. The checks
measure the result (they decide nothing; the builder turns a failed check into a `RowReject`):
- channel isolation: outside its own segments a channel stays below `ISOLATION_DBFS` (peak);
- no clipping: no sample of the mix reaches full scale, where two segments of one channel could add up;
- every span (segment piece or word) lies inside its channel's speech: some 20 ms frame within it is above
  `SPEECH_DBFS` (RMS);
- the recording lasts exactly the last segment's end plus the stated tail.
"""
from __future__ import annotations

import numpy as np

from jaspeech.synthesis.duplex.timeline import Segment

ISOLATION_DBFS = -60.0  # the silent channel's peak outside its segments stays below this
SPEECH_DBFS = -40.0  # a span holds speech if one 20 ms frame inside it has an RMS above this


def sample_at(seconds: float, sr: int) -> int:
    """The one rounding from the timeline's clock to sample positions (mix and checks agree on it)."""
    return int(round(seconds * sr))


def mix(segments: list[Segment], audios: list[list[np.ndarray]], sr: int, duration: float) -> np.ndarray:
    """(samples, 2) float32: each segment's pieces (`audios[n][k]`, mono at `sr`) at their starts on their
    channel; silence elsewhere. Pure; pieces of one channel that overlap are added (the clipping check sees it)."""
    out = np.zeros((sample_at(duration, sr), 2), dtype=np.float32)
    for seg, pieces in zip(segments, audios):
        for start, x in zip(seg.starts, pieces):
            a = sample_at(start, sr)
            x = np.asarray(x, dtype=np.float32).reshape(-1)[: max(0, out.shape[0] - a)]
            out[a : a + x.size, seg.channel] += x
    return out


def trim_silence(x: np.ndarray, sr: int, floor: float = SPEECH_DBFS, pad: float = 0.03) -> np.ndarray:
    """`x` without its leading and trailing silence (20 ms frames at or below `floor`), keeping `pad` seconds on
    each side. The timeline's gaps are offsets between speech, as Stivers et al. measured them, not between the
    edges of the synthesiser's clips (which carry 0.1-0.3 s of silence). A clip without speech is returned whole."""
    frame = max(1, int(0.02 * sr))
    n = x.size // frame
    if n == 0:
        return x
    rms = np.sqrt(np.mean(np.square(x[: n * frame].astype(np.float64)).reshape(n, frame), axis=1))
    voiced = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-12)) > floor)
    if not voiced.size:
        return x
    a = max(0, voiced[0] * frame - int(pad * sr))
    b = min(x.size, (voiced[-1] + 1) * frame + int(pad * sr))
    return x[a:b]


def _dbfs(x: float) -> float:
    return 20.0 * float(np.log10(max(x, 1e-12)))


def isolation_problems(stereo: np.ndarray, sr: int, segments: list[Segment],
                       bound: float = ISOLATION_DBFS) -> list[str]:
    """Channels whose peak outside their own segments' pieces reaches `bound` dBFS."""
    problems = []
    for ch in (0, 1):
        outside = np.ones(stereo.shape[0], dtype=bool)
        for seg in segments:
            if seg.channel == ch:
                for start, d in zip(seg.starts, seg.durations):
                    outside[sample_at(start, sr) : sample_at(start + d, sr)] = False
        rest = stereo[outside, ch]
        peak = _dbfs(float(np.max(np.abs(rest)))) if rest.size else -np.inf
        if peak >= bound:
            problems.append(f"channel {ch}: {peak:.1f} dBFS outside its segments (bound {bound:g})")
    return problems


def clipping_problems(stereo: np.ndarray) -> list[str]:
    peak = float(np.max(np.abs(stereo))) if stereo.size else 0.0
    return [f"peak {peak:.3f} reaches full scale"] if peak >= 1.0 else []


def has_speech(stereo: np.ndarray, sr: int, channel: int, start: float, end: float,
               floor: float = SPEECH_DBFS) -> bool:
    """Whether the span holds speech on `channel`: one 20 ms frame (or the whole span, if shorter) above `floor`."""
    x = stereo[sample_at(start, sr) : sample_at(end, sr), channel].astype(np.float64)
    if x.size == 0:
        return False
    frame = max(1, min(x.size, int(0.02 * sr)))
    n = x.size // frame
    rms = np.sqrt(np.mean(np.square(x[: n * frame]).reshape(n, frame), axis=1))
    return _dbfs(float(rms.max())) > floor


def span_problems(stereo: np.ndarray, sr: int, segments: list[Segment], words: list[dict]) -> list[str]:
    """Segment pieces and words whose span is not inside their own channel's speech."""
    problems = []
    for seg in segments:
        for k, (start, d) in enumerate(zip(seg.starts, seg.durations)):
            if not has_speech(stereo, sr, seg.channel, start, start + d):
                problems.append(f"{seg.kind} {seg.index} piece {k} ({start:.2f}-{start + d:.2f} s) holds no speech")
    for w in words:
        if not (w["end"] > w["start"] and has_speech(stereo, sr, w["channel"], w["start"], w["end"])):
            problems.append(f"word {w['word']!r} ({w['start']:.2f}-{w['end']:.2f} s) is not inside channel "
                            f"{w['channel']}'s speech")
    return problems
