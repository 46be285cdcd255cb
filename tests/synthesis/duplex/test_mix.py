"""The stereo mix places each piece on its own channel; the checks catch leaks, clipping and spans without speech."""
from __future__ import annotations

import numpy as np

from jaspeech.synthesis.duplex.mix import (clipping_problems, has_speech, isolation_problems, mix, sample_at,
                                           span_problems)
from jaspeech.synthesis.duplex.timeline import Segment

SR = 16000


def _tone(seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _segments():
    return [Segment("turn", "user", 1, 0, "a", (0.0, 1.3), (1.0, 0.5)),
            Segment("turn", "assistant", 0, 1, "b", (1.6,), (1.0,)),
            Segment("backchannel", "user", 1, 0, "はい", (2.0,), (0.3,), turn=1)]


def test_each_piece_lands_on_its_channel_at_its_start():
    segs = _segments()
    audios = [[_tone(1.0), _tone(0.5)], [_tone(1.0)], [_tone(0.3)]]
    stereo = mix(segs, audios, SR, 3.1)
    assert stereo.shape == (sample_at(3.1, SR), 2) and stereo.dtype == np.float32
    np.testing.assert_array_equal(stereo[sample_at(1.3, SR): sample_at(1.8, SR), 1], _tone(0.5))
    np.testing.assert_array_equal(stereo[sample_at(1.6, SR): sample_at(2.6, SR), 0], _tone(1.0))
    assert not stereo[: sample_at(1.6, SR), 0].any() and not stereo[sample_at(2.3, SR):, 1].any()
    assert isolation_problems(stereo, SR, segs) == [] and clipping_problems(stereo) == []
    words = [{"word": "x", "channel": 0, "start": 1.7, "end": 1.9}]
    assert span_problems(stereo, SR, segs, words) == []


def test_the_checks_find_a_leak_clipping_and_a_word_in_silence():
    segs = _segments()
    stereo = mix(segs, [[_tone(1.0), _tone(0.5)], [_tone(1.0)], [_tone(0.3)]], SR, 3.1)
    leaked = stereo.copy()
    leaked[sample_at(2.8, SR), 0] = 0.01  # -40 dBFS on the assistant's channel after its turn
    assert "channel 0" in isolation_problems(leaked, SR, segs)[0]
    loud = mix(segs, [[_tone(1.0, 0.99), _tone(0.5)], [_tone(1.0)], [_tone(0.3)]], SR, 3.1)
    loud[10, 1] = 1.0
    assert clipping_problems(loud)
    words = [{"word": "y", "channel": 1, "start": 1.05, "end": 1.25}]  # the user's pause between two pieces
    assert "not inside channel 1" in span_problems(stereo, SR, segs, words)[0]
    assert not has_speech(stereo, SR, 0, 0.0, 1.5) and has_speech(stereo, SR, 1, 0.0, 0.01)


def test_trim_silence_keeps_the_speech_and_a_short_pad():
    from jaspeech.synthesis.duplex.mix import trim_silence

    x = np.concatenate([np.zeros(int(0.3 * SR), dtype=np.float32), _tone(1.0), np.zeros(int(0.2 * SR), dtype=np.float32)])
    y = trim_silence(x, SR)
    assert abs(y.size / SR - 1.06) < 0.021  # the tone, 30 ms each side (20 ms frames)
    np.testing.assert_array_equal(np.nonzero(y)[0].size, np.nonzero(x)[0].size)
    silent = np.zeros(SR, dtype=np.float32)
    assert trim_silence(silent, SR) is silent
