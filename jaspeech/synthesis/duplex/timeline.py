"""A dialogue's timeline: when each turn and backchannel starts, on which channel, as plain segment records.

Turns are not concatenated: each turn starts after the previous one ends plus a gap drawn per boundary, so
the next speaker sometimes starts before the previous one has finished (an overlap) and sometimes waits.

Where the defaults come from (docs/duplex.md says the same):
- Turn-transition offsets: Stivers et al. (2009), "Universals and cultural variation in turn-taking in
  conversation", PNAS 106(26):10587-10592, measured the gap between a question's end and its answer's start in
  ten languages; Japanese had the shortest mean offset, +7 ms, and every language's mode lay between 0 and
  +200 ms. The default gap is a normal distribution with that mean (`gap_mean` 0.007 s); its spread
  (`gap_sd` 0.25 s) is OUR choice, not a published figure: it puts about 2 boundaries in 3 within +-250 ms and
  about 49 % below zero (overlaps), the shape of the paper's histograms, but the paper's per-language spread is
  not reproduced here.
- Long pauses: with probability `pause_rate` (5 %, our choice) a boundary gets a pause drawn uniformly from
  `pause_min`..`pause_max` (1-2 s) instead: the "occasionally longer pause" of real dialogue.
- Overlaps are bounded: the next speaker may start at most `max_overlap` (0.6 s, our choice) before the previous
  speaker's end and never before the start of that speaker's last word (`Turn.tail`), so no overlap hides more
  than the last word.
- Backchannels (相槌): at a pause between two sentences of the other party's turn, in the listener's voice, at
  `backchannel_rate` per minute of the speaker's speech (default 6, our choice: Maynard (1989, "Japanese
  conversation", Ablex) and Clancy et al. (1996, J. Pragmatics 26:355-387) report that Japanese listeners give
  such reactive tokens far more often than English listeners, several per minute of the other's talk; we do not
  claim their exact rate). Words and weights: `lexicon`. The speaker's pause grows to hold the backchannel
  (`backchannel_margin` of silence on each side), so a backchannel never covers a word of the speaker's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# channel 0 is the model's own stream (the assistant), channel 1 the user: both anchors (Moshi, J-Moshi) expect it
CHANNELS = {"assistant": 0, "user": 1}

LEXICON: tuple[tuple[str, float], ...] = (("はい", 0.30), ("うん", 0.25), ("ええ", 0.15), ("なるほど", 0.15),
                                          ("そうですね", 0.15))


@dataclass(frozen=True)
class TimingOptions:
    """The timeline's distributions (see the module docstring for where each default comes from)."""

    gap_mean: float = 0.007  # s, Stivers et al. 2009: Japanese mean turn-transition offset
    gap_sd: float = 0.25  # s, our choice
    pause_rate: float = 0.05  # share of boundaries with a long pause
    pause_min: float = 1.0
    pause_max: float = 2.0
    max_overlap: float = 0.6  # s, the most the next turn may start before the previous one's end
    sentence_gap: float = 0.3  # s between the sentences of one turn (as the single-channel builds join them)
    backchannel_rate: float = 6.0  # per minute of the speaker's speech; 0: none
    backchannel_margin: float = 0.15  # s of the speaker's silence before and after a backchannel
    lexicon: tuple[tuple[str, float], ...] = LEXICON
    same_channel_gap: float = 0.1  # s between two segments of one channel (they never overlap)
    tail: float = 0.5  # s of silence after the last segment ends: duration = last end + tail


@dataclass(frozen=True)
class Turn:
    """What the timeline needs of a spoken turn: its channel and the durations of its sentence pieces."""

    index: int  # the turn's index in the row (unspoken turns, e.g. a system prompt, have none here)
    role: str
    channel: int
    text: str
    pieces: tuple[float, ...]  # seconds of each sentence piece, in order
    tail: float  # seconds at the turn's end that another speaker may overlap (its last word's length)


@dataclass(frozen=True)
class Slot:
    """A backchannel to place: in the pause after sentence piece `after` of turn `turn` (its index in the row),
    saying `text`."""

    turn: int
    after: int
    text: str
    duration: float = 0.0  # seconds, once synthesised


@dataclass(frozen=True)
class Segment:
    """One stretch of speech on one channel: a turn (its sentence pieces at their starts) or a backchannel."""

    kind: str  # "turn" | "backchannel"
    role: str  # "user" | "assistant"
    channel: int
    index: int  # a turn: its index in the row; a backchannel: its slot's index in the `slots` given
    text: str
    starts: tuple[float, ...]  # each piece's start on the recording's clock (a backchannel has one piece)
    durations: tuple[float, ...]
    turn: int = -1  # a backchannel: the turn it answers
    gap: float | None = None  # a turn: its start minus the previous turn's end (negative: an overlap)

    @property
    def start(self) -> float:
        return self.starts[0]

    @property
    def end(self) -> float:
        return self.starts[-1] + self.durations[-1]


