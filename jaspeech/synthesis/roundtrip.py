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

_NOT_KANA = re.compile(r"[^\u30a1-\u30fa\u30fc]")


@lru_cache(maxsize=4096)
def kana_reading(text: str) -> str:
    """Katakana pronunciation of `text` (punctuation and spaces dropped)."""
    import pyopenjtalk

    if not text.strip():
        return ""
    kana = pyopenjtalk.g2p(text, kana=True, use_sudachi_kanji_yomi=False)
    return _NOT_KANA.sub("", kana)


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
