"""What installing `sudachidict_core` changes for readings (issue: a plain `pip install 'jaspeech[offline]'`).

pyopenjtalk-plus (which Kokoro and our kana readings use) declares sudachipy and sudachidict_core as
dependencies; with them installed, its default post-processing gives kanji that the OpenJTalk dictionary
cannot read a fallback reading (Sudachi's word reading for words with okurigana, else each kanji's
Unihan on'yomi). This script counts, over the bundled samples' spoken texts and a few hundred sentences
built around rarer kanji words (benchmarks/data/rare_kanji_words.txt), how many texts hold kanji the
dictionary cannot read (our `unreadable_kanji` reject), how many of those get a fallback reading once
the dictionary is installed, and what the readings cost in time.

    python benchmarks/readings.py
"""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "jaspeech" / "builders" / "samples"
TEMPLATES = ["{w}について詳しく教えてください。", "{w}の特徴を簡単に説明してください。",
             "子どもに{w}のことを分かりやすく話すには、どうすればいいですか。"]
# variant (itaiji) and rare kanji as they occur in Japanese names and old spellings
VARIANTS = "髙﨑𠮷德邉邊齋齊彅栁嵜﨔槇曻濵濱瀨禮穗凜煕昻鷗蠟繫榮曾櫻淵溪廣國圀澤擧堯遙謠嶋冨埜壺亞惠眞來戶"
NAME_TEMPLATES = ["{c}田さんに明日の会議の時間を伝えてください。", "{c}という字が入った名前の由来を教えてください。"]


def sample_texts() -> list[str]:
    texts = []
    for path in sorted(SAMPLES.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(row, dict):
                continue
            values = [row.get(k) for k in ("q1", "q2", "prompt")]
            values += [t.get("content") or t.get("value") for t in row.get("conversations") or []
                       if isinstance(t, dict) and t.get("role", t.get("from")) in ("user", "human")]
            texts += [v for v in values if isinstance(v, str) and v.strip()]
    return texts


def word_sentences() -> list[str]:
    words = [w for w in (HERE / "data" / "rare_kanji_words.txt").read_text(encoding="utf-8").split() if w]
    return [t.format(w=w) for w in words for t in TEMPLATES]


def variant_sentences() -> list[str]:
    return [t.format(c=c) for c in VARIANTS for t in NAME_TEMPLATES]


def _kanji(c: str) -> bool:
    cp = ord(c)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or cp >= 0x20000


def unread(features) -> str:
    """Kanji left without a reading: tagged as symbols, or with no pronunciation."""
    out = []
    for f in features:
        if f["pos"] == "記号" or not f.get("pron"):
            out += [c for c in f["string"] if _kanji(c)]
    return "".join(out)


def main() -> None:
    import pyopenjtalk

    has_dict = importlib.util.find_spec("sudachidict_core") is not None
    t0 = time.perf_counter()
    pyopenjtalk.run_frontend("今日は良い天気です。", use_sudachi_kanji_yomi=False)  # what Kokoro calls
    print(f"first frontend call (dictionary load): {time.perf_counter() - t0:.2f} s")
    sets = {"bundled samples (spoken texts)": sample_texts(), "rare-kanji-word sentences": word_sentences(),
            "names with variant kanji": variant_sentences()}
    print(f"sudachidict_core installed: {has_dict}")
    for name, texts in sets.items():
        t0 = time.perf_counter()
        vanilla = [unread(pyopenjtalk.run_frontend(t, use_sudachi_kanji_yomi=False, use_vanilla=True)) for t in texts]
        t_vanilla = time.perf_counter() - t0
        unreadable = [t for t, u in zip(texts, vanilla) if u]
        readable = [t for t, u in zip(texts, vanilla) if not u]
        t0 = time.perf_counter()
        for t in readable:  # Kokoro's own call, on the texts every install can read
            pyopenjtalk.run_frontend(t, use_sudachi_kanji_yomi=False)
        t_kokoro = time.perf_counter() - t0
        line = f"{name}: {len(texts)} texts, {len(unreadable)} with kanji the dictionary cannot read " \
               f"(vanilla readings {1000 * t_vanilla / len(texts):.2f} ms/text; Kokoro's frontend call on the " \
               f"readable ones {1000 * t_kokoro / max(1, len(readable)):.2f} ms/text)"
        if has_dict:
            t0 = time.perf_counter()
            plus = [unread(pyopenjtalk.run_frontend(t, use_sudachi_kanji_yomi=False)) for t in unreadable]
            t_plus = time.perf_counter() - t0
            fixed = sum(1 for u in plus if not u)
            line += f"; with the dictionary {fixed} of them get a fallback reading " \
                    f"({1000 * t_plus / max(1, len(unreadable)):.2f} ms/text)"
            for t in unreadable[:6]:
                kana = pyopenjtalk.g2p(t, kana=True, use_sudachi_kanji_yomi=False)
                print(f"    {t} -> {kana}")
        print(line)
    if has_dict:
        import sudachidict_core

        root = Path(sudachidict_core.__file__).parent
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        print(f"sudachidict_core on disk: {size / 2**20:.0f} MiB")


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # no options: --help says what it is
    main()
