"""Cutting long clips into Whisper windows at pauses."""
import numpy as np

from jaspeech.synthesis.audio import split_at_pauses

SR = 16000


def speech_with_pauses(sentence_seconds, pause_seconds=0.35, seed=0):
    """Noise bursts (stand-ins for sentences) separated by digital silence, as Kokoro joins sentences."""
    rng = np.random.default_rng(seed)
    parts, pauses, t = [], [], 0
    for k, s in enumerate(sentence_seconds):
        if k:
            parts.append(np.zeros(int(pause_seconds * SR), np.float32))
            pauses.append((t, t + parts[-1].size))
            t += parts[-1].size
        parts.append((rng.standard_normal(int(s * SR)) * 0.2).astype(np.float32))
        t += parts[-1].size
    return np.concatenate(parts), pauses


def test_short_clips_are_one_window():
    x = np.ones(30 * SR, np.float32)
    assert [p.size for p in split_at_pauses(x, SR)] == [x.size]


def test_long_clips_are_cut_in_pauses_and_join_back_exactly():
    x, pauses = speech_with_pauses([7.0, 9.0, 8.5, 6.0, 9.5, 8.0, 7.5, 9.0])  # ~67 s
    pieces = split_at_pauses(x, SR)
    assert len(pieces) == 3
    assert all(p.size <= 30 * SR for p in pieces)
    assert np.array_equal(np.concatenate(pieces), x)
    cuts = np.cumsum([p.size for p in pieces])[:-1]
    for cut in cuts:
        assert any(a <= cut < b for a, b in pauses), f"cut at {cut / SR:.2f} s is not in a pause"
    # the latest pause before the window ends is used, so windows are as long as they can be
    assert pieces[0].size > 25 * SR


def test_speech_without_pauses_is_still_cut_under_the_window():
    x = (np.random.default_rng(1).standard_normal(95 * SR) * 0.2).astype(np.float32)
    pieces = split_at_pauses(x, SR)
    assert all(p.size <= 30 * SR for p in pieces) and len(pieces) == 4
    assert np.array_equal(np.concatenate(pieces), x)
    assert split_at_pauses(x, SR) is not pieces and [p.size for p in split_at_pauses(x, SR)] == [p.size for p in pieces]
