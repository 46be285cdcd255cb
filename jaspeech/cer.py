"""Character and word error rates by the kotoba-whisper short-form protocol.

The protocol (kotoba-whisper's `run_short_form_eval.py`, reused by the original JaSpeechLLM evaluation):
Whisper's `BasicTextNormalizer` on both sides, spaces removed, `"。."` -> `"。"`, empty references
dropped, corpus-level rates (total edits / total reference units). The normaliser is reimplemented here
(it is a dozen lines upstream) so that the data pipeline does not import transformers.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

_BRACKETS = re.compile(r"[<\[][^>\]]*[>\]]")
_PARENS = re.compile(r"\(([^)]+?)\)")
_SPACES = re.compile(r"\s+")


def basic_text_normalize(text: str) -> str:
    """Whisper's `BasicTextNormalizer()` (no diacritic removal, no letter splitting)."""
    s = text.lower()
    s = _BRACKETS.sub("", s)
    s = _PARENS.sub("", s)
    s = "".join(" " if unicodedata.category(c)[0] in "MSP" else c for c in unicodedata.normalize("NFKC", s))
    s = s.lower()
    return _SPACES.sub(" ", s)


def kotoba_normalize(text: str) -> str:
    """The kotoba-whisper evaluation normalisation: `BasicTextNormalizer`, then spaces removed."""
    return basic_text_normalize(text.replace("。.", "。")).replace(" ", "")


def char_edits(reference: str, hypothesis: str) -> int:
    return Levenshtein.distance(reference, hypothesis)


def cer(reference: str, hypothesis: str) -> float:
    """Utterance CER on already-normalised strings; an empty reference gives 0 for an empty hypothesis, else 1."""
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return char_edits(reference, hypothesis) / len(reference)


def normalized_cer(reference: str, hypothesis: str) -> float:
    """CER after the kotoba-whisper normalisation of both sides: what the round-trip filter records as `cer`."""
    return cer(kotoba_normalize(reference), kotoba_normalize(hypothesis))


@dataclass
class CorpusRates:
    """Corpus-level rates in percent, as in the published `metric.jsonl`."""

    cer: float
    wer: float
    n: int


def corpus_rates(references: list[str], hypotheses: list[str]) -> CorpusRates:
    """Total character (and whitespace-word) edits over total reference length; empty references dropped."""
    char_err = char_total = word_err = word_total = n = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        if not ref:
            continue
        n += 1
        char_err += Levenshtein.distance(ref, hyp)
        char_total += len(ref)
        ref_words, hyp_words = ref.split(), hyp.split()
        word_err += Levenshtein.distance(ref_words, hyp_words)
        word_total += len(ref_words)
    return CorpusRates(
        cer=100.0 * char_err / char_total if char_total else 0.0,
        wer=100.0 * word_err / word_total if word_total else 0.0,
        n=n,
    )
