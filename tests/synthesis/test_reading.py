"""TTS readings: a backend fed the OpenJTalk kana reading receives the reading, never the kanji text."""
import numpy as np
import pytest

from jaspeech.synthesis.reading import KanaReading, default_reading, openjtalk_kana
from jaspeech.synthesis.roundtrip import kana_reading, same_sound
from jaspeech.synthesis.speakers import speaker_by_name
from jaspeech.synthesis.tts import make_tts
from jaspeech.synthesis.tts.tone import ToneTTS


class Recorder:
    """Records what it is asked to say (the wrapped backend's side of the seam)."""

    name = "recorder"

    def __init__(self):
        self.said = []

    def synthesize(self, text, speaker, seed):
        self.said.append((text, speaker.name, seed))
        return np.zeros(10, np.float32), 16000


def test_kana_reading_is_what_the_backend_receives():
    inner = Recorder()
    tts = KanaReading(inner)
    text = "日本で一番高い山は何ですか。富士山です！"
    audio, sr = tts.synthesize(text, speaker_by_name("spk02"), seed=5)
    # 何ですか is read ナンデスカ (pyopenjtalk-plus's reading of 何, as Kokoro speaks it)
    assert inner.said == [("ニホンデイチバンタカイヤマワナンデスカ。フジサンデス！", "spk02", 5)]
    assert sr == 16000 and audio.size == 10
    assert tts.reads_with_openjtalk and tts.name == "recorder, fed OpenJTalk kana readings"
    # the reading keeps the punctuation that paces speech, and is the reading the round trip scores (with one
    # spelling per sound: デイ of で一番 is written デー there, on both sides of the comparison)
    assert kana_reading(text) == same_sound(openjtalk_kana(text).replace("。", "").replace("！", ""))
    assert openjtalk_kana("約50%です") == "ヤクゴジュッパーセントデス" and openjtalk_kana("  ") == ""


def test_make_tts_readings_and_defaults():
    assert default_reading("cosyvoice2") == "kana"
    assert [default_reading(n) for n in ("kokoro", "openjtalk", "tone")] == ["text", "text", "text"]
    plain = make_tts("tone")
    assert isinstance(plain, ToneTTS)
    kana = make_tts("tone", reading="kana")
    assert isinstance(kana, KanaReading) and isinstance(kana.inner, ToneTTS)
    # the tone backend beeps once per character it is given: the kana reading, not the 3 kanji
    audio, sr = kana.synthesize("朝ご飯", speaker_by_name("spk00"), seed=1)
    assert audio.size == len("アサゴハン") * int(0.05 * sr)
    with pytest.raises(ValueError, match="unknown TTS reading 'romaji'; choose from text, kana"):
        make_tts("tone", reading="romaji")


def test_a_build_with_tts_reading_kana_feeds_the_reading_and_keeps_the_text(tmp_path, monkeypatch):
    """Through `jaspeech build`: the backend hears katakana, the rows keep the written text."""
    import re

    import pyarrow.parquet as pq

    from jaspeech.cli import main

    heard = []
    real = ToneTTS.synthesize
    monkeypatch.setattr(ToneTTS, "synthesize", lambda self, text, spk, seed: heard.append(text) or real(self, text, spk, seed))
    out = tmp_path / "out"
    assert main(["build", "jaspeech-sft-audio", "--config", "magpie", "--input", "sample", "--limit", "4",
                 "--tts", "tone", "--tts-reading", "kana", "--asr", "none", "--out", str(out), "--quiet"]) == 0
    rows = pq.read_table(out / "data" / "magpie").to_pylist()
    assert rows and len(heard) == len(rows)
    assert all(re.fullmatch(r"[\u30a0-\u30ff\u3000-\u303f！？、。・ー]+", t) for t in heard), heard
    assert all(re.search(r"[\u4e00-\u9fff]", r["turns"][0]["text"]) for r in rows)  # kanji kept in the row
    assert all("kana" in r["tts_model"] for r in rows)
