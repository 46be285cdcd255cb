"""Shared pieces of the ears' forced scoring (`ASRBackend.score`): whole-character pieces, the text's split
across a long clip's windows, and per-piece times from an alignment path. Imported by the backends only."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from jaspeech.cer import char_edits

# where a text may be cut between two windows of a long clip: after sentence and clause marks
_CUT_AFTER = set("。．.！!？?、，,；;：:\n」』）)")


@dataclass
class Scored:
    """One text scored on a clip: whole-character pieces with log-probabilities and times (seconds)."""

    tokens: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)

    def extend(self, other: "Scored") -> None:
        self.tokens += other.tokens
        self.logprobs += other.logprobs
        self.starts += other.starts
        self.ends += other.ends


def whole_pieces(ids: list[int], decode: Callable[[list[int]], str]) -> list[tuple[str, list[int]]]:
    """Token ids grouped into pieces that decode to whole characters: (piece text, indices into `ids`).

    Byte-level BPE cuts a rare kanji into two or three tokens that decode to nothing alone; a piece holds the
    tokens up to the first prefix that decodes cleanly, so the pieces' texts join to the decoded text."""
    pieces: list[tuple[str, list[int]]] = []
    done = ""
    group: list[int] = []
    for k in range(len(ids)):
        group.append(k)
        text = decode(ids[: k + 1])
        if "\ufffd" in text[len(done):] and k + 1 < len(ids):
            continue
        pieces.append((text[len(done):], group))
        done, group = text, []
    return pieces


def piece_scores(pieces: list[tuple[str, list[int]]], token_logprobs: list[float], jump_times: list[float],
                 offset: float) -> Scored:
    """Sum each piece's token log-probabilities; its time runs from its first token's start to the next piece's
    start (`jump_times[k]`: when the alignment path reaches token k; one more entry for the end token)."""
    out = Scored()
    for text, group in pieces:
        out.tokens.append(text)
        out.logprobs.append(float(sum(token_logprobs[k] for k in group)))
        out.starts.append(offset + jump_times[group[0]])
        out.ends.append(offset + jump_times[group[-1] + 1])
    return out


def jump_times(alignments: list[tuple[int, int]], n_tokens: int, frames_per_second: float) -> list[float]:
    """When the alignment path (text index, encoder frame) first reaches each token 0..n_tokens (the last: the end
    token). A token the path skips gets the time of the next one it reaches."""
    times: list[float | None] = [None] * (n_tokens + 1)
    for index, frame in alignments:
        if 0 <= index <= n_tokens and times[index] is None:
            times[index] = frame / frames_per_second
    last = times[-1] if times[-1] is not None else max((t for t in times if t is not None), default=0.0)
    for k in range(n_tokens, -1, -1):  # fill from the right, so times never decrease
        if times[k] is None:
            times[k] = last
        last = times[k]
    return [float(t) for t in times]


def split_text(text: str, heard: list[str]) -> list[str]:
    """The text cut into one part per window of a long clip, where the windows' own transcripts say the cuts are.

    Cuts fall after sentence or clause marks (or anywhere, when the text has none in reach); the cut points
    are chosen together (dynamic programming) to minimise the edit distance between each part and its
    window's transcript. One window: the whole text."""
    if len(heard) <= 1:
        return [text]
    cuts = [0] + [i + 1 for i, c in enumerate(text) if c in _CUT_AFTER and i + 1 < len(text)] + [len(text)]
    if len(cuts) < len(heard) + 1:
        cuts = list(range(len(text) + 1))
    cuts = sorted(set(cuts))
    w, m = len(heard), len(cuts)
    inf = float("inf")
    cost = np.full((w + 1, m), inf)
    back = np.zeros((w + 1, m), dtype=np.int64)
    cost[0, 0] = 0.0
    for j in range(1, w + 1):
        for b in range(m):
            for a in range(b + 1):
                if cost[j - 1, a] == inf:
                    continue
                c = cost[j - 1, a] + char_edits(text[cuts[a]:cuts[b]], heard[j - 1])
                if c < cost[j, b]:
                    cost[j, b], back[j, b] = c, a
    parts, b = [], m - 1
    for j in range(w, 0, -1):
        a = int(back[j, b])
        parts.append(text[cuts[a]:cuts[b]])
        b = a
    return parts[::-1]
