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

from typing import Protocol

import numpy as np

from jaspeech.synthesis.asr.forced import Forced  # the scores' type, re-exported here

__all__ = ["ASR_BACKENDS", "ASRBackend", "Forced", "make_asr"]


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
