"""Caption filters: each returns a reject reason or None.

A caption must be English, of sensible length, not degenerate (a model stuck repeating itself), and
not a refusal or empty answer. The builder retries a failing clip once, then rejects it with the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z']+")
_REFUSAL = re.compile(
    r"^\s*(i'?m sorry|sorry,|i cannot|i can'?t|i am unable|i'm unable|as an ai|unfortunately,? i|"
    r"i do not have|i don'?t have|there is no audio|no audio (?:was|is) provided)",
    re.IGNORECASE,
)
_COMMON = set(
    "the a an of and in is are with to sound sounds audio recording this there from by on at as it its "
    "be which while that background clip can heard hear noise followed then into some".split()
)


@dataclass(frozen=True)
class CaptionLimits:
    min_words: int = 3
    max_words: int = 400
    max_repeat_ratio: float = 0.5  # share of repeated word 4-grams above which a caption is degenerate


def check_caption(caption: object, limits: CaptionLimits = CaptionLimits()) -> str | None:
    """None if the caption is usable, else the reject reason."""
    if not isinstance(caption, str) or not caption.strip():
        return "caption_empty"
    text = caption.strip()
    if _REFUSAL.search(text):
        return "caption_refusal"
    letters = [c for c in text if c.isalpha()]
    if not letters or sum(c.isascii() for c in letters) / len(letters) < 0.95:
        return "caption_not_english"
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < limits.min_words:
        return "caption_too_short"
    if len(words) > limits.max_words:
        return "caption_too_long"
    if len(words) >= 8 and not (set(words) & _COMMON):
        return "caption_not_english"
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    if len(grams) >= 8 and 1 - len(set(grams)) / len(grams) > limits.max_repeat_ratio:
        return "caption_repetitive"
    return None
