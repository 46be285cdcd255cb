"""What both CosyVoice2 backends share: the Japanese text a model that reads digits in Chinese is given,
sentences short enough to stay stable, the durations a sentence may plausibly have, and the speakers folder.

The runtime (`cosyvoice2`) and upstream's API (`cosyvoice2-upstream`) must say the same sentences and judge
runaway generations the same way, so they share this module rather than copies of it.
"""
from __future__ import annotations

import re
from pathlib import Path

from jaspeech.synthesis.speakers import ASSISTANT_PROFILES, PROFILES, SpeakerProfile
from jaspeech.synthesis.text import estimate_morae

MAX_PROMPT_SECONDS = 30.0  # upstream's speech tokenizer refuses longer prompts

_DIGITS = "〇一二三四五六七八九"
_UNITS = [(10**12, "兆"), (10**8, "億"), (10**4, "万")]
_SMALL = [(1000, "千"), (100, "百"), (10, "十")]


def _below_10000(n: int) -> str:
    out = ""
    for value, name in _SMALL:
        q, n = divmod(n, value)
        if q:
            out += ("" if q == 1 else _DIGITS[q]) + name
    return out + (_DIGITS[n] if n else "")


def kanji_number(n: int) -> str:
    """2024 -> 二千二十四, 10000 -> 一万: how Japanese reads integers, for a TTS that reads digits in Chinese."""
    if n == 0:
        return "零"
    out = ""
    for value, name in _UNITS:
        q, n = divmod(n, value)
        if q:
            out += _below_10000(q) + name
    return out + _below_10000(n)


def _number(match: re.Match) -> str:
    whole, frac = match.group(1).replace(",", ""), match.group(2)
    text = kanji_number(int(whole)) if len(whole) <= 16 else "".join(_DIGITS[int(d)] for d in whole)
    if frac:
        text += "点" + "".join(_DIGITS[int(d)] for d in frac)
    return text


def normalize_japanese(text: str) -> str:
    """Spell numbers as kanji numerals (the model would otherwise read digits in Chinese)."""
    text = re.sub(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?", _number, text)
    return text.replace("%", "パーセント")


def split_sentences(text: str, max_chars: int = 80) -> list[str]:
    """Sentences on 。！？; overlong ones further on 、 so each call stays short and stable."""
    out: list[str] = []
    for sentence in (s for s in re.split(r"(?<=[。！？!?])", text) if s.strip()):
        if len(sentence) <= max_chars:
            out.append(sentence)
            continue
        piece = ""
        for clause in re.split(r"(?<=[、,])", sentence):
            if piece and len(piece) + len(clause) > max_chars:
                out.append(piece)
                piece = ""
            piece += clause
        if piece:
            out.append(piece)
    return out


def plausible_seconds(text: str) -> tuple[float, float]:
    """The range of durations a sentence may have; outside it, the generation ran away or stopped early."""
    expected = estimate_morae(text) / 8.0  # ~8 morae/s for read Japanese
    return max(0.25, 0.35 * expected), 2.5 * expected + 1.0



def reference_voices(speakers: Path) -> list[SpeakerProfile]:
    """The voices a speakers folder registers: spk00..spk19 (all required), and the assistant voices of
    speech-to-speech configs where their clips exist (optional: an S2S build checks for them before any row)."""
    missing = [f"{p.name}{suffix}" for p in PROFILES for suffix in (".wav", ".txt")
               if not (speakers / f"{p.name}{suffix}").exists()]
    if missing:
        raise FileNotFoundError(
            f"speakers folder {speakers} lacks {', '.join(missing[:6])}{'...' if len(missing) > 6 else ''}: "
            "it needs <speaker>.wav (a 3-10 s reference clip) and <speaker>.txt (its transcript) "
            f"for {PROFILES[0].name}..{PROFILES[-1].name}"
        )
    assistants = [p for p in ASSISTANT_PROFILES
                  if (speakers / f"{p.name}.wav").exists() and (speakers / f"{p.name}.txt").exists()]
    return [*PROFILES, *assistants]


def voice_hint(speakers: Path, names: list[str]) -> str:
    return (f"speakers folder {speakers} has no reference clip for {', '.join(names)}: add <voice>.wav (a 3-10 s "
            "clip) and <voice>.txt (its transcript) for each; speech-to-speech configs (--speak assistant|both) "
            f"speak responses in the assistant voices {', '.join(p.name for p in ASSISTANT_PROFILES)}")


