"""The ASR round trip: score a transcript against the text that was spoken.

`cer` follows the kotoba-whisper normalisation (see `jaspeech.cer`). `kana_cer` compares katakana
readings from pyopenjtalk, so that spelling choices the ear cannot hear (三月 vs 3月, 私 vs わたし)
are not errors; it is the filter's criterion. Both readings go through `same_sound` first, so a sound the
dictionary and a transcript write two ways (カジョーガキ for 箇条書き, カジョウガキ for かじょうがき) is one
reading.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from jaspeech.cer import cer, normalized_cer
from jaspeech.synthesis.reading import openjtalk_kana
from jaspeech.synthesis.text import latin_as_spoken

_NOT_KANA = re.compile(r"[^\u30a1-\u30fa\u30fc]")

# Kana that spell one sound two ways: small ヶ/ヵ/ヮ written for ケ/カ/ワ (一ヶ月), ヂ/ヅ for ジ/ズ (続く, 縮む),
# ヲ for オ (the particle), ヰ/ヱ for イ/エ; ヴ for the バ row (ヴァイオリン / バイオリン), as Japanese speakers
# and the voices say it.
_SAME_KANA = str.maketrans({"ヶ": "ケ", "ヵ": "カ", "ヮ": "ワ", "ヂ": "ジ", "ヅ": "ズ", "ヰ": "イ", "ヱ": "エ"})
_VU = re.compile("ヴ([ァィェォ]?)")
_VU_ROW = {"ァ": "バ", "ィ": "ビ", "": "ブ", "ェ": "ベ", "ォ": "ボ"}
# The vowel each kana ends in (its row); small ャュョ make the syllable end in a/u/o (キョ ends in o).
_ROWS = {
    "ア": "アカサタナハマヤラワガザダバパァャヮ",
    "イ": "イキシチニヒミリギジヂビピィ",
    "ウ": "ウクスツヌフムユルグズヅブプゥュ",
    "エ": "エケセテネヘメレゲゼデベペェ",
    "オ": "オコソトノホモヨロヲゴゾドボポォョ",
}
_VOWEL_OF = {k: v for v, kana in _ROWS.items() for k in kana}
# A vowel kana that lengthens the vowel before it: ウ after o and u (コウ, ユウ), イ after e (セイ), and a vowel
# after its own row (オオ, アア, イイ). Long vowels are then written ー, as pyopenjtalk writes them.
_LENGTHENS = {"ウ": "オウ", "イ": "エイ", "ア": "ア", "エ": "エ", "オ": "オ"}


def same_sound(kana: str) -> str:
    """`kana` with every spelling of one sound written one way (the rules above), applied to both sides.

    Long vowels: a vowel kana that lengthens the vowel before it becomes ー (トウキョウ -> トーキョー, センセイ ->
    センセー, オオサカ -> オーサカ). The limit: it also merges the two vowels of a word boundary or a verb ending
    (子馬 コウマ, 思う オモウ), which a listener hears as nearly one long vowel anyway; since both sides get the same
    rule, it can only forgive such a pair, never count a right take wrong. Sounds that differ are kept: a
    missing ー (コンピュータ vs コンピューター), small ァィゥェォ (ファ vs フア), ッ.
    """
    kana = _VU.sub(lambda m: _VU_ROW[m.group(1)], kana.translate(_SAME_KANA))  # ヲ stays ヲ until the end
    out: list[str] = []
    for c in kana:
        vowel = _VOWEL_OF.get(out[-1]) if out else None  # None after ー: コーウ stays (a third mora)
        if vowel and c in _LENGTHENS and vowel in _LENGTHENS[c]:
            out.append("ー")
        else:
            out.append(c)
    # ヲ becomes オ only now, so that を followed by お (ヲオ) is one long vowel on both sides, not ヲオ on one
    # and オー on the other (ワショクヲオシエテ heard as バショヲオシエテ)
    return "".join(out).replace("ヲ", "オ")


@lru_cache(maxsize=4096)
def kana_reading(text: str) -> str:
    """Katakana pronunciation of `text` (punctuation, spaces and unreadable characters dropped).

    The reading the offline voices speak (`reading.openjtalk_kana`): both sides of a comparison get the
    same frontend, so a kanji the OpenJTalk dictionary lacks (髙田) is read as it was spoken (タカダ). Both sides
    get the same reading rule: Latin-script words read as the spoken text reads them (`text.latin_as_spoken`: a
    transcript's N is エヌ, as the text spoke it), and spelling variants of one sound merged (`same_sound`).
    """
    return same_sound(written_kana(latin_as_spoken(text)))


def written_kana(text: str) -> str:
    """The dictionary's katakana reading of `text` as it writes it (punctuation dropped), before `same_sound`."""
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
