"""The fair ear against controls: does the round trip keep takes that say their text and reject takes that don't?

From real Japanese texts (the user turns of the bundled samples, and any `--input` file: Japanese MT-bench's
questions were used for the figures in docs/round-trip.md), each text gets, with the offline stack (Kokoro
TTS, Whisper base int8 through faster-whisper):

- `positive`: its own take;
- `trunc50` / `trunc75` / `trunc90`: that take cut at 50, 75 and 90 % of its text: where the ear's alignment of
  the positive puts the start of the spoken piece at that share of the text's spoken pieces (so the cut always
  removes the text's last words, never trailing silence alone);
- `swap`: the take of a different text (the next one in the list);
- `minimal`: the text with one content noun replaced by another noun of the same length and a different reading
  (from the other texts), spoken, then scored against the original text;
- `dropped`: the text with one content noun removed, spoken, scored against the original;
- `silence` and `noise` (white noise at -30 dBFS), as long as the take.

Every case is heard as today's rule hears it (greedy transcript, kana-CER <= 0.10, a beam-search second
listening of a failed turn) and scored by the ear (`score`: the text teacher-forced, beside the ear's own
transcript), and the table prints, for today's rule and the forced rule side by side: positives kept, each
control rejected, and the ear's seconds per audio second.

    python benchmarks/ear_controls.py --limit 30                                     # the bundled samples
    python benchmarks/ear_controls.py --input benchmarks/data/ja_mt_bench_question.jsonl --no-samples
    python benchmarks/ear_controls.py --cache build/ear-controls.pkl --sweep         # rescore, try other rules

`--cache` keeps the synthesis and the ear's results, so a rerun only re-applies the rules.
"""
from __future__ import annotations

import argparse
import json
import math
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("positive", "trunc50", "trunc75", "trunc90", "swap", "minimal", "dropped", "silence", "noise")
SAMPLES = (("jaspeech-sft-audio", "magpie"), ("jaspeech-sft-audio", "automultiturn"),
           ("jaspeech-dpo-audio", "hh-rlhf"), ("jaspeech-dpo-audio", "chatbot-arena"))


@dataclass
class Case:
    kind: str
    text: str  # the text the audio is scored against
    spoken: str  # what was really spoken ("" for silence and noise)
    audio: tuple | None  # (samples, rate); dropped once heard
    source: str = ""
    row: int = -1  # the text's index in its source (its voice and seed)
    greedy: str = ""
    beam: str | None = None
    forced: object = None
    t_greedy: float = 0.0
    t_beam: float = 0.0
    t_score: float = 0.0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.audio is not None:
            self.seconds = self.audio[0].size / self.audio[1]


@dataclass
class Source:
    name: str
    texts: list[str] = field(default_factory=list)


def sample_texts(limit: int | None) -> list[Source]:
    """The spoken user turns of the bundled samples, as the builder prepares them."""
    from jaspeech.builders import corpus_spec
    from jaspeech.builders.pipeline import RowBuilder
    from jaspeech.builders.schema import RowReject
    from jaspeech.builders.sources import InputSource, source_id_of

    out = []
    for corpus, name in SAMPLES:
        spec = corpus_spec(corpus)
        config = spec.configs[name]
        builder = RowBuilder(spec, config, tts=None, asr=None)
        src = Source(f"sample {name}")
        for position, raw in InputSource("sample", name, config.hub_id).iter_rows():
            try:
                planned = builder.plan(position, raw, source_id_of(raw, config.id_field, position))
            except RowReject:
                continue
            src.texts += [planned.texts[i] for i in sorted(planned.voices)]
        out.append(src)
    return [Source(s.name, short_texts(s.texts, limit)) for s in out]


def file_texts(path: Path, limit: int | None) -> Source:
    """Every string turn of a JSONL file: MT-bench's `turns`, or `text` / `instruction` columns."""
    from jaspeech.synthesis.text import TextOptions, Unspeakable, prepare_for_speech

    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        raw = row.get("turns") or [row.get("text") or row.get("instruction") or ""]
        for t in raw:
            try:
                texts.append(prepare_for_speech(t, TextOptions()))
            except Unspeakable:
                pass
    return Source(path.name, short_texts(texts, limit))


