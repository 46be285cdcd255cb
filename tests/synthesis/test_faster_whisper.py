"""The offline ear (Whisper base int8 through CTranslate2) on real speech from the OpenJTalk voice."""
import pytest

from jaspeech.synthesis.asr import make_asr
from jaspeech.synthesis.audio import resample, split_at_pauses
from jaspeech.synthesis.roundtrip import kana_reading, score_turn
from jaspeech.synthesis.speakers import PROFILES
from jaspeech.synthesis.tts import make_tts

SHORT = "明日の会議は午後二時から始まります。"
LONG = ("次の文章を三つの要点にまとめてください。私たちの町では、十年ほど前から商店街の空き店舗が目立つようになりました。"
        "駅前に大きな商業施設ができたことで、買い物客の多くがそちらに流れてしまったのです。"
        "そこで商店会は、空き店舗を若い人たちに安く貸し出し、カフェや雑貨店、小さな工房を開いてもらう取り組みを始めました。"
        "今では、空き店舗の数は半分以下に減り、商店街は町の新しい顔になりつつあります。")


@pytest.fixture(scope="module")
def ear():
    asr = make_asr("faster-whisper")
    encode = asr._model.encode
    asr.encoded = 0

    def counting(features):
        asr.encoded += 1
        return encode(features)

    asr._model.encode = counting
    return asr


@pytest.fixture(scope="module")
def clips():
    tts = make_tts("openjtalk")
    return {text: tts.synthesize(text, PROFILES[2], 0) for text in (SHORT, LONG)}


def test_both_listenings_hear_clean_speech_and_the_second_reuses_the_encoder(ear, clips):
    before = ear.encoded
    first = ear.transcribe([clips[SHORT]])[0]
    assert ear.encoded == before + 1
    second = ear.transcribe([clips[SHORT]], strong=True)[0]
    assert ear.encoded == before + 1  # beam search over the encoder output kept from the first listening
    assert score_turn(SHORT, first).kana_cer <= 0.1 and score_turn(SHORT, second).kana_cer <= 0.1


def test_a_long_turn_is_heard_whole_in_windows(ear, clips):
    samples, sr = clips[LONG]
    assert samples.size / sr > 30
    before = ear.encoded
    heard = ear.transcribe([clips[LONG]])[0]
    windows = split_at_pauses(resample(samples, sr, 16000), 16000)
    assert len(windows) >= 2 and ear.encoded - before == len(windows)  # one encoding per window
    assert score_turn(LONG, heard).kana_cer <= 0.15
    assert len(kana_reading(heard)) >= 0.9 * len(kana_reading(LONG))


def test_a_clip_is_heard_the_same_whatever_its_neighbours(ear, clips):
    alone = ear.transcribe([clips[SHORT]])
    together = ear.transcribe([clips[LONG], clips[SHORT]])
    assert together[1] == alone[0]
