"""Round-trip scoring with the real pyopenjtalk readings."""
import pytest

from jaspeech.synthesis.roundtrip import kana_reading, score_turn, unreadable_kanji


def test_reading_aware_cer_ignores_spelling():
    s = score_turn("三月三日は晴れです。", "3月3日は晴れです")
    assert s.kana_cer == 0.0
    assert s.cer > 0.0  # the plain CER sees different characters


def test_kana_cer_counts_misheard_speech():
    s = score_turn("明日の会議は午後二時からです。", "明日の会議は午後三時からです。")
    assert 0.0 < s.kana_cer < 0.2


def test_kana_reading():
    assert kana_reading("東京") == "トーキョー"
    assert kana_reading("  ") == ""


@pytest.mark.parametrize("hyp", ["", "まったく違う文章"])
def test_bad_transcripts_score_high(hyp):
    assert score_turn("おはようございます", hyp).kana_cer >= 0.5


def test_unreadable_kanji_are_found_and_variant_kanji_are_read():
    assert unreadable_kanji("彁という字") == "彁"  # a ghost character: no reading anywhere
    assert unreadable_kanji("東京都の会議室、三月三日。") == ""
    # variant kanji the OpenJTalk dictionary lacks are read through the Sudachi dictionary, as Kokoro says them
    assert unreadable_kanji("髙田さんと𠮷田さん") == "" and kana_reading("髙田さんと𠮷田さん") == "タカダサントヨシダサン"
    assert score_turn("よしのや", "𠮷野家").kana_cer == 0.0
    # a transcript holding an unreadable character still scores instead of failing
    assert score_turn("よしのや", "彁野家").kana_cer > 0.0
