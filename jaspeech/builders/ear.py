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

from dataclasses import dataclass

import numpy as np

from jaspeech.synthesis.asr import Forced


@dataclass(frozen=True)
class EarRule:
    """The forced rule's two numbers, chosen on the controls of `benchmarks/ear_controls.py` (docs/round-trip.md)."""

    window: int = 3  # pieces of text per stretch (a piece: one token, or the tokens of one rare character)
    max_deficit: float = 2.5  # nats per piece below the ear's own transcript over the same time


@dataclass(frozen=True)
class Span:
    """The stretch of the text the audio supports least: pieces [first, last), its time and its deficit."""

    text: str
    first: int
    last: int
    start: float
    end: float
    deficit: float  # mean nats per piece below the ear's own transcript there (negative: above it)


def own_reference(forced: Forced) -> np.ndarray:
    """For each piece of the text, the mean log-probability of the ear's own transcript pieces aligned over the
    same time (0.0, certainty, where the ear's own transcript has nothing: audio with no speech there)."""
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
            ref[k] = float(own_lp[hit].mean())
    return ref


def deficits(forced: Forced) -> np.ndarray:
    """Per piece of the text: how many nats it falls below the ear's own transcript at the same time."""
    return own_reference(forced) - np.asarray(forced.logprobs, dtype=np.float64)


def worst_span(forced: Forced, window: int) -> Span | None:
    """The stretch of `window` consecutive pieces (fewer for a shorter text) with the largest mean deficit."""
    d = deficits(forced)
    if d.size == 0:
        return None
    w = min(window, d.size)
    means = np.convolve(d, np.ones(w) / w, mode="valid")
    i = int(np.argmax(means))
    return Span("".join(forced.tokens[i : i + w]), i, i + w, float(forced.starts[i]), float(forced.ends[i + w - 1]),
                float(means[i]))


def forced_fails(forced: Forced, rule: EarRule) -> Span | None:
    """The stretch that the audio does not support, or None when every stretch is supported."""
    span = worst_span(forced, rule.window)
    if span is None:  # nothing to say: only an empty text, which never reaches the ear
        return None
    return span if span.deficit > rule.max_deficit else None
