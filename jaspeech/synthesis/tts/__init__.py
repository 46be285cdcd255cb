"""TTS backends behind one interface.

A backend has a `name` (recorded in every row as `tts_model`) and
`synthesize(text, speaker, seed) -> (float32 mono samples, sample_rate)`. Backends are imported lazily,
so the package imports without any TTS stack installed.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from jaspeech.synthesis.speakers import SpeakerProfile


class TTSBackend(Protocol):
    name: str

    def synthesize(self, text: str, speaker: SpeakerProfile, seed: int) -> tuple[np.ndarray, int]: ...


TTS_BACKENDS = ("kokoro", "openjtalk", "tone")


def make_tts(name: str, **options) -> TTSBackend:
    if name == "kokoro":
        from jaspeech.synthesis.tts.kokoro import KokoroTTS

        return KokoroTTS(**options)
    if name == "openjtalk":
        from jaspeech.synthesis.tts.openjtalk import OpenJTalkTTS

        return OpenJTalkTTS(**options)
    if name == "tone":
        from jaspeech.synthesis.tts.tone import ToneTTS

        return ToneTTS(**options)
    raise ValueError(f"unknown TTS backend {name!r}; choose from {', '.join(TTS_BACKENDS)}")
