"""ASR backends behind one interface: `transcribe(list of (samples, sample_rate), strong=False) -> list[str]`
and `score(audios, texts) -> list[Forced]`.

`name` is recorded in every row as `asr_model`. `none` skips the round trip (rows keep null scores).
`strong=True` is the second listening the round trip gives a turn whose first transcript failed the
threshold: a slower, more careful decode (beam search) of the same model. Both passes must transcribe
the whole clip, however long (Whisper hears 30 s windows one after another), and a clip's transcript
must depend only on the clip, never on the other clips of the call.

`score` asks the question a corpus needs answered: *does this audio say this text?* It gives each piece of
the known text the log-probability the ear's decoder gives it, teacher-forced (given the audio and the
text before it), and the same for the ear's own free (greedy) transcript, with the time each piece is
aligned to (Whisper's cross-attention alignment). A weak ear that cannot spell a rare word still gives the
right word a fair probability where it was said; a word the audio does not say gets a very low one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Forced:
    """The ear's teacher-forced reading of a known text on one clip, beside its own free transcript.

    `tokens` are pieces of the text as the ear's tokenizer cuts it, merged so that each piece is whole
    characters (a rare kanji is two or three byte tokens); their concatenation is the scored text.
    `logprobs[k]` is the log-probability of piece k given the audio and the pieces before it (the sum over
    its tokens); `starts`/`ends` are its aligned times in seconds on the clip's clock. The `own_*` lists are
    the same for the ear's free transcript `transcript`: what the ear gives its own best guess there.
    """

    transcript: str
    tokens: list[str]
    logprobs: list[float]
    starts: list[float]
    ends: list[float]
    own_tokens: list[str]
    own_logprobs: list[float]
    own_starts: list[float]
    own_ends: list[float]

    @property
    def text_logprob(self) -> float:
        """The text's log-probability per piece (0 for an empty text)."""
        return float(np.mean(self.logprobs)) if self.logprobs else 0.0


class ASRBackend(Protocol):
    name: str

    def transcribe(self, audios: list[tuple[np.ndarray, int]], strong: bool = False) -> list[str]: ...

    def score(self, audios: list[tuple[np.ndarray, int]], texts: list[str]) -> list[Forced]: ...


ASR_BACKENDS = ("faster-whisper", "transformers", "none")


def make_asr(name: str, model: str | None = None) -> ASRBackend | None:
    if name == "none":
        return None
    if name == "faster-whisper":
        from jaspeech.synthesis.asr.faster_whisper import FasterWhisperASR

        return FasterWhisperASR(model)
    if name == "transformers":
        from jaspeech.synthesis.asr.transformers_whisper import TransformersWhisperASR

        return TransformersWhisperASR(model or "openai/whisper-large-v3")
    raise ValueError(f"unknown ASR backend {name!r}; choose from {', '.join(ASR_BACKENDS)}")
