"""The ASR round trip: score a transcript against the text that was spoken.

`cer` follows the kotoba-whisper normalisation (see `jaspeech.cer`). `kana_cer` compares katakana
readings from pyopenjtalk, so that spelling choices the ear cannot hear (三月 vs 3月, 私 vs わたし)
are not errors; it is the filter's criterion.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from jaspeech.cer import cer, normalized_cer
from jaspeech.synthesis.reading import openjtalk_kana

_NOT_KANA = re.compile(r"[^\u30a1-\u30fa\u30fc]")


@lru_cache(maxsize=4096)
def kana_reading(text: str) -> str:
    """Katakana pronunciation of `text` (punctuation, spaces and unreadable characters dropped).

    The reading the offline voices speak (`reading.openjtalk_kana`): both sides of a comparison get the
    same frontend, so a kanji the OpenJTalk dictionary lacks (髙田) is read as it was spoken (タカダ).
    """
    return _NOT_KANA.sub("", openjtalk_kana(text))


def unreadable_kanji(text: str) -> str:
    """The kanji in `text` left without a reading (tagged as symbols, or with no pronunciation).

    Both offline TTS backends read through pyopenjtalk-plus's frontend, which reads a kanji its dictionary
    lacks with Sudachi's word reading or an on'yomi (benchmarks/readings.py: every variant kanji of the
    name sentences gets one); a character still unread would be skipped or make the frontend fail, so the
    row is rejected before synthesis instead.
    """
    import pyopenjtalk

    chars = []
    for feature in pyopenjtalk.run_frontend(text, use_sudachi_kanji_yomi=False):
        if feature["pos"] == "記号" or not feature.get("pron"):
            chars += [c for c in feature["string"] if _is_kanji(c)]
    return "".join(dict.fromkeys(chars))


def _is_kanji(c: str) -> bool:
    cp = ord(c)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2FFFF or 0xF900 <= cp <= 0xFAFF


@dataclass(frozen=True)
class TurnScore:
    transcript: str
    cer: float
    kana_cer: float


def score_turn(text: str, transcript: str) -> TurnScore:
    return TurnScore(
        transcript=transcript,
        cer=normalized_cer(text, transcript),
        kana_cer=cer(kana_reading(text), kana_reading(transcript)),
    )
