import pytest

from jaspeech.synthesis.text import (
    HOPELESS,
    TextOptions,
    Unspeakable,
    detect_language,
    estimate_seconds,
    prepare_for_speech,
    prepare_turn,
    read_latin_word,
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


# --- footnotes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, spoken, removed",
    [
        # a Wikipedia passage as databricks-dolly-15k-ja carries it (issue 29: "[a]", "[13]" were spoken)
        ("富士山は日本一高い山である[a]。標高は3776mで[13][14]、信仰の対象でもある[要出典]。",
         "富士山は日本一高い山である。標高は3776mで、信仰の対象でもある。", ("[a]", "[13]", "[14]", "[要出典]")),
        ("東京は首都である［１］。人口は多い［注 2］［注釈3］。", "東京は首都である。人口は多い。", ("[1]", "[注 2]", "[注釈3]")),
        ("価格は税込です※1。送料は別です(注1)。返品は不可（注２）。詳細は後述*3。",
         "価格は税込です。送料は別です。返品は不可。詳細は後述。", ("※1", "(注1)", "(注2)", "*3")),
        ("東京¹と大阪⁽²⁾の人口を比べてください。", "東京と大阪の人口を比べてください。", ("¹", "⁽²⁾")),
    ],
)
def test_footnote_and_citation_markers_are_not_spoken(text, spoken, removed):
    turn = prepare_turn(text)
    assert turn.text == spoken and turn.original_text == text and set(turn.footnotes) == set(removed)


@pytest.mark.parametrize(
    "text, spoken",
    [
        ("[1] まず野菜を切ります。\n[2] 次に炒めます。", "[1] まず野菜を切ります。[2] 次に炒めます。"),  # list numbers
        ("1) 卵を割る\n2) 混ぜる", "卵を割る。混ぜる"),  # list items are sentences, as before
        ("部屋の広さは20m²で、x²の係数は3です。", "部屋の広さは20m2で、エックス2の係数は3です。"),  # units, powers
        ("配列a[1]の値と、答え[3つ]を教えて。", "配列エー[1]の値と、答え[3つ]を教えて。"),  # an index, a word
    ],
)
def test_brackets_and_numbers_that_are_content_stay(text, spoken):
    assert prepare_for_speech(text) == spoken


def test_the_original_text_is_kept_only_when_it_differs():
    assert prepare_turn("今日の天気は？").original_text is None
    turn = prepare_turn("**大事**な点を教えて")
    assert turn.text == "大事な点を教えて" and turn.original_text == "**大事**な点を教えて"
    assert prepare_turn("a\ud800いうえお").original_text == "aいうえお"  # cleaned: a row can store it


# --- Latin-script words ---------------------------------------------------------------------------


def test_latin_words_are_read_as_the_voice_can_say_them():
    # pyopenjtalk-plus reads these as words: kept as written (the voice says グーグル, エーアイ, シーエスエス)
    assert prepare_for_speech("GoogleやAI、CSS、iPhoneについて") == "GoogleやAI、CSS、iPhoneについて"
    # one-letter words are spelled (the voice used to drop them: 変数iとj was spoken 変数と)
    assert prepare_for_speech("変数iとjを使い、XとYを求めて") == "変数アイとジェーを使い、エックスとワイを求めて"
    # words the dictionary would spell letter by letter go to e2k (JaNLI's labels were heard as 言えぬTARMENT)
    turn = prepare_turn("この文はentailmentですか、non-entailmentですか。")
    assert turn.text == "この文はエンテールメントですか、ノンエンテールメントですか。"
    assert turn.original_text == "この文はentailmentですか、non-entailmentですか。"
    assert [r.how for r in turn.latin] == ["e2k", "sudachi+e2k"]  # non: Sudachi; entailment: e2k
    # a short unpronounceable identifier is spelled; an English turn is still English, not katakana
    assert read_latin_word("dp").reading == "ディーピー" and read_latin_word("JSON").how == "letters"
    assert reason("What is the capital of France?") == "not_japanese"


def test_latin_words_nothing_can_read_reject_the_turn():
    with pytest.raises(Unspeakable) as e:
        prepare_for_speech("このxkcdqzwとsqrtの意味を教えてください。")
    assert e.value.reason == "unspeakable_latin" and e.value.detail == "no reading for xkcdqzw, sqrt"
