"""Language check on short strings: our script-based detector vs langdetect (named in the original card).

The spoken turns are often a few characters long (a title, a place name, a one-line request), where
langdetect's character n-gram profiles misread kanji-only strings as Chinese or Korean, and it is
random unless seeded. Prints accuracy per language and the disagreements.

    pip install langdetect && python benchmarks/langid.py
"""
from __future__ import annotations

from jaspeech.synthesis.text import detect_language

LABELLED = {
    "ja": [
        "東京都", "日本語", "会議室", "新幹線", "東京タワー", "富士山", "天気予報", "自己紹介", "駅はどこ",
        "おはよう", "ありがとう", "明日は晴れ", "猫が好き", "料理の手順", "経済の動向", "大阪城公園",
        "学校へ行く", "夏休みの宿題", "PythonでWebアプリを作りたい", "GPUの使い方を教えて",
        "三月三日", "社会保障制度改革", "国立大学法人", "電車が遅れた", "日本の首都はどこですか。",
        "おすすめの本を教えてください。", "カレーの作り方", "北海道旅行", "医療費控除", "人工知能",
    ],
    "zh": [
        "你好", "谢谢你", "我喜欢吃饭", "这是什么", "今天天气怎么样", "我们走吧", "请问洗手间在哪里",
        "中国的首都是北京", "他们没有来", "这个问题很难",
    ],
    "ko": ["안녕하세요", "감사합니다", "오늘 날씨 어때요?", "한국어 공부", "서울역"],
    "en": ["Good morning", "What is this?", "Tell me a joke", "machine learning", "Hello world"],
}


def main() -> None:
    try:
        from langdetect import DetectorFactory, detect

        DetectorFactory.seed = 0

        def langdetect_lang(s: str) -> str:
            code = detect(s)
            return {"zh-cn": "zh", "zh-tw": "zh"}.get(code, code)
    except ImportError:
        langdetect_lang = None
        print("langdetect is not installed: pip install langdetect (only our detector is measured)")

    print(f"{'language':>8} {'n':>3} {'jaspeech':>9} {'langdetect':>10}")
    totals = [0, 0, 0]
    misses = []
    for lang, strings in LABELLED.items():
        ours = sum(detect_language(s) == lang for s in strings)
        theirs = sum(langdetect_lang(s) == lang for s in strings) if langdetect_lang else float("nan")
        totals[0] += len(strings)
        totals[1] += ours
        totals[2] += theirs if langdetect_lang else 0
        print(f"{lang:>8} {len(strings):>3} {ours / len(strings):>9.0%} "
              f"{(theirs / len(strings)) if langdetect_lang else float('nan'):>10.0%}")
        for s in strings:
            if langdetect_lang and langdetect_lang(s) != lang or detect_language(s) != lang:
                misses.append((lang, s, detect_language(s), langdetect_lang(s) if langdetect_lang else "-"))
    print(f"{'all':>8} {totals[0]:>3} {totals[1] / totals[0]:>9.0%} "
          f"{(totals[2] / totals[0]) if langdetect_lang else float('nan'):>10.0%}")
    print("\nmisread (truth, text, jaspeech, langdetect):")
    for m in misses:
        print("  ", *m)


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # no options: --help says what it is
    main()
