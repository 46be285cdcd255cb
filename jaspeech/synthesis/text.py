"""Text preparation for speech: make a turn speakable or say why it cannot be.

`prepare_for_speech` returns the exact text handed to TTS (so the `text` column always matches the
audio) or raises `Unspeakable` with a reject reason; `prepare_turn` returns it beside the original text.
Rewrites are limited to what a speaker would naturally drop or say differently (markdown markup, emoji,
invisible characters, footnote and citation markers, Latin-script words read in katakana); content a
speaker cannot say without changing the request (code, URLs, tables, formulas, Latin words nothing can
read) rejects the row, because the response was written for the original text.

The language check is script based and deterministic. `langdetect` (named in the original card)
labels short kanji strings as Chinese or Korean and is not deterministic without a fixed seed;
`benchmarks/langid.py` measures both on the same labelled strings.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

MAX_TEXT_CHARS = 4000  # ~8 min of speech, far beyond any limit; longer input is rejected before any regex work
HOPELESS = 2.0  # synthesis is skipped only for a turn estimated at more than this many times the limit


class Unspeakable(ValueError):
    """A turn that cannot be spoken; `reason` is the reject reason recorded for the row."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class TextOptions:
    """`max_seconds` is judged on the synthesised audio (`audio_too_long`); the estimate only saves
    synthesising a turn that cannot possibly fit (more than `HOPELESS` times the limit)."""

    max_seconds: float = 120.0  # long instructions (a passage to summarise) run 30-60 s; the round trip hears them whole
    morae_per_second: float = 7.3  # fitted on the 20 Kokoro voices (speeds 0.95-1.1): benchmarks/speech_rate.py


_INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\u00ad]"  # zero-width, bidi marks and embeddings, BOM
)
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")  # terminal colour/cursor codes
_CODE_FENCE = re.compile(r"```|~~~")
_INLINE_CODE = re.compile(r"`([^`\n]*)`")
_CODE_LIKE = re.compile(r"[{};=<>]|[A-Za-z_]\w*\([^)]*\)|::|->|=>|\bdef |\bimport |\breturn\b|#include|</")
_URL = re.compile(r"https?://|www\.|[\w.+-]+@[\w-]+\.[\w.]+|\]\(")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$", re.MULTILINE)
_MATH = re.compile(r"\$[^$\n]+\$|\\\(|\\\[|\\frac|\\sum")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>\n]{0,40}>")
_MD_HEADER = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_MD_BULLET = re.compile(r"^\s*(?:[-*+・]|\d+[.)])\s+", re.MULTILINE)
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|~~)(?=\S)(.+?)(?<=\S)\1")
_SENTENCE_END = "。！？!?…"
# Footnote and citation markers, which a reader skips: [13], [a], [注 1], [注釈 1], [要出典], (注1), ※1, *1 (after
# NFKC, so ［１］ and （注１） are matched too). A marker follows the word it annotates, so one at the start of a
# line, after a space, a digit, a Latin letter or another bracket is left alone: "[1] まず" and "1)" are list
# numbers, "a[1]" an index, "3*4" a product.
_FOOTNOTE = re.compile(
    r"(?<=[^\sA-Za-z0-9\[(*])(?:"
    r"\[(?:[1-9]\d{0,2}|[a-z]|(?:注釈?|脚注|注記|note|nb|n) ?\d{1,3}"
    r"|(?:要出典|要検証|要説明|要ページ番号|独自研究|疑問点|誰\?|いつ\?|どこ\?|citation needed|clarification needed)"
    r"[^\]\n]{0,20})\]"
    r"|\((?:注釈?|※|\*) ?\d{0,3}\)|※\d{1,3}|\*\d{1,3}(?!\d))",
    re.IGNORECASE,
)
# Superscript note numbers (東京¹, 東京⁽²⁾), removed before NFKC turns them into plain digits; after a letter, a
# digit or a bracket they are content (m², x², (a+b)²) and stay.
_SUPERSCRIPT_NOTE = re.compile(r"(?<=[^\sA-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a)\]])⁽?[⁰¹²³⁴-⁹]+⁾?")


