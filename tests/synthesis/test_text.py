import pytest

from jaspeech.synthesis.text import (
    HOPELESS,
    TextOptions,
    Unspeakable,
    detect_language,
    estimate_seconds,
    prepare_for_speech,
)


def reason(text, **kw):
    with pytest.raises(Unspeakable) as e:
        prepare_for_speech(text, TextOptions(**kw))
    return e.value.reason


def test_markup_and_emoji_are_rewritten_not_spoken():
    text = prepare_for_speech("## 質問\n- **大事な**点を教えて😀\n- 二つ目<br>です")
    assert text == "質問。大事な点を教えて。二つ目です"


def test_nfkc_and_invisible_characters():
    assert prepare_for_speech("\u202eＡＩ\u200bとは何ですか\x07") == "AIとは何ですか"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("```python\nprint(1)\n```", "unspeakable_code"),
        ("`print(x)` の意味は？", "unspeakable_code"),
        ("https://example.com を見て", "unspeakable_url"),
        ("info@example.com に送って", "unspeakable_url"),
        ("| a | b |\n| 1 | 2 |", "unspeakable_table"),
        ("$x^2$ を微分して", "unspeakable_math"),
        ("", "empty_text"),
        ("😀😀", "empty_text"),
        ("！？・", "empty_text"),
        (None, "missing_text"),
        (42, "bad_type"),
        (["a"], "bad_type"),
        ("What is this?", "not_japanese"),
        ("你好，谢谢", "not_japanese"),
        ("안녕하세요", "not_japanese"),
        ("あ" * 5000, "too_long"),
        ("日本の歴史について詳しく説明してください。" * 80, "too_long"),  # ~5 min of speech
    ],
)
def test_unspeakable_rows_get_a_reason(text, expected):
    assert reason(text) == expected


def test_only_hopeless_lengths_are_rejected_before_synthesis():
    """The estimate only saves synthesising what cannot fit; the measured audio judges the rest."""
    text = "日本の歴史について詳しく説明してください。"
    seconds = estimate_seconds(text)
    assert 2.0 < seconds < 6.0
    assert prepare_for_speech(text, TextOptions(max_seconds=seconds * 0.8)) == text  # over, but maybe not in audio
    assert reason(text, max_seconds=seconds / (HOPELESS + 0.1)) == "too_long"


def test_a_long_instruction_is_speakable_by_default():
    """A passage to summarise, ~50 s of speech: rejected by the old 30 s default, kept by the 120 s one."""
    text = ("次の文章を三つの要点にまとめてください。私たちの町では、十年ほど前から商店街の空き店舗が目立つようになりました。"
            "駅前に大きな商業施設ができたことで、買い物客の多くがそちらに流れてしまったのです。"
            "そこで商店会は、空き店舗を若い人たちに安く貸し出し、カフェや雑貨店、小さな工房を開いてもらう取り組みを始めました。"
            "今では、空き店舗の数は半分以下に減り、商店街は町の新しい顔になりつつあります。")
    assert TextOptions().max_seconds >= 120
    assert 30 < estimate_seconds(text) < 60
    assert prepare_for_speech(text) == text


def test_the_estimate_weighs_characters_as_the_voices_speak_them():
    """Kanji take longer than kana, a sentence break adds a pause, the final stop adds nothing."""
    assert estimate_seconds("会議") > estimate_seconds("かい")
    assert estimate_seconds("はい。") == estimate_seconds("はい")
    assert estimate_seconds("はい。はい") > estimate_seconds("はいはい")


@pytest.mark.parametrize(
    "text, lang",
    [
        ("東京都", "ja"),  # short kanji-only strings that langdetect calls zh or ko
        ("日本語", "ja"),
        ("会議室", "ja"),
        ("東京タワー", "ja"),
        ("PythonでWebアプリを作りたい", "ja"),
        ("我喜欢吃饭", "zh"),
        ("中華人民共和国国務院総理李克強氏訪日予定発表昨日北京記者会見", "zh"),
        ("감사합니다", "ko"),
        ("Good morning", "en"),
        ("12345", "unknown"),
    ],
)
def test_language_detection_on_short_strings(text, lang):
    assert detect_language(text) == lang
