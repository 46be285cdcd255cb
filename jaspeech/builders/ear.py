"""The fair ear's decision: does this audio say this text? (The measurements come from `ASRBackend.score`.)

A transcript from a weak ear (Whisper base) is a poor judge: it misspells homophones, names and rare words
in audio that says them right, and a kana comparison barely notices a few wrong morae in a long turn. The
forced score asks the ear directly: the log-probability its decoder gives each piece of the known text,
given the audio. Where the audio says the text, a piece the ear would have spelled otherwise still gets a
fair probability, close to what the ear gives its own best transcript at that moment; where the audio says
something else, or nothing (a truncated take, a dropped or swapped word), the text's pieces there fall far
below it. So the rule compares the two locally: each stretch of `window` pieces of the text is held against
the ear's own transcript over the same time, and the turn is rejected when some stretch falls more than
`max_deficit` nats per piece below it (`worst_span` names that stretch).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from jaspeech.synthesis.asr.forced import Forced


@dataclass(frozen=True)
class EarRule:
    """The forced rule's two numbers, chosen on the controls of `benchmarks/ear_controls.py` (docs/round-trip.md)."""

    window: int = 3  # pieces of text per stretch (a piece: one token, or the tokens of one rare character)
    max_deficit: float = 2.5  # nats per piece below the ear's own transcript over the same time
    # the text's end: a take that stops early leaves the text's last pieces unsaid, which the alignment squeezes
    # into the clip's last instant, and the ear's language model half-guesses a sentence's last word; so the
    # trailing pieces aligned to no time (or the last spoken piece) are judged together by their summed deficit
    max_tail_deficit: float = 2.0
    # the least the ear's own transcript is taken to support: where it is unsure of its own guess (noise,
    # hallucination), a text that is really said still gets at least this log-probability per piece
    floor: float = -1.0
    # a stretch whose reading the ear's own transcript says there, with at most this share of its morae different,
    # is a spelling the ear would not choose, not another sound (`heard_there`)
    sound_tolerance: float = 0.34


@dataclass(frozen=True)
class Span:
    """The stretch of the text the audio supports least: pieces [first, last), its time and its deficit."""

    text: str
    first: int
    last: int
    start: float
    end: float
    deficit: float  # mean nats per piece below the ear's own transcript there (negative: above it)


def own_reference(forced: Forced, floor: float = -1.0) -> np.ndarray:
    """For each piece of the text, the mean log-probability of the ear's own transcript pieces aligned over the
    same time (0.0, certainty, where the ear's own transcript has nothing: audio with no speech there), never
    below `floor`."""
    own_s, own_e = np.asarray(forced.own_starts), np.asarray(forced.own_ends)
    own_lp = np.asarray(forced.own_logprobs)
    ref = np.zeros(len(forced.logprobs))
    for k, (s, e) in enumerate(zip(forced.starts, forced.ends)):
        if own_lp.size == 0:
            continue
        if e > s:
            hit = (own_s < e) & (own_e > s)
        else:  # a piece the alignment gave no time: the own pieces around that instant
            hit = (own_s <= s) & (own_e > s)
        if hit.any():
            ref[k] = max(floor, float(own_lp[hit].mean()))
    return ref


def deficits(forced: Forced, floor: float = -1.0) -> np.ndarray:
    """Per piece of the text: how many nats it falls below the ear's own transcript at the same time."""
    return own_reference(forced, floor) - np.asarray(forced.logprobs, dtype=np.float64)


def spoken_pieces(forced: Forced) -> list[int]:
    """The pieces that are said: punctuation and symbols are not judged (the ear writes 。 or ？ or nothing for
    the same sentence end, so their probabilities say nothing about the audio)."""
    return [k for k, t in enumerate(forced.tokens)
            if any(not c.isspace() and unicodedata.category(c)[0] not in "PSZ" for c in t)]


def worst_span(forced: Forced, window: int, floor: float = -1.0) -> Span | None:
    """The stretch of `window` consecutive spoken pieces (fewer for a shorter text) with the largest mean deficit."""
    found = stretches(forced, window, floor)
    return found[0] if found else None


def tail_span(forced: Forced, floor: float = -1.0) -> Span | None:
    """The text's unsaid end: its trailing spoken pieces that the alignment gave no time (under 20 ms), else its
    last spoken piece; with their summed deficit."""
    keep = spoken_pieces(forced)
    if not keep:
        return None
    n = 0
    while n < len(keep) and forced.ends[keep[-n - 1]] - forced.starts[keep[-n - 1]] < 0.02:
        n += 1
    tail = keep[-max(n, 1):]
    return _span(forced, tail, float(deficits(forced, floor)[tail].sum()))


def _span(forced: Forced, pieces: list[int], deficit: float) -> Span:
    first, last = pieces[0], pieces[-1] + 1
    return Span("".join(forced.tokens[first:last]), first, last, float(forced.starts[first]),
                float(forced.ends[last - 1]), deficit)