def clean_text(text: str) -> str:
    """Drop C0/C1 controls (keeping newlines and tabs), unpaired surrogates and invisible marks.

    Applied to every text we store, spoken or not: an unpaired surrogate cannot even be written to Parquet.
    """
    text = _INVISIBLE.sub("", _ANSI_ESCAPE.sub("", text))
    return "".join(
        c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs", "Co", "Cn")
    )


def _is_emoji(c: str) -> bool:
    cp = ord(c)
    return (
        unicodedata.category(c) == "So"
        and (0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x2B00 <= cp <= 0x2BFF)
    ) or cp in (0xFE0F, 0x200D) or 0x1F3FB <= cp <= 0x1F3FF


def _join_lines(text: str) -> str:
    """Line breaks become sentence or clause breaks, so TTS pauses where the writer broke the line."""
    out: list[str] = []
    for line in (ln.strip() for ln in text.split("\n")):
        if not line:
            continue
        if out and out[-1][-1] not in _SENTENCE_END + "、,:：":
            out[-1] += "。"
        out.append(line)
    return "".join(out)


@dataclass(frozen=True)
class SpokenText:
    """A turn as spoken (`text`, what TTS is given and the row's `text`) and as written.

    `original_text` is the input after `clean_text` (what the row can store: no unpaired surrogates), or None
    when the spoken text is the same but for NFKC widths (？ and ?); the source row has the exact bytes.
    `footnotes` and `latin` say what the footnote and Latin-word rules changed, for counting.
    """

    text: str
    original_text: str | None
    footnotes: tuple[str, ...] = ()
    latin: tuple[LatinReading, ...] = ()


def prepare_for_speech(text: object, options: TextOptions = TextOptions()) -> str:
    """Return the speakable form of `text` or raise `Unspeakable(reason)`."""
    return prepare_turn(text, options).text


