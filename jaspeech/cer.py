"""Character and word error rates: the kotoba-whisper short-form protocol and jiwer's raw rates.

The protocol (kotoba-whisper's `run_short_form_eval.py`, reused by the original JaSpeechLLM evaluation):
Whisper's `BasicTextNormalizer` on both sides, spaces removed, `"。."` -> `"。"`, empty references
dropped, corpus-level rates (total edits / total reference units). The normaliser is reimplemented here
(it is a dozen lines upstream) so that the data pipeline does not import transformers.

The original evaluation also reports *raw* rates: `jiwer.cer` / `jiwer.wer` (through `evaluate`'s `cer`
and `wer` metrics, which sum jiwer's per-pair counts, the same as jiwer over the lists) with jiwer's
default transforms on the unnormalised strings. `jiwer_cer` / `jiwer_wer` reproduce them exactly with
rapidfuzz (jiwer itself is only a test oracle): see `jiwer_chars` and `jiwer_words` for the whitespace
rules. This module is the one home of the protocol; the corpus builders' round trip imports it, so it
must not import `jaspeech.model`.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

from rapidfuzz.distance import Levenshtein

_BRACKETS = re.compile(r"[<\[][^>\]]*[>\]]")
_PARENS = re.compile(r"\(([^)]+?)\)")
_SPACES = re.compile(r"\s+")


class _MarksSymbolsPunctuation(dict):
    """A `str.translate` table, filled on first sight of each code point: marks, symbols and punctuation
    (Unicode categories M*, S*, P*) become a space, everything else maps to itself."""

    def __missing__(self, code: int) -> int:
        self[code] = 32 if unicodedata.category(chr(code))[0] in "MSP" else code
        return self[code]


_MSP_TO_SPACE = _MarksSymbolsPunctuation()


def basic_text_normalize(text: str) -> str:
    """Whisper's `BasicTextNormalizer()` (no diacritic removal, no letter splitting)."""
    s = text.lower()
    s = _BRACKETS.sub("", s)
    s = _PARENS.sub("", s)
    s = unicodedata.normalize("NFKC", s).translate(_MSP_TO_SPACE)
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


# --- jiwer's default transforms ---------------------------------------------------------------------
# jiwer 4 `cer_default` = Compose([Strip(), ReduceToListOfListOfChars()]);
# `wer_default` = Compose([RemoveMultipleSpaces(), Strip(), ReduceToListOfListOfWords()]), where
# RemoveMultipleSpaces is re.sub(r"\s\s+", " ", s), Strip is str.strip() and the words are
# s.split(" ") without empty strings. Python's `\s` and `str.strip()` both use Unicode whitespace
# (str.isspace: U+3000, U+00A0, \n, \t, \x1c-\x1f, ...).
_WHITESPACE_RUN = re.compile(r"\s\s+")


def jiwer_chars(text: str) -> str:
    """One string as jiwer's `cer_default` sees it: Unicode whitespace stripped at both ends only.

    Inner whitespace of any kind (space, U+3000, newline, tab) stays and counts as a character, runs
    included (CER's default transform does not collapse them).
    """
    return text.strip()


def jiwer_words(text: str) -> list[str]:
    """One string as jiwer's `wer_default` sees it: its list of words.

    A run of two or more Unicode whitespace characters becomes one space, then both ends are stripped,
    then the text is split on the ASCII space only. So a *single* tab, newline or U+3000 between two
    words does not separate them (`"a\tb"` is one word for jiwer), while any two whitespace characters
    in a row do (`"a\n\nb"` is two words).
    """
    if text.isprintable():  # no whitespace but the ASCII space (all others are non-printable): same words
        return text.split()
    return [w for w in _WHITESPACE_RUN.sub(" ", text).strip().split(" ") if w]


def _as_list(texts: str | Sequence[str]) -> list[str]:
    return [texts] if isinstance(texts, str) else list(texts)


def _corpus_rate(references: list, hypotheses: list, unit: str) -> float:
    """Total edits / total reference units over aligned pairs, as jiwer's `process_words` sums them."""
    edits = total = 0
    for ref, hyp in zip(references, hypotheses):
        edits += Levenshtein.distance(ref, hyp)
        total += len(ref)
    if total == 0:
        raise ValueError(
            f"every reference is empty (no {unit} after jiwer's whitespace stripping): the error rate is "
            "undefined. Drop empty references before scoring (the kotoba-whisper protocol does)")
    return edits / total


def _check_lengths(references: list[str], hypotheses: list[str]) -> None:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses: pass one "
                         "hypothesis per reference")


def jiwer_cer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """`jiwer.cer(references, hypotheses)` with its default transform, as a fraction, computed with rapidfuzz.

    Corpus level: total character edits / total reference characters after `jiwer_chars`. An empty
    reference among others adds its hypothesis's characters as insertions, as in jiwer. Where jiwer
    does not return a rate we differ on purpose: when every reference is empty (or there are none)
    jiwer returns the insertion count (0 for empty lists); we raise `ValueError`. Unequal lengths raise
    `ValueError`, as in jiwer.
    """
    refs, hyps = _as_list(references), _as_list(hypotheses)
    _check_lengths(refs, hyps)
    return _corpus_rate([jiwer_chars(r) for r in refs], [jiwer_chars(h) for h in hyps], "characters")


def jiwer_wer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """`jiwer.wer(references, hypotheses)` with its default transform, as a fraction (see `jiwer_cer`).

    Words come from `jiwer_words`; each distinct word is mapped to an integer (as jiwer does) so that
    the word-level Levenshtein distance compares words exactly, never by hash.
    """
    refs, hyps = _as_list(references), _as_list(hypotheses)
    _check_lengths(refs, hyps)
    ids: dict[str, int] = {}
    ref_ids = [[ids.setdefault(w, len(ids)) for w in jiwer_words(r)] for r in refs]
    hyp_ids = [[ids.setdefault(w, len(ids)) for w in jiwer_words(h)] for h in hyps]
    return _corpus_rate(ref_ids, hyp_ids, "words")


@dataclass
class CorpusRates:
    """Corpus-level rates in percent, as in the published `metric.jsonl`; `n` counts the pairs scored."""

    cer: float
    wer: float
    n: int


def corpus_rates(references: list[str], hypotheses: list[str]) -> CorpusRates:
    """Corpus CER and WER in percent (`jiwer_cer` / `jiwer_wer` x 100), empty references dropped first.

    A reference is empty when nothing is left after stripping its whitespace. On normalised strings
    (no whitespace left) this is plain total edits / total length. With no reference left (n == 0) both
    rates are 0.0; callers that must not score nothing check `n`.
    """
    _check_lengths(references, hypotheses)
    keep = [i for i, r in enumerate(references) if jiwer_chars(r)]
    if not keep:
        return CorpusRates(cer=0.0, wer=0.0, n=0)
    refs, hyps = [references[i] for i in keep], [hypotheses[i] for i in keep]
    return CorpusRates(cer=100 * jiwer_cer(refs, hyps), wer=100 * jiwer_wer(refs, hyps), n=len(keep))