def short_texts(texts: list[str], limit: int | None) -> list[str]:
    """Distinct texts of at most ~25 s of speech (one Whisper window), in order, at most `limit`."""
    from jaspeech.synthesis.text import estimate_seconds

    seen, out = set(), []
    for t in texts:
        if t not in seen and estimate_seconds(t) <= 25 and len(t) >= 6:
            seen.add(t)
            out.append(t)
    return out[:limit] if limit else out


def nouns(text: str) -> list[tuple[int, int, str, str]]:
    """Content nouns of `text`: (start, end, surface, reading), by pyopenjtalk's morphemes."""
    import pyopenjtalk

    out, pos = [], 0
    for f in pyopenjtalk.run_frontend(text):
        s = f["string"]
        at = text.find(s, pos)
        if at < 0:
            continue
        pos = at + len(s)
        if f["pos"] == "名詞" and f["pos_group1"] not in ("数", "代名詞", "非自立", "接尾") and len(s) >= 2 \
                and not any(c.isascii() for c in s):
            out.append((at, pos, s, f["pron"]))
    return out


def variants(texts: list[str]) -> tuple[dict[int, str], dict[int, str]]:
    """For each text (by index): a minimal pair (one noun swapped for another of the same length and another
    reading, from the other texts) and a dropped-word text (one noun removed). Chosen by a hash of the text."""
    from jaspeech.synthesis.speakers import stable_hash

    pool: dict[int, list[tuple[str, str]]] = {}
    found = [nouns(t) for t in texts]
    for ns in found:
        for _, _, s, r in ns:
            pool.setdefault(len(s), [])
            if (s, r) not in pool[len(s)]:
                pool[len(s)].append((s, r))
    minimal, dropped = {}, {}
    for i, (t, ns) in enumerate(zip(texts, found)):
        if not ns:
            continue
        h = stable_hash("controls", t)
        a, b, s, r = ns[h % len(ns)]
        others = [(s2, r2) for s2, r2 in pool.get(len(s), []) if s2 != s and r2 != r and s2 not in t]
        if others:
            s2, _ = others[h % len(others)]
            minimal[i] = t[:a] + s2 + t[b:]
        dropped[i] = t[:a] + t[b:]
    return minimal, dropped


def cut_at(forced, share: float, sr: int) -> int:
    """The sample where the spoken piece at `share` of the text's spoken pieces starts (never the first piece)."""
    from jaspeech.builders.ear import spoken_pieces

    pieces = spoken_pieces(forced)
    k = min(len(pieces) - 1, max(1, math.ceil(share * len(pieces))))
    return int(forced.starts[pieces[k]] * sr)


def make_cases(texts: list[str], tts, asr) -> list[Case]:
    from jaspeech.synthesis.speakers import assign_speaker

    minimal, dropped = variants(texts)
    takes: dict[str, tuple[np.ndarray, int]] = {}

    def take(i: int, text: str) -> tuple[np.ndarray, int]:
        if text not in takes:  # every text of row i in row i's voice
            takes[text] = tts.synthesize(text, assign_speaker("ear-controls", str(i)), i)
        return takes[text]

    cases = []
    for i, t in enumerate(texts):
        x, sr = take(i, t)
        aligned = asr.score([(x, sr)], [t])[0]
        other = texts[(i + 1) % len(texts)]
        noise = (np.random.default_rng(i).standard_normal(x.size) * 10 ** (-30 / 20)).astype(np.float32)
        cases += [Case("positive", t, t, (x, sr), row=i)]
        cases += [Case(f"trunc{f}", t, t, (x[: cut_at(aligned, f / 100, sr)], sr)) for f in (50, 75, 90)]
        cases += [Case("swap", t, other, take((i + 1) % len(texts), other))]
        cases += [Case(kind, t, v, take(i, v)) for kind, v in (("minimal", minimal.get(i)), ("dropped", dropped.get(i)))
                  if v]
        cases += [Case("silence", t, "", (np.zeros_like(x), sr)), Case("noise", t, "", (noise, sr))]
    return cases