def prepare_turn(text: object, options: TextOptions = TextOptions()) -> SpokenText:
    """`prepare_for_speech`, keeping the original text and what the footnote and Latin rules changed."""
    if text is None:
        raise Unspeakable("missing_text")
    if not isinstance(text, str):
        raise Unspeakable("bad_type", f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise Unspeakable("too_long", f"{len(text)} characters")
    original = clean_text(text)
    text = unicodedata.normalize("NFKC", _SUPERSCRIPT_NOTE.sub("", original))  # before NFKC makes ¹ a 1
    if not text.strip():
        raise Unspeakable("empty_text")
    if _CODE_FENCE.search(text) or any(_CODE_LIKE.search(m) for m in _INLINE_CODE.findall(text)):
        raise Unspeakable("unspeakable_code", "code block or code-like inline code")
    if _URL.search(text):
        raise Unspeakable("unspeakable_url", "URL, e-mail address or link")
    if len(_TABLE_ROW.findall(text)) >= 2:
        raise Unspeakable("unspeakable_table", "markdown table")
    if _MATH.search(text):
        raise Unspeakable("unspeakable_math", "TeX formula")
    footnotes = tuple(m.group(0) for m in _FOOTNOTE.finditer(text))
    text = _FOOTNOTE.sub("", text)  # before the emphasis rule, which would pair the stars of "*1 ... *2"
    text = _INLINE_CODE.sub(r"\1", text)
    text = _HTML_TAG.sub("", text)
    text = _MD_HEADER.sub("", text)
    text = _MD_BULLET.sub("", text)
    text = _MD_EMPHASIS.sub(r"\2", text)
    text = "".join(c for c in text if not _is_emoji(c))
    text = re.sub(r"[ \t\u3000]+", " ", _join_lines(text)).strip()
    if not any(unicodedata.category(c)[0] in "LN" for c in text):
        raise Unspeakable("empty_text", "nothing speakable after removing markup and symbols")
    language = detect_language(text)
    if language != "ja":
        raise Unspeakable("not_japanese", f"detected {language}")
    text, latin = read_latin(text)  # after the language check: an English turn must not pass as katakana
    seconds = estimate_seconds(text, options)
    if seconds > HOPELESS * options.max_seconds:
        raise Unspeakable(
            "too_long", f"estimated {seconds:.0f} s of speech, over {HOPELESS:g}x the {options.max_seconds:g} s limit"
        )
    superscripts = tuple(_SUPERSCRIPT_NOTE.findall(original))
    same = unicodedata.normalize("NFKC", original) == text  # only widths differ (？ and ?, ＡＩ and AI)
    return SpokenText(text, None if same else original, superscripts + footnotes, latin)


# --- Latin-script words ---------------------------------------------------------------------------

# The Japanese names of the letters, as pyopenjtalk-plus spells an acronym it knows (CSS -> シーエスエス).
LETTER_NAMES = dict(zip(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "エー ビー シー ディー イー エフ ジー エイチ アイ ジェー ケー エル エム エヌ オー ピー キュー アール エス ティー "
    "ユー ブイ ダブリュー エックス ワイ ゼット".split(),
))
# A word right after a number is a unit or a model name (3776m, 20kg, 5G, 2LDK): pyopenjtalk-plus reads those in
# context (サンゼンナナヒャクナナジューロクメートル, ニジュッキログラム), so they are left to it.
_LATIN_WORD = re.compile(r"(?<![0-9A-Za-z])[A-Za-z]+(?:'[A-Za-z]+)*(?:-[A-Za-z]+(?:'[A-Za-z]+)*)*")
ACRONYM_LETTERS = 4  # an all-capital word up to this long is an acronym, spelled (AI, CEO, HTML); longer: a word
SPELL_LETTERS = 3  # a word the converter finds unpronounceable is spelled up to this long (dp, str), else rejected


@dataclass(frozen=True)
class LatinReading:
    """How one Latin-script word is spoken: `how` is "dictionary" (pyopenjtalk-plus reads it as a word: kept as
    written), "letters" (spelled with `LETTER_NAMES`), "sudachi" (Sudachi's dictionary reading), "e2k" (e2k's
    katakana), "unreadable", or for a hyphenated word its parts' joined with "+"."""

    word: str
    reading: str
    how: str


def read_latin(text: str) -> tuple[str, tuple[LatinReading, ...]]:
    """`text` with its Latin-script words replaced by what the voice should say; raises `Unspeakable`
    ("unspeakable_latin", naming the words) when a word has no reading.

    Today's voices read through pyopenjtalk-plus, which knows some words (Google, iPhone, print, AI, CSS:
    kept as written), spells other words letter by letter (Python -> ピーワイティーエイチオーエヌ) and silently drops
    the short ones it tags as symbols (変数iとj is spoken 変数と; it, How, AG). So: a word its dictionary reads is kept; an
    acronym (all capitals, up to `ACRONYM_LETTERS`) and a single letter are spelled, as Japanese says them (JSON
    ジェーエスオーエヌ, x エックス); another word is read with Sudachi's core dictionary where it has the word
    (Python パイソン, hello ハロー), else with e2k's character model (parallelize パラレライズ) when e2k's n-gram
    model finds it pronounceable (benchmarks/speakable.py measures both); a short unpronounceable word (dp, str)
    is spelled; a longer one (xkcdqz) cannot be read and rejects the turn
    rather than being spoken as a string of letters. The rule depends on the text alone, so every backend
    speaks the same text.
    """
    readings = {w: read_latin_word(w) for w in dict.fromkeys(m.group(0) for m in _LATIN_WORD.finditer(text))}
    unreadable = [w for w, r in readings.items() if r.how == "unreadable"]
    if unreadable:
        raise Unspeakable("unspeakable_latin", "no reading for " + ", ".join(unreadable[:10]))
    return latin_as_spoken(text), tuple(readings.values())


def latin_as_spoken(text: str) -> str:
    """`text` with each Latin-script word replaced as `read_latin` replaces it; a word with no reading stays.

    The round trip reads a transcript through this too: the ear writes エヌ番目 as N番目 and シープラスプラス as
    C++, which the dictionary alone would drop or spell differently from the text's reading.
    """
    if not _LATIN_WORD.search(text):
        return text
    return _LATIN_WORD.sub(lambda m: read_latin_word(m.group(0)).reading or m.group(0), text)


@lru_cache(maxsize=8192)
def read_latin_word(word: str) -> LatinReading:
    """One word (hyphenated parts read one by one, joined without the hyphen): see `read_latin`."""
    if "-" in word:
        parts = [read_latin_word(p) for p in word.split("-")]
        if all(p.how == "dictionary" for p in parts):
            return LatinReading(word, word, "dictionary")
        how = "unreadable" if any(p.how == "unreadable" for p in parts) else "+".join(p.how for p in parts)
        return LatinReading(word, "".join(spoken_as(p) for p in parts), how)
    if _known_to_openjtalk(word):
        return LatinReading(word, word, "dictionary")
    letters = word.replace("'", "")
    if len(letters) == 1 or (letters.isupper() and len(letters) <= ACRONYM_LETTERS):
        return LatinReading(word, spell(letters), "letters")
    if kana := sudachi_reading(letters):
        return LatinReading(word, kana, "sudachi")
    c2k, ngram = _e2k()
    if ngram(letters.lower()):
        kana = c2k(letters.lower())
        if kana:
            return LatinReading(word, kana, "e2k")
    if len(letters) <= SPELL_LETTERS:
        return LatinReading(word, spell(letters), "letters")
    return LatinReading(word, "", "unreadable")


def spell(letters: str) -> str:
    """The word spelled letter by letter in katakana (`LETTER_NAMES`)."""
    return "".join(LETTER_NAMES[c] for c in letters.upper())


def spoken_as(r: LatinReading) -> str:
    """The katakana the voice says for the word: its reading, or for a dictionary word the dictionary's."""
    if r.how != "dictionary":
        return r.reading
    import pyopenjtalk

    return "".join(f["pron"].replace("’", "") for f in pyopenjtalk.run_frontend(r.word, use_sudachi_kanji_yomi=False))


@lru_cache(maxsize=8192)
def _known_to_openjtalk(word: str) -> bool:
    """pyopenjtalk-plus reads `word` as one dictionary word (AI, CSS, Google; not a filler it spells out, nor
    symbols it drops). Checked on the word alone: in a sentence the same dictionary entry applies."""
    try:
        import pyopenjtalk
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading Latin-script words needs pyopenjtalk-plus and e2k: "
                          "`pip install 'jaspeech[offline]'`") from e
    features = pyopenjtalk.run_frontend(word, use_sudachi_kanji_yomi=False)
    return len(features) == 1 and features[0]["pos"] not in ("記号", "フィラー")


