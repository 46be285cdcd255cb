import pytest

from jaspeech.synthesis.text import TextOptions, Unspeakable, detect_language, estimate_seconds, prepare_for_speech


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
        ("日本の歴史について詳しく説明してください。" * 8, "too_long"),
    ],
)
def test_unspeakable_rows_get_a_reason(text, expected):
    assert reason(text) == expected


def test_length_limit_is_configurable():
    text = "日本の歴史について詳しく説明してください。"
    assert prepare_for_speech(text) == text
    assert reason(text, max_seconds=2.0) == "too_long"
    assert estimate_seconds(text) > 2.0


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