def hear(cases: list[Case], asr, max_kana_cer: float) -> None:
    """Today's listenings (greedy, then beam for a failed turn) and the forced score, timed per case."""
    from jaspeech.synthesis.roundtrip import score_turn

    for n, c in enumerate(cases):
        if n % 50 == 0:
            print(f"heard {n}/{len(cases)} cases", flush=True)
        t0 = time.perf_counter()
        c.greedy = asr.transcribe([c.audio])[0]
        c.t_greedy = time.perf_counter() - t0
        if fails(score_turn(c.text, c.greedy).kana_cer, max_kana_cer):
            t0 = time.perf_counter()
            c.beam = asr.transcribe([c.audio], strong=True)[0]
            c.t_beam = time.perf_counter() - t0
        t0 = time.perf_counter()
        c.forced = asr.score([c.audio], [c.text])[0]
        c.t_score = time.perf_counter() - t0


def fails(kana_cer: float, limit: float) -> bool:
    return math.isnan(kana_cer) or kana_cer > limit


def today_keeps(c: Case, max_kana_cer: float) -> bool:
    from jaspeech.synthesis.roundtrip import score_turn

    heard = c.greedy if c.beam is None else c.beam
    return not fails(score_turn(c.text, heard).kana_cer, max_kana_cer)


def table(cases: list[Case], rules: dict, out=print) -> dict:
    """Per kind: the share each rule keeps (positives) or rejects (controls)."""
    result = {}
    out(f"{'case':<10} {'n':>4} " + " ".join(f"{name:>22}" for name in rules))
    for kind in KINDS:
        mine = [c for c in cases if c.kind == kind]
        if not mine:
            continue
        cells = []
        for name, keeps in rules.items():
            kept = sum(keeps(c) for c in mine)
            share = kept if kind == "positive" else len(mine) - kept
            label = "kept" if kind == "positive" else "rejected"
            cells.append(f"{share:>4}/{len(mine):<4} {100 * share / len(mine):5.1f} % {label:>8}")
            result.setdefault(name, {})[kind] = share / len(mine)
        out(f"{kind:<10} {len(mine):>4} " + " ".join(f"{c:>22}" for c in cells))
    return result