def sudachi_reading(word: str) -> str | None:
    """The katakana reading of `word` in Sudachi's core dictionary (installed with pyopenjtalk-plus), when it holds
    the word as one entry read as a word, not spelled (it -> アイティー is IT, not "it")."""
    for form in dict.fromkeys((word, word.lower())):
        morphemes = _sudachi().tokenize(form)
        if len(morphemes) == 1 and not morphemes[0].is_oov():
            kana = morphemes[0].reading_form()
            if _KATAKANA_WORD.fullmatch(kana) and kana != spell(word):
                return kana
    return None


_KATAKANA_WORD = re.compile("[\u30a1-\u30fa\u30fc]+")


@lru_cache(maxsize=1)
def _sudachi():
    from sudachipy import dictionary

    return dictionary.Dictionary(dict="core").create()


@lru_cache(maxsize=1)
def _e2k():
    """e2k's character-to-katakana model (greedy, deterministic) and its pronounceability n-gram model."""
    try:
        from e2k import C2K, NGram
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading Latin-script words needs e2k: `pip install 'jaspeech[offline]'`") from e
    return C2K(max_len=32), NGram()


# --- language -------------------------------------------------------------------------------------

# Characters that occur in simplified Chinese but not in Japanese writing (or are very rare in it).
_ZH_ONLY = set(
    "这们吗么呢没还说对个为时过给让从样哪谁怎她它见东车长门问间关开发无动实现经进话语请谢题认识"
    "你您啊吧嗯呀哦欢觉吃饭爱边头买卖钱书读写听记忆网络电脑视频软"
)


