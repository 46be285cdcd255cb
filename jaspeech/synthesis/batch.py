"""One batched TTS call for a group of rows: the items, and the loop for backends that speak one text at a time.

Its own module (not jaspeech.synthesis.tts) so the reading wrapper, which the TTS package imports, can
use it without an import circle.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaspeech.synthesis.speakers import SpeakerProfile

Audio = tuple[np.ndarray, int]  # float32 mono samples, sample rate


@dataclass(frozen=True)
class SynthesisItem:
    """One text to speak: what, in which voice, and the seed that makes it reproducible."""

    text: str
    speaker: SpeakerProfile
    seed: int


def synthesize_each(tts, items: list[SynthesisItem]) -> list[Audio | Exception]:
    """One `synthesize` call per item; an item that fails gives its exception, the others still run."""
    out: list[Audio | Exception] = []
    for item in items:
        try:
            out.append(tts.synthesize(item.text, item.speaker, item.seed))
        except Exception as e:  # one bad text must not cost the other rows of the group their audio
            out.append(e)
    return out


def synthesize_batch(tts, items: list[SynthesisItem]) -> list[Audio | Exception]:
    """Every item in one call of a batching backend, else one at a time; one result per item, in order."""
    if not items:
        return []
    batch = getattr(tts, "synthesize_batch", None)
    out = batch(items) if batch is not None else synthesize_each(tts, items)
    if len(out) != len(items):
        raise RuntimeError(f"{tts.name}: {len(out)} results for {len(items)} texts")
    return list(out)