def retake(failed: list[Case], rule) -> None:
    """Takes 2 and 3 of each failed positive, as `RowBuilder` makes them (`pipeline.RETAKE_PACE`), heard again."""
    from dataclasses import replace

    from jaspeech.builders.ear import forced_fails
    from jaspeech.builders.pipeline import RETAKE_PACE
    from jaspeech.synthesis.asr.faster_whisper import FasterWhisperASR
    from jaspeech.synthesis.speakers import assign_speaker
    from jaspeech.synthesis.tts import make_tts

    tts, asr = make_tts("kokoro"), FasterWhisperASR()
    saved, tts_s, ear_s = 0, 0.0, 0.0
    for n, c in enumerate(failed):
        voice = assign_speaker("ear-controls", str(c.row))  # the positive's own voice
        for take, pace in enumerate(RETAKE_PACE, start=2):
            t0 = time.perf_counter()
            audio = tts.synthesize(c.text, replace(voice, speed=round(voice.speed * pace, 4)), take)
            t1 = time.perf_counter()
            forced = asr.score([audio], [c.text])[0]  # its greedy transcript included, as a build hears a take
            tts_s, ear_s = tts_s + t1 - t0, ear_s + time.perf_counter() - t1
            if forced_fails(forced, rule) is None:
                saved += 1
                print(f"  take {take} saves {c.text!r}")
                break
    print(f"\nretakes: {saved} of {len(failed)} failed positives kept by a retake; {tts_s:.1f} s of TTS and "
          f"{ear_s:.1f} s of ear for them")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, action="append", default=[], help="a JSONL file of real Japanese texts")
    ap.add_argument("--no-samples", action="store_true", help="only the --input files")
    ap.add_argument("--limit", type=int, help="texts per source (in file order)")
    ap.add_argument("--sample-limit", type=int, help="texts per bundled sample (default: --limit)")
    ap.add_argument("--cache", type=Path, help="pickle of the cases (synthesis and the ear's results)")
    ap.add_argument("--sweep", action="store_true", help="also print the forced rule's figures for other settings")
    ap.add_argument("--json", action="store_true", help="print one JSON line of the figures last")
    ap.add_argument("--retakes", action="store_true",
                    help="synthesise the positives the forced rule rejects again (takes 2 and 3, as a build's retakes: "
                    "the same voice at another pace) and print how many a retake saves and what it costs")
    args = ap.parse_args()

    from jaspeech.builders.ear import EarRule, forced_fails
    from jaspeech.synthesis.asr.faster_whisper import FasterWhisperASR
    from jaspeech.synthesis.tts import make_tts

    max_kana_cer = 0.10
    if args.cache and args.cache.exists():
        cases, sources = pickle.loads(args.cache.read_bytes())
    else:
        sources = [] if args.no_samples else sample_texts(args.sample_limit or args.limit)
        sources += [file_texts(p, args.limit) for p in args.input]
        tts, asr = make_tts("kokoro"), FasterWhisperASR()
        cases = []
        for src in sources:
            for c in make_cases(src.texts, tts, asr):
                c.source = src.name
                cases.append(c)
        hear(cases, asr, max_kana_cer)
        for c in cases:
            c.audio = None
        if args.cache:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            args.cache.write_bytes(pickle.dumps((cases, sources)))
    for src in sources:
        print(f"{src.name}: {len(src.texts)} texts")
    rule = EarRule()
    rules = {"today (kana-CER)": lambda c: today_keeps(c, max_kana_cer),
             f"forced (w{rule.window}, {rule.max_deficit:g})": lambda c: forced_fails(c.forced, rule) is None}
    print()
    figures = table(cases, rules)
    audio = sum(c.seconds for c in cases)
    today_s = sum(c.t_greedy + c.t_beam for c in cases)
    new_s = sum(c.t_greedy + c.t_score for c in cases)
    print(f"\near seconds per audio second: today {today_s / audio:.3f} (greedy + beam on failures), "
          f"forced {new_s / audio:.3f} (greedy + forced score), ratio {new_s / today_s:.2f}")
    failed = [c for c in cases if c.kind == "positive" and forced_fails(c.forced, rule) is not None]
    for c in failed:  # a cache written before cases knew their row: the text's index in its source
        if c.row < 0:
            c.row = next(src.texts.index(c.text) for src in sources if src.name == c.source)
    if failed and args.retakes:
        retake(failed, rule)
    elif failed:
        print(f"\n{len(failed)} positives fail the forced rule: --retakes synthesises them again (as a build does)")
    if args.sweep:
        print("\nforced rule, other settings (positives kept / worst control rejected):")
        for window in (2, 3, 4):
            for d, tail in ((d, t) for d in (2.0, 2.5, 3.0) for t in (1.0, 1.5, 2.0, 2.5)):
                r = EarRule(window, d, tail)
                keeps = {k: [forced_fails(c.forced, r) is None for c in cases if c.kind == k] for k in KINDS}
                pos = np.mean(keeps["positive"])
                worst = min((1 - np.mean(v), k) for k, v in keeps.items() if k != "positive" and v)
                print(f"  window {window} deficit {d:3.1f} tail {tail:3.1f}: positives {100 * pos:5.1f} %, worst control "
                      f"{worst[1]} {100 * worst[0]:5.1f} % rejected")
    if args.json:
        print(json.dumps({"figures": figures, "ear_seconds_per_audio_second": {"today": today_s / audio,
                                                                               "forced": new_s / audio}}))


if __name__ == "__main__":
    main()
