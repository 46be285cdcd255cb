"""What the speakable-text rules change on real texts (issue 29: "say only what can be said", "one reading rule").

Sets: the bundled samples' user turns, and each `--input` file (JSON lines: Japanese MT-bench's
`{"turns": [...]}`, or any shape the samples use). For each set it prints rows and turns, and how many each rule
touches: footnote and citation markers removed, Latin-script words by how they are read (kept for pyopenjtalk's
dictionary, spelled, read by Sudachi's dictionary or by e2k), `unspeakable_latin` rejects, other rejects. Then
the converters, e2k beside Sudachi's core dictionary (installed with pyopenjtalk-plus) and alkana (measured only
where it is installed: GPL-2.0, so never a dependency), alone and combined, on the hand-labelled words of
benchmarks/data/latin_words.tsv. With `--hear`, each speakable turn is spoken by Kokoro
and heard by Whisper base (the offline stack), and its kana_cer is computed with the dictionary's readings as
written and with the one reading rule (`kana_reading`: the transcript's Latin words read as the text's, one
spelling per sound): how many turns the rule changes, and how many it moves across the 0.1 threshold.

    python benchmarks/speakable.py --quick                  # the samples, 6 turns heard
    python benchmarks/speakable.py --input ja_mt_bench_question.jsonl --hear --cache heard.jsonl

Japanese MT-bench: github.com/lm-sys/FastChat, commit 3e0e7f15,
fastchat/llm_judge/data/japanese_mt_bench/question.jsonl (Apache-2.0); not bundled, pass it with --input.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from jaspeech.builders.pipeline import SynthesisOptions
from jaspeech.cer import cer
from jaspeech.synthesis.roundtrip import kana_reading, written_kana
from jaspeech.synthesis.text import Unspeakable, prepare_turn, read_latin_word, spoken_as, sudachi_reading

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "jaspeech" / "builders" / "samples"
WORDS = HERE / "data" / "latin_words.tsv"
THRESHOLD = SynthesisOptions().max_kana_cer


def user_turns(row: object) -> list[str]:
    """The user-side texts of one input row, whatever its shape (MT-bench, Alpaca, ShareGPT, messages, ...)."""
    if not isinstance(row, dict):
        return []
    values = list(row.get("turns") or []) + [row.get(k) for k in ("q1", "q2", "prompt", "instruction", "input")]
    values += [t.get("content") or t.get("value") for t in row.get("conversations") or row.get("messages") or []
               if isinstance(t, dict) and t.get("role", t.get("from")) in ("user", "human")]
    return [v for v in values if isinstance(v, str) and v.strip()]


def read_rows(paths: list[Path]) -> list[list[str]]:
    rows = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(user_turns(json.loads(line)))
            except json.JSONDecodeError:
                continue  # the samples hold malformed lines on purpose
    return [r for r in rows if r]


def count_rules(name: str, rows: list[list[str]]) -> list[str]:
    """Print what each rule touches in one set; return its speakable turns (the spoken texts)."""
    turns = rows_touched = footnote_turns = latin_turns = 0
    footnotes, hows, rejects, examples = Counter(), Counter(), Counter(), []
    spoken: list[str] = []
    for row in rows:
        touched = False
        for text in row:
            turns += 1
            try:
                s = prepare_turn(text)
            except Unspeakable as e:
                rejects[e.reason] += 1
                touched |= e.reason == "unspeakable_latin"
                if e.reason == "unspeakable_latin":
                    examples.append(f"unspeakable_latin: {e.detail}")
                continue
            spoken.append(s.text)
            footnote_turns += bool(s.footnotes)
            footnotes.update(s.footnotes)
            changed = [r for r in s.latin if r.how != "dictionary"]
            latin_turns += bool(changed)
            hows.update(r.how for r in s.latin)
            touched |= bool(s.footnotes or changed)
            if changed and len(examples) < 12:
                examples.append(", ".join(f"{r.word}->{r.reading}" for r in changed[:6]))
        rows_touched += touched
    print(f"\n== {name}: {len(rows)} rows, {turns} user turns; rows touched by the rules: {rows_touched}")
    print(f"  footnote markers removed: {sum(footnotes.values())} in {footnote_turns} turns {dict(footnotes)}")
    print(f"  Latin words (distinct per turn) by reading: {dict(hows)}; turns whose spoken text changed: {latin_turns}")
    print(f"  rejects: {dict(rejects)} (unspeakable_latin: {rejects['unspeakable_latin']})")
    for e in examples:
        print(f"    {e}")
    return spoken


def converters() -> None:
    """Coverage and exact matches of each converter on the labelled words."""
    labelled = [line.split("\t") for line in WORDS.read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#")]
    words = [(w, kind, set(r.split("|"))) for w, kind, r in labelled]
    from e2k import C2K, NGram

    c2k, ngram = C2K(max_len=32), NGram()
    candidates = {"e2k C2K alone": lambda w: c2k(w.lower()),
                  "e2k C2K where its n-gram model says pronounceable":
                      lambda w: c2k(w.lower()) if ngram(w.lower()) else None,
                  "jaspeech's rule (read_latin_word)": lambda w: spoken_as(read_latin_word(w)) or None}
    candidates["Sudachi core dictionary"] = sudachi_reading
    candidates["Sudachi, else e2k"] = lambda w: sudachi_reading(w) or c2k(w.lower())
    try:
        import alkana

        candidates["alkana (dictionary)"] = alkana.get_kana
        candidates["alkana, else e2k"] = lambda w: alkana.get_kana(w) or c2k(w.lower())
    except ImportError:
        print("alkana is not installed: pip install alkana to measure it beside e2k")
    print(f"\n== converters on {len(words)} labelled words ({WORDS.name})")
    for kind in ("word", "acronym"):
        group = [(w, ok) for w, k, ok in words if k == kind]
        print(f"  {kind}s ({len(group)}):")
        for name, convert in candidates.items():
            t0 = time.perf_counter()
            out = [(w, convert(w), ok) for w, ok in group]
            ms = 1000 * (time.perf_counter() - t0) / len(group)
            covered = [o for o in out if o[1]]
            right = [o for o in covered if o[1] in o[2]]
            dist = sum(min(cer(r, o[1]) for r in o[2]) for o in covered) / max(1, len(covered))
            wrong = ", ".join(f"{w}->{k}" for w, k, ok in covered if k not in ok)
            print(f"    {name}: covers {len(covered)}/{len(group)}, right {len(right)}/{len(group)}, "
                  f"mean kana CER of its readings {dist:.3f}, {ms:.1f} ms/word\n      wrong: {wrong}")


def hear(name: str, texts: list[str], limit: int, cache_path: Path | None) -> None:
    """kana_cer of Kokoro takes heard by Whisper base, with and without the one reading rule."""
    from jaspeech.synthesis.asr.faster_whisper import FasterWhisperASR
    from jaspeech.synthesis.speakers import assign_speaker
    from jaspeech.synthesis.tts import make_tts

    cache = {}
    if cache_path and cache_path.exists():
        for line in cache_path.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            cache[d["text"]] = d["transcript"]
    texts = list(dict.fromkeys(texts))[:limit]
    tts = asr = None
    changed, crossed, lines, t0, made = 0, Counter(), [], time.perf_counter(), 0
    for text in texts:
        if text not in cache:
            if tts is None:
                tts, asr = make_tts("kokoro"), FasterWhisperASR()
            [cache[text]] = asr.transcribe([tts.synthesize(text, assign_speaker("speakable", text), 0)])
            made += 1
            if cache_path:
                with cache_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"text": text, "transcript": cache[text]}, ensure_ascii=False) + "\n")
        heard = cache[text]
        before = cer(written_kana(text), written_kana(heard))
        after = cer(kana_reading(text), kana_reading(heard))
        if abs(before - after) > 1e-9:
            changed += 1
            crossed[(before > THRESHOLD, after > THRESHOLD)] += 1
            lines.append(f"    {before:.3f} -> {after:.3f}  {text[:40]} | heard {heard[:40]}")
    print(f"\n== {name}: {len(texts)} turns heard ({made} synthesised now, "
          f"{time.perf_counter() - t0:.0f} s); kana_cer changed by the one reading rule in {changed}; "
          f"moved from reject to keep: {crossed[(True, False)]}, from keep to reject: {crossed[(False, True)]}")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, action="append", default=[], help="a JSONL file of rows (repeatable)")
    parser.add_argument("--hear", action="store_true", help="speak and hear the turns (Kokoro + Whisper base)")
    parser.add_argument("--limit", type=int, default=400, help="turns heard per set (default 400)")
    parser.add_argument("--cache", type=Path, help="JSONL of transcripts by text, read and appended to")
    parser.add_argument("--quick", action="store_true", help="the samples only, 6 turns heard")
    args = parser.parse_args()
    sets = {"bundled samples": read_rows(sorted(SAMPLES.glob("*.jsonl")))}
    if not args.quick:
        sets.update({str(p): read_rows([p]) for p in args.input})
    spoken = {name: count_rules(name, rows) for name, rows in sets.items()}
    converters()
    if args.hear or args.quick:
        for name, texts in spoken.items():
            hear(name, texts, 6 if args.quick else args.limit, args.cache)


if __name__ == "__main__":
    main()
