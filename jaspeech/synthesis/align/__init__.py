"""Word timestamps: Japanese words of a text, and their times in its audio from a teacher-forced ASR pass.

One rule for words: OpenJTalk's morphemes (`pyopenjtalk.run_frontend`, the NJD surface forms the TTS
itself reads), punctuation and symbols dropped. Japanese is written without spaces, so a "word" here is a
morpheme: 今日 / は / いい / 天気 / です / ね.

A word's time is the span of the ASR tokens that spell it (their first start to their last end), on the clock
of the clip that was scored: one synthesised sentence, so the synthesis' sentence boundaries bound every
word, and the builder adds the sentence's start on the recording. The scorer is the ear's teacher-forced pass,
`ASRBackend.score(audios, texts) -> list[Forced]` (faster-whisper: CTranslate2 Whisper's `align`, the
cross-attention alignment of the known text); an alignment that cannot give every word a span raises `AlignError`, which the
builder records as the row's `align_error`.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from jaspeech.synthesis.asr import Forced


class AlignError(Exception):
    """The text could not be aligned to its audio (the builder rejects the row: `align_error`)."""


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float


def _is_symbol(text: str) -> bool:
    return all(unicodedata.category(c)[0] in "PSZC" for c in text)


def words_of(text: str) -> list[tuple[int, int]]:
    """The words of `text` as character ranges (start, end), in order: OpenJTalk morphemes without
    punctuation. Where the dictionary rewrote the text (a morpheme not found where expected), the text between
    two found morphemes is one word, so the words always cover every spoken character of `text` exactly once."""
    import pyopenjtalk

    spans, pos = [], 0
    for m in pyopenjtalk.run_frontend(text):
        surface = m["string"]
        at = text.find(surface, pos) if surface else -1
        if at < 0:
            continue  # rewritten (a number read out, a full-width variant): covered by the gap rule
        if at > pos and not _is_symbol(text[pos:at]):
            spans.append((pos, at))
        spans.append((at, at + len(surface)))
        pos = at + len(surface)
    if pos < len(text):
        spans.append((pos, len(text)))
    return [(a, b) for a, b in spans if not _is_symbol(text[a:b])]


def word_times(text: str, forced: Forced, duration: float) -> list[Word]:
    """Each word of `text` with the time its characters take, clipped to [0, duration] and made monotonic (a word
    starts where the previous one ends at the earliest and lasts at least 10 ms).

    A token that spells several words (Whisper's は|いい may come as はい|い) shares its span among its
    characters evenly, so two words never claim the same stretch of audio."""
    if "".join(forced.tokens) != text:
        raise AlignError(f"the aligner scored {''.join(forced.tokens)!r}, not {text!r}")
    char_start, char_end = np.zeros(len(text)), np.zeros(len(text))
    pos = 0
    for tok, s, e in zip(forced.tokens, forced.starts, forced.ends):
        n = len(tok)
        for j in range(n):
            char_start[pos + j], char_end[pos + j] = s + (e - s) * j / n, s + (e - s) * (j + 1) / n
        pos += n
    words, last_end = [], 0.0
    for a, b in words_of(text):
        start = min(max(float(char_start[a]), last_end), duration - 0.01)
        end = min(max(float(char_end[b - 1]), start + 0.01), duration)
        if start < 0 or end <= start:
            raise AlignError(f"{text[a:b]!r} falls outside the clip ({duration:.2f} s)")
        words.append(Word(text[a:b], round(start, 3), round(end, 3)))
        last_end = end
    return words


class EvenAligner:
    """No ear (`--asr none`): each character of a sentence gets an equal share of the sentence's VOICED 20 ms
    frames (RMS above -40 dBFS), so a word never lands in the leading silence or a comma's pause. Coarse, but
    inside the synthesis' sentence boundaries and its speech; rows say which aligner timed them (`align_model`)."""

    name = "even (voiced frames of each synthesised sentence, no ASR)"
    FRAME = 0.02
    FLOOR_DBFS = -40.0

    def score(self, audios: list[tuple[np.ndarray, int]], texts: list[str]) -> list[Forced]:
        out = []
        for (x, sr), text in zip(audios, texts):
            frame = max(1, int(self.FRAME * sr))
            n_frames = len(x) // frame
            rms = np.sqrt(np.mean(np.square(np.asarray(x[: n_frames * frame], dtype=np.float64))
                                  .reshape(n_frames, frame), axis=1)) if n_frames else np.zeros(0)
            voiced = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-12)) > self.FLOOR_DBFS) * frame / sr
            n, v = len(text), len(voiced)
            if not v or not n:
                raise AlignError(f"no speech to time {text!r} in")
            starts = [float(voiced[min(v - 1, k * v // n)]) for k in range(n)]
            ends = [float(voiced[min(v - 1, max(k * v // n, -(-(k + 1) * v // n) - 1))]) + frame / sr
                    for k in range(n)]
            out.append(Forced("", list(text), [0.0] * n, starts, ends, [], [], [], []))
        return out