def stretches(forced: Forced, window: int, floor: float = -1.0) -> list[Span]:
    """Every stretch of `window` consecutive spoken pieces, the least supported first."""
    keep = spoken_pieces(forced)
    if not keep:
        return []
    d = deficits(forced, floor)[keep]
    w = min(window, d.size)
    means = np.convolve(d, np.ones(w) / w, mode="valid")
    return [_span(forced, keep[i : i + w], float(means[i])) for i in np.argsort(-means, kind="stable")]


@lru_cache(maxsize=1024)
def _morphemes(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, pronunciation) of each morpheme of `text`, as the offline voices read it (OpenJTalk's frontend,
    `reading.openjtalk_kana`'s settings)."""
    import pyopenjtalk

    out, at = [], 0
    for f in pyopenjtalk.run_frontend(text, use_sudachi_kanji_yomi=False):
        found = text.find(f["string"], at)
        if found < 0:
            continue
        at = found + len(f["string"])
        out.append((found, at, f.get("pron") or f["string"]))
    return tuple(out)


def stretch_reading(text: str, start: int, end: int) -> str:
    """The reading of text[start:end] in its sentence: the pronunciations of the whole morphemes it touches (a piece
    cut from a word, 上高 of 売上高, reads otherwise alone)."""
    prons = [p for a, b, p in _morphemes(text) if a < end and b > start]
    return "".join(prons) if prons else text[start:end]


def heard_there(forced: Forced, span: Span, margin: float = 0.3, tolerance: float = 0.34) -> bool:
    """Whether the ear's own transcript says the stretch's sound where the stretch is: its reading is found, with at
    most `tolerance` of its morae different, in the reading of the own transcript's pieces aligned within `margin`
    seconds of it (the stretch read in its sentence: `stretch_reading`).

    The forced score is over spellings: a text the ear would have written otherwise (以下五桁 heard as いかごけた,
    安土桃山 as アズチモモ山, 箇条書き as 化状楽器) falls far below the ear's own guess although the audio says it. The
    one reading rule of the kana comparison (`roundtrip.kana_reading`) tells a spelling from a sound."""
    from jaspeech.synthesis.roundtrip import kana_reading

    said = kana_reading(stretch_reading("".join(forced.tokens), sum(map(len, forced.tokens[: span.first])),
                                        sum(map(len, forced.tokens[: span.last]))))
    if not said:
        return False
    own = "".join(t for t, s, e in zip(forced.own_tokens, forced.own_starts, forced.own_ends)
                  if s <= span.end + margin and e >= span.start - margin)
    heard = kana_reading(own)
    if not heard:
        return False
    from jaspeech.cer import char_edits

    n = len(said)
    best = min(char_edits(said, heard[i : i + m]) for m in range(max(1, n - 1), n + 2)
               for i in range(max(1, len(heard) - m + 1)))
    return best <= int(n * tolerance)


def forced_fails(forced: Forced, rule: EarRule) -> Span | None:
    """The stretch that the audio does not support, or None when every stretch is supported.

    A stretch fails when its deficit is over `max_deficit` and the ear's own transcript does not say its sound
    there either (`heard_there`); then the text's end is checked the same way (`tail_span`, `max_tail_deficit`)."""
    for span in stretches(forced, rule.window, rule.floor):
        if span.deficit <= rule.max_deficit:
            break
        if not heard_there(forced, span, tolerance=rule.sound_tolerance):
            return span
    tail = tail_span(forced, rule.floor)
    if tail is not None and tail.deficit > rule.max_tail_deficit and \
            not heard_there(forced, tail, tolerance=rule.sound_tolerance):
        return tail
    return None


def verdict(text: str, forced: Forced, rule: EarRule) -> dict:
    """The ear's whole verdict on one clip and its text (`jaspeech hear`): the free transcript, its CER and
    kana-CER (recorded, not deciding), the forced score, the worst stretch, keep or reject and why."""
    from jaspeech.synthesis.roundtrip import score_turn

    score = score_turn(text, forced.transcript)
    failed = forced_fails(forced, rule)
    span = failed or worst_span(forced, rule.window, rule.floor)
    reason = None
    if failed is not None:
        reason = (f"roundtrip: the audio does not say \u300c{failed.text}\u300d ({failed.deficit:.2f} nats per piece "
                  f"below the ear's own transcript at {failed.start:.2f}-{failed.end:.2f} s, limit {rule.max_deficit:g})")
    return {
        "keep": failed is None,
        "reason": reason,
        "text": text,
        "transcript": forced.transcript,
        "cer": score.cer,
        "kana_cer": score.kana_cer,
        "text_logprob": forced.text_logprob,
        "worst_span": None if span is None else {"text": span.text, "start": span.start, "end": span.end,
                                                  "deficit": span.deficit},
        "rule": {"window": rule.window, "max_deficit": rule.max_deficit},
        "pieces": [{"text": t, "logprob": lp, "start": s, "end": e}
                   for t, lp, s, e in zip(forced.tokens, forced.logprobs, forced.starts, forced.ends)],
    }
