"""TTS backends behind one interface.

A backend has a `name` (recorded in every row as `tts_model`) and
`synthesize(text, speaker, seed) -> (float32 mono samples, sample_rate)`. A backend that batches (the GPU
runtime) also has `synthesize_batch(items) -> [audio | Exception, ...]`, one result per item, in order;
the row builder always calls `synthesize_batch(tts, items)` (jaspeech/synthesis/batch.py), which loops over `synthesize` for the
backends that don't (Kokoro, OpenJTalk: one text at a time is all a CPU voice does). An item's audio must
depend only on the item (text, speaker, seed), never on the other items of the call. Backends are
imported lazily, so the package imports without any TTS stack installed. `make_tts(..., reading="kana")`
wraps a backend so it is fed OpenJTalk kana readings instead of the text (see jaspeech/synthesis/reading.py).
"""
from __future__ import annotations

from typing import Protocol

from jaspeech.synthesis.batch import Audio, SynthesisItem, synthesize_batch, synthesize_each  # noqa: F401
from jaspeech.synthesis.reading import READINGS, KanaReading, default_reading
from jaspeech.synthesis.speakers import SpeakerProfile


class TTSBackend(Protocol):
    name: str

    def synthesize(self, text: str, speaker: SpeakerProfile, seed: int) -> Audio: ...


# cosyvoice2: our batched runtime on upstream's unchanged model folder (jaspeech/synthesis/tts/cosyvoice2_runtime);
# cosyvoice2-upstream: upstream's own inference API, one sentence at a time (the oracle, for comparison)
TTS_BACKENDS = ("kokoro", "openjtalk", "cosyvoice2", "cosyvoice2-upstream", "tone")
ZERO_SHOT = ("cosyvoice2", "cosyvoice2-upstream")


def make_tts(name: str, model: str | None = None, speakers: str | None = None,
             reading: str | None = None, cache_dir: str | None = None) -> TTSBackend:
    """`model` and `speakers` are for zero-shot GPU backends; the offline ones carry their own.

    `reading`: "text" feeds the backend the text as written, "kana" its OpenJTalk kana reading (rows
    keep the text either way); None takes the backend's default, `default_reading(name)`. `cache_dir`: where
    the batched runtime keeps its speaker registration (None: registered anew in every process).
    """
    reading = reading or default_reading(name)
    if reading not in READINGS:
        raise ValueError(f"unknown TTS reading {reading!r}; choose from {', '.join(READINGS)}")
    backend = _make_backend(name, model, speakers, cache_dir)
    return KanaReading(backend) if reading == "kana" else backend


def _make_backend(name: str, model: str | None, speakers: str | None, cache_dir: str | None) -> TTSBackend:
    if name in ZERO_SHOT:
        if not model or not speakers:
            raise ValueError(f"--tts {name} needs --tts-model (the CosyVoice2 folder) and --speakers")
        if name == "cosyvoice2-upstream":
            from jaspeech.synthesis.tts.cosyvoice2 import CosyVoice2TTS

            return CosyVoice2TTS(model, speakers)
        from jaspeech.synthesis.tts.cosyvoice2_runtime.runtime import CosyVoice2Runtime

        return CosyVoice2Runtime.from_folders(model, speakers, cache_dir=cache_dir)
    if model or speakers:
        raise ValueError(f"--tts {name} takes no --tts-model or --speakers")
    if name == "kokoro":
        from jaspeech.synthesis.tts.kokoro import KokoroTTS

        return KokoroTTS()
    if name == "openjtalk":
        from jaspeech.synthesis.tts.openjtalk import OpenJTalkTTS

        return OpenJTalkTTS()
    if name == "tone":
        from jaspeech.synthesis.tts.tone import ToneTTS

        return ToneTTS()
    raise ValueError(f"unknown TTS backend {name!r}; choose from {', '.join(TTS_BACKENDS)}")
