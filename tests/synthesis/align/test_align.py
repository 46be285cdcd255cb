"""Word times: OpenJTalk morphemes timed by a teacher-forced pass (hand-made, then the real Whisper align)."""
from __future__ import annotations

import pytest

from jaspeech.synthesis.align import AlignError, EvenAligner, word_times, words_of
from jaspeech.synthesis.asr import Forced


def _forced(tokens, starts, ends):
    return Forced("", tokens, [-0.1] * len(tokens), starts, ends, [], [], [], [])


def _words(text):
    return [text[a:b] for a, b in words_of(text)]


def test_words_are_openjtalk_morphemes_without_punctuation():
    assert _words("今日はいい天気ですね、東京タワーに行きましょう！") == \
        ["今日", "は", "いい", "天気", "です", "ね", "東京タワー", "に", "行き", "ましょ", "う"]
    text = "価格は1000円です。"  # the dictionary reads digits out: every spoken character is still in one word
    assert "".join(_words(text)) == "価格は1000円です"


def test_word_times_from_a_hand_made_forced_pass():
    """A stand-in for the ear's `score` (issue 29's `Forced`), so the mapping is checked exactly: はい spans
    the particle and half of いい, and its time is shared by its characters."""
    text = "今日はいい天気。"
    forced = _forced(["今日", "はい", "い", "天気", "。"], [0.0, 0.4, 0.6, 0.8, 1.2], [0.4, 0.6, 0.8, 1.2, 1.3])
    words = word_times(text, forced, 1.3)
    assert [(w.text, w.start, w.end) for w in words] == [
        ("今日", 0.0, 0.4), ("は", 0.4, 0.5), ("いい", 0.5, 0.8), ("天気", 0.8, 1.2)]
    with pytest.raises(AlignError):
        word_times("違う文。", forced, 1.3)


def test_times_are_clipped_to_the_clip_and_monotonic():
    text = "あいう"
    forced = _forced(["あ", "い", "う"], [0.0, 0.5, 0.3], [0.5, 0.4, 2.0])
    words = word_times(text, forced, 1.0)
    assert all(w.end <= 1.0 and w.end > w.start for w in words)
    assert all(b.start >= a.end for a, b in zip(words, words[1:]))


def test_even_aligner_spreads_words_over_the_voiced_frames_only():
    import numpy as np

    sr = 16000
    x = np.zeros(sr, dtype=np.float32)
    x[int(0.2 * sr): int(0.5 * sr)] = 0.3  # speech, a pause, speech
    x[int(0.7 * sr): int(0.9 * sr)] = 0.3
    [forced] = EvenAligner().score([(x, sr)], ["今日は晴れ"])
    words = word_times("今日は晴れ", forced, 1.0)
    assert words[0].start == pytest.approx(0.2) and words[-1].end == pytest.approx(0.9)
    for w in words:  # each word holds some of the speech
        assert x[int(w.start * sr): int(w.end * sr)].any(), w
    with pytest.raises(AlignError):
        EvenAligner().score([(np.zeros(sr, dtype=np.float32), sr)], ["無音"])


def test_the_ears_forced_pass_on_real_speech_keeps_words_in_order_inside_the_sentence():
    from jaspeech.synthesis.asr.faster_whisper import FasterWhisperASR
    from jaspeech.synthesis.speakers import PROFILES
    from jaspeech.synthesis.tts.openjtalk import OpenJTalkTTS

    text = "春におすすめの旅行先はどこですか。"
    x, sr = OpenJTalkTTS().synthesize(text, PROFILES[0], 0)
    [forced] = FasterWhisperASR().score([(x, sr)], [text])
    assert "".join(forced.tokens) == text and len(forced.logprobs) == len(forced.tokens)
    words = word_times(text, forced, len(x) / sr)
    assert [w.text for w in words] == _words(text)
    assert words[0].start < 0.3 and words[-1].end > 0.7 * len(x) / sr
    assert all(b.start >= a.start for a, b in zip(words, words[1:]))
