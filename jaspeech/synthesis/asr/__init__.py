"""ASR backends behind one interface: `transcribe(list of (samples, sample_rate), strong=False) -> list[str]`.

`name` is recorded in every row as `asr_model`. `none` skips the round trip (rows keep null scores).
`strong=True` is the second listening the round trip gives a turn whose first transcript failed the
threshold: a slower, more careful decode (beam search) of the same model. Both passes must transcribe
the whole clip, however long (Whisper hears 30 s windows one after another), and a clip's transcript
must depend only on the clip, never on the other clips of the call.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np


class ASRBackend(Protocol):
    name: str

    def transcribe(self, audios: list[tuple[np.ndarray, int]], strong: bool = False) -> list[str]: ...


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
