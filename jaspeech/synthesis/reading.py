"""What a TTS backend is asked to say: the text as written, or its OpenJTalk kana reading.

CosyVoice2 and CosyVoice3 read kanji with their Chinese pronunciations even inside Japanese sentences
(FunAudioLLM/CosyVoice issues 1090, 1603, 1720); the maintainers' advice is to give the model kana.
`reading="kana"` hands the backend the katakana pronunciation OpenJTalk gives each sentence, while the
row keeps the original text (the builder stores and scores the text it was given, not what the backend
was fed). The cost: the model no longer sees the words, so prosody can come out flatter (reported
upstream for kana input) and kanji-borne cues such as pitch accent of homophones are gone.

Kokoro and OpenJTalk already read through OpenJTalk's dictionary, so for them `text` is the default.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np

from jaspeech.synthesis.batch import synthesize_batch
from jaspeech.synthesis.speakers import SpeakerProfile

READINGS = ("text", "kana")
DEFAULT_READING = {"cosyvoice2": "kana", "cosyvoice2-upstream": "kana"}  # every other backend: "text"


def default_reading(tts: str) -> str:
    """The reading a backend gets unless told otherwise (kana for the backends that misread kanji)."""
    return DEFAULT_READING.get(tts, "text")


@lru_cache(maxsize=4096)
def openjtalk_kana(text: str) -> str:
    """Katakana pronunciation of `text` with its punctuation kept (、。！？「」 pace the speech).

    pyopenjtalk-plus's frontend as Kokoro and the OpenJTalk voice call it (`use_sudachi_kanji_yomi=False`,
    its post-processing on): a kanji its dictionary lacks gets Sudachi's word reading or an on'yomi
    (髙田 -> タカダ), from the Sudachi dictionary the offline extra installs. The same reading
    `roundtrip.kana_reading` scores against. Particles come out as spoken (は -> ワ), long vowels as ー,
    numbers and Latin letters spelled out (50% -> ゴジュッパーセント). A kanji still left without a reading
    stays as written; the builder rejects such rows before synthesis (`unreadable_kanji`) for every
    backend that reads through OpenJTalk, this wrapper included.
    """
    import pyopenjtalk

    if not text.strip():
        return ""
    return pyopenjtalk.g2p(text, kana=True, use_sudachi_kanji_yomi=False)


class KanaReading:
    """A TTS backend fed the OpenJTalk kana reading of each text instead of the text itself."""

    reads_with_openjtalk = True  # the reading comes from OpenJTalk's dictionary: unreadable kanji are rejected

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = f"{inner.name}, fed OpenJTalk kana readings"

    def synthesize(self, text: str, speaker: SpeakerProfile, seed: int) -> tuple[np.ndarray, int]:
        return self.inner.synthesize(openjtalk_kana(text), speaker, seed)

    def synthesize_batch(self, items: list) -> list:
        """The inner backend's batch (or loop) over the items' kana readings."""
        return synthesize_batch(self.inner, [replace(item, text=openjtalk_kana(item.text)) for item in items])

    def missing_voices(self, names) -> list[str]:
        check = getattr(self.inner, "missing_voices", None)
        return check(names) if check else []