def backchannel_slots(turns: list[Turn], opts: TimingOptions, seed: int) -> list[Slot]:
    """Which pauses between sentences get a backchannel, and which word: at most one per pause.

    Each pause of a turn gets one with probability rate x turn minutes / pauses (capped at 1), so a turn of
    several sentences gets `backchannel_rate` per minute on average. Seeded by the row only."""
    rng = np.random.default_rng(seed)
    words = [w for w, _ in opts.lexicon]
    weights = np.array([p for _, p in opts.lexicon], dtype=np.float64)
    slots = []
    for t in turns:
        pauses = len(t.pieces) - 1
        if pauses < 1 or opts.backchannel_rate <= 0 or not words:
            continue
        p = min(1.0, opts.backchannel_rate * sum(t.pieces) / 60.0 / pauses)
        for k in range(pauses):
            draw, pick = rng.random(), rng.choice(len(words), p=weights / weights.sum())
            if draw < p:
                slots.append(Slot(t.index, k, words[int(pick)]))
    return slots


def draw_gap(rng: np.random.Generator, opts: TimingOptions) -> float:
    """One turn-transition offset before bounding (seconds; negative: an overlap). Always three draws, so the
    stream of later boundaries does not depend on which branch this one took."""
    long_pause, pause, value = rng.random(), rng.random(), rng.normal(opts.gap_mean, opts.gap_sd)
    if long_pause < opts.pause_rate:
        return opts.pause_min + (opts.pause_max - opts.pause_min) * pause
    return float(value)


def plan_timeline(turns: list[Turn], slots: list[Slot], opts: TimingOptions, seed: int) -> list[Segment]:
    """Every turn and backchannel placed on the recording's clock, in start order.

    A turn starts at the previous turn's end plus a drawn gap, bounded (see the module docstring) and never
    before its own channel is free. A backchannel sits in its pause, `backchannel_margin` after the
    speaker's sentence; the pause is lengthened to hold it. A slot whose listener is still speaking (an
    overlap) or has no audio (duration 0: its synthesis failed) is dropped. Pure: the same inputs and seed give the same segments."""
    rng = np.random.default_rng(seed)
    by_turn: dict[int, dict[int, tuple[int, Slot]]] = {}
    for n, s in enumerate(slots):
        by_turn.setdefault(s.turn, {})[s.after] = (n, s)
    free = {0: 0.0, 1: 0.0}  # when each channel's last segment ends
    segments: list[Segment] = []
    prev: Segment | None = None
    for i, t in enumerate(turns):
        if prev is None:
            start, gap = 0.0, None
        else:
            gap = draw_gap(rng, opts)
            if gap < 0:
                gap = max(gap, -opts.max_overlap, -turns[i - 1].tail)
            start = prev.end + gap
        if segments:
            start = max(start, free[t.channel] + opts.same_channel_gap)
            gap = None if prev is None else start - prev.end
        starts, clock, placed = [], start, []
        listener = 1 - t.channel
        for k, d in enumerate(t.pieces):
            starts.append(clock)
            clock += d
            if k == len(t.pieces) - 1:
                break
            n, slot = by_turn.get(t.index, {}).get(k, (-1, None))
            bc_start = clock + opts.backchannel_margin
            if slot is not None and slot.duration > 0 and bc_start >= free[listener] + opts.same_channel_gap:
                placed.append(Segment("backchannel", _role_of(listener), listener, n, slot.text, (bc_start,),
                                      (slot.duration,), turn=t.index))
                free[listener] = bc_start + slot.duration
                clock += max(opts.sentence_gap, slot.duration + 2 * opts.backchannel_margin)
            else:
                clock += opts.sentence_gap
        seg = Segment("turn", t.role, t.channel, t.index, t.text, tuple(starts), t.pieces, gap=gap)
        segments += [seg, *placed]
        free[t.channel] = max(free[t.channel], seg.end)
        prev = seg
    return sorted(segments, key=lambda s: (s.start, s.kind != "turn"))


def _role_of(channel: int) -> str:
    return next(role for role, c in CHANNELS.items() if c == channel)


def duration_of(segments: list[Segment], opts: TimingOptions) -> float:
    """The recording's length: the last segment's end plus the stated tail."""
    return max(s.end for s in segments) + opts.tail