def _script(c: str) -> str:
    cp = ord(c)
    if 0x3040 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF or 0xFF66 <= cp <= 0xFF9D:
        return "kana"
    if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or c in "々〆":
        return "han"
    if 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F:
        return "hangul"
    if c.isascii() and c.isalpha():
        return "latin"
    if c.isalpha():
        return "other"
    return ""


def detect_language(text: str) -> str:
    """'ja', 'zh', 'ko', 'en', 'other' or 'unknown', from the scripts used.

    Kana only occur in Japanese, so any kana with a fair CJK share is Japanese. Kanji-only strings are
    Japanese unless they contain simplified-only characters or run long without a single kana (a real
    Japanese sentence of 20+ kanji and no kana is rare; a Chinese one is the norm). Latin words count
    once per word, not per letter, so technical Japanese with English terms stays Japanese.
    """
    counts = {"kana": 0, "han": 0, "hangul": 0, "latin": 0, "other": 0}
    for c in text:
        s = _script(c)
        if s:
            counts[s] += 1
    latin_words = len(re.findall(r"[A-Za-z]+", text))
    cjk = counts["kana"] + counts["han"]
    units = cjk + counts["hangul"] + latin_words + counts["other"]
    if units == 0:
        return "unknown"
    if counts["hangul"] > 0.3 * units:
        return "ko"
    if counts["kana"] and cjk >= 0.4 * units:
        return "ja"
    if counts["han"] and not counts["kana"] and counts["han"] >= 0.5 * units:
        if any(c in _ZH_ONLY for c in text) or counts["han"] >= 20:
            return "zh"
        return "ja"
    if latin_words and latin_words >= 0.5 * units:
        return "en"
    return "other"


# --- length ---------------------------------------------------------------------------------------

_SMALL_KANA = set("ぁぃぅぇぉゃゅょゎァィゥェォャュョヮ")


# Kana-mora equivalents per character class, as the default Kokoro voices say them: fitted by relative
# least squares on 256 measured texts (`benchmarks/speech_rate.py`). A sentence break includes Kokoro's
# 0.35 s pause; the text's final stop costs nothing, as synthesis trims trailing silence.
MORAE = {"kana": 1.0, "kanji": 1.7, "digit": 1.8, "letter": 1.7, "sentence break": 3.2, "comma": 1.9}


def character_classes(text: str) -> dict[str, int]:
    """How many characters of each `MORAE` class `text` holds (small kana, symbols and spaces not counted)."""
    counts = dict.fromkeys(MORAE, 0)
    for c in text.rstrip(_SENTENCE_END):
        s = _script(c)
        if s == "kana":
            counts["kana"] += c not in _SMALL_KANA
        elif s == "han":
            counts["kanji"] += 1
        elif c.isdigit():
            counts["digit"] += 1
        elif s in ("latin", "hangul", "other"):
            counts["letter"] += 1
        elif c in _SENTENCE_END:
            counts["sentence break"] += 1
        elif c in "、,":
            counts["comma"] += 1
    return counts


def estimate_morae(text: str) -> float:
    """Speaking length in kana morae: each character weighted by its class (`MORAE`)."""
    return sum(MORAE[k] * n for k, n in character_classes(text).items())


def estimate_seconds(text: str, options: TextOptions = TextOptions()) -> float:
    return estimate_morae(text) / options.morae_per_second


# --- long texts -----------------------------------------------------------------------------------

PIECE_CHARS = 400  # ~1 minute of speech: longer texts (spoken responses) are synthesised in pieces


def synthesis_pieces(text: str, max_chars: int = PIECE_CHARS) -> list[str]:
    """`text` cut at sentence ends into pieces of at most `max_chars` (a longer sentence stays whole).

    A text that fits is one piece, unchanged. Pieces keep every character, so joined they are the text.
    """
    if len(text) <= max_chars:
        return [text]
    sentences = [s for s in re.split(f"(?<=[{_SENTENCE_END}])", text) if s]
    pieces: list[str] = []
    for sentence in sentences:
        if pieces and len(pieces[-1]) + len(sentence) <= max_chars:
            pieces[-1] += sentence
        else:
            pieces.append(sentence)
    return pieces
