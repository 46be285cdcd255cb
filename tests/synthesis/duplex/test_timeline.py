"""The timeline: seeded gaps that follow the stated distribution, bounded overlaps, backchannels only in pauses."""
from __future__ import annotations

import math

import numpy as np
import pytest

from jaspeech.synthesis.duplex.timeline import (CHANNELS, Slot, TimingOptions, Turn, backchannel_slots, draw_gap,
                                                duration_of, plan_timeline)


def _dialogue(n: int, pieces=(2.0,), tail: float = 5.0) -> list[Turn]:
    roles = ["user", "assistant"]
    return [Turn(i, roles[i % 2], CHANNELS[roles[i % 2]], f"t{i}", tuple(pieces), tail) for i in range(n)]


def _normal_cdf(x, mean, sd):
    return 0.5 * (1 + math.erf((x - mean) / (sd * math.sqrt(2))))


def test_gaps_follow_the_configured_distribution():
    """2000 boundaries with a fixed seed: the share of long pauses, and the rest against the normal's CDF (KS)."""
    opts = TimingOptions(gap_mean=0.1, gap_sd=0.3, pause_rate=0.1, max_overlap=10.0)
    segments = plan_timeline(_dialogue(2001, tail=10.0), [], opts, seed=7)
    gaps = np.array([s.gap for s in segments if s.kind == "turn" and s.gap is not None])
    assert gaps.size == 2000
    pauses = (gaps >= opts.pause_min) & (gaps <= opts.pause_max)
    # a long pause lies in [1, 2]; a normal draw lands there too with p ~ 0.002: the pause share is close to 0.1
    assert abs(pauses.mean() - 0.1) < 0.02
    normal = np.sort(gaps[~pauses])
    cdf = np.array([_normal_cdf(x, 0.1, 0.3) for x in normal])
    ks = np.max(np.abs(cdf - np.arange(1, normal.size + 1) / normal.size))
    assert ks < 1.36 / math.sqrt(normal.size)  # 5 % critical value
    assert abs(normal.mean() - 0.1) < 0.03 and abs(normal.std() - 0.3) < 0.03
    # and the same seed gives the same timeline
    assert plan_timeline(_dialogue(50), [], opts, seed=7) == plan_timeline(_dialogue(50), [], opts, seed=7)
    assert plan_timeline(_dialogue(50), [], opts, seed=7) != plan_timeline(_dialogue(50), [], opts, seed=8)


def test_overlaps_never_hide_more_than_the_last_word_nor_the_bound():
    opts = TimingOptions(gap_mean=-1.0, gap_sd=0.5, pause_rate=0.0, max_overlap=0.6)
    for tail in (0.2, 5.0):
        segments = [s for s in plan_timeline(_dialogue(300, tail=tail), [], opts, seed=1) if s.kind == "turn"]
        gaps = np.array([s.gap for s in segments[1:]])
        assert gaps.min() >= -min(0.6, tail) - 1e-9
        assert (gaps < 0).mean() > 0.9  # the mean asks for overlaps: they happen, bounded


def test_one_channel_never_overlaps_itself():
    """Two user turns in a row (broken alternation) and a backchannel before the listener's own turn."""
    turns = [Turn(0, "user", 1, "a", (1.0,), 0.3), Turn(1, "user", 1, "b", (1.0,), 0.3),
             Turn(2, "assistant", 0, "c", (2.0, 2.0, 2.0), 0.3), Turn(3, "user", 1, "d", (1.0,), 0.3)]
    slots = [Slot(2, 0, "はい", 0.4), Slot(2, 1, "うん", 0.3)]
    opts = TimingOptions(gap_mean=-0.5, gap_sd=0.01, pause_rate=0.0)
    segments = plan_timeline(turns, slots, opts, seed=3)
    for ch in (0, 1):
        mine = sorted((s for s in segments if s.channel == ch), key=lambda s: s.start)
        for a, b in zip(mine, mine[1:]):
            assert b.start >= a.end + opts.same_channel_gap - 1e-9
    assert duration_of(segments, opts) == pytest.approx(max(s.end for s in segments) + 0.5)


def test_backchannels_land_only_in_the_speakers_pauses():
    opts = TimingOptions(backchannel_rate=30.0)
    turns = [Turn(0, "user", 1, "q", (1.5,), 0.3), Turn(1, "assistant", 0, "a", (3.0, 2.5, 4.0, 3.0), 0.3),
             Turn(2, "user", 1, "q2", (1.0, 1.2), 0.3)]
    slots = backchannel_slots(turns, opts, seed=11)
    assert slots and all(s.turn in (1, 2) for s in slots)  # one-sentence turns have no pause
    assert {s.text for s in slots} <= {w for w, _ in opts.lexicon}
    segments = plan_timeline(turns, [Slot(s.turn, s.after, s.text, 0.5) for s in slots], opts, seed=2)
    turn_of = {s.index: s for s in segments if s.kind == "turn"}
    bcs = [s for s in segments if s.kind == "backchannel"]
    assert len(bcs) == len(slots)
    for bc in bcs:
        speaker = turn_of[bc.turn]
        assert bc.channel != speaker.channel and bc.role != speaker.role
        k = next(k for k in range(len(speaker.starts) - 1)
                 if speaker.starts[k] + speaker.durations[k] <= bc.start and bc.end <= speaker.starts[k + 1])
        assert bc.start - (speaker.starts[k] + speaker.durations[k]) >= opts.backchannel_margin - 1e-9
        assert speaker.starts[k + 1] - bc.end >= opts.backchannel_margin - 1e-9
    # no rate, no slot; a failed synthesis (duration 0) places nothing
    assert backchannel_slots(turns, TimingOptions(backchannel_rate=0.0), seed=11) == []
    none = plan_timeline(turns, [Slot(s.turn, s.after, s.text, 0.0) for s in slots], opts, seed=2)
    assert not [s for s in none if s.kind == "backchannel"]


def test_the_rate_per_minute_is_kept_on_average():
    opts = TimingOptions(backchannel_rate=6.0)
    turns = [Turn(i, "assistant", 0, "a", (5.0,) * 6, 0.3) for i in range(400)]  # 400 half-minute turns
    slots = backchannel_slots(turns, opts, seed=5)
    assert len(slots) / (400 * 30 / 60) == pytest.approx(6.0, rel=0.15)


def test_a_long_pause_is_drawn_from_its_range():
    rng = np.random.default_rng(0)
    opts = TimingOptions(pause_rate=1.0)
    assert all(1.0 <= draw_gap(rng, opts) <= 2.0 for _ in range(100))
