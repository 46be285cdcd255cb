"""ASR backends behind one interface: `transcribe(list of (samples, sample_rate), strong=False) -> list[str]`.

`name` is recorded in every row as `asr_model`. `none` skips the round trip (rows keep null scores).
`strong=True` is the second listening the round trip gives a turn whose first transcript failed the
threshold: a slower, more careful decode (beam search) of the same model. Both passes must transcribe
the whole clip, however long (Whisper hears 30 s windows one after another), and a clip's transcript
must depend only on the clip, never on the other clips of the call.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Protocol

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


class RecentWindows:
    """The encoder outputs of the last `size` windows heard, by content.

    A second listening decodes the same windows again; the encoder is ~80 % of Whisper base's time on
    CPU (measured: 190 s encoding vs 46 s greedy / 64 s beam-5 decoding for 39 sample clips), so
    re-running only the decoder makes the second listening cheap. A miss just encodes again: the cache
    changes the cost, never a transcript.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[bytes, Any] = OrderedDict()

    @staticmethod
    def key(window: np.ndarray) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(window).tobytes(), digest_size=16).digest()

    def get(self, key: bytes) -> Any | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: bytes, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
