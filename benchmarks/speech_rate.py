"""How long the default voices take to say a text: measured Kokoro durations vs the length estimate.

The build skips synthesis of a turn whose estimated length is hopeless (see
`jaspeech.synthesis.text.estimate_seconds`); the measured duration after synthesis is the judge. This
script measures real durations to calibrate that estimate:

- texts: every speakable user turn of the four bundled samples and a quarter of their assistant turns, read sentences from
  JSUT basic5000, Common Voice 8 and ReazonSpeech (the references in tests/data/ja-speech-llm-eval),
  and paragraphs of 3-16 consecutive JSUT sentences (10-90 s of speech);
- voices: a sample user turn is read by the speaker a build gives its row, the other texts by the 20
  profiles in turn (all 20 Kokoro mixes, speeds 0.95-1.1);
- output: one JSON line per text (text, speaker, speed, seconds), appended as it goes, so a rerun with
  the same `--out` resumes;
- report: seconds per character class fitted by relative least squares (the weights `estimate_morae`
  uses, in kana morae), the fitted mora rate overall and per speaker speed, and the error distribution
  of the previous estimate and of the one in use, overall and per length.

    python benchmarks/speech_rate.py --out build/speech_rate.jsonl          # measure (resumes) and report
    python benchmarks/speech_rate.py --out build/speech_rate.jsonl --report  # report only
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from jaspeech.builders import corpus_spec
from jaspeech.builders.sources import SAMPLES_DIR
from jaspeech.synthesis.text import (
    _SENTENCE_END,
    _SMALL_KANA,
    MORAE,
    TextOptions,
    Unspeakable,
    _script,
    character_classes,
    estimate_morae,
    estimate_seconds,
    prepare_for_speech,
)

EVAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "ja-speech-llm-eval"
SAMPLES = (("jaspeech-sft-audio", "magpie"), ("jaspeech-sft-audio", "automultiturn"),
           ("jaspeech-dpo-audio", "hh-rlhf"), ("jaspeech-dpo-audio", "chatbot-arena"))
UNLIMITED = TextOptions(max_seconds=1e9)


def _speakable(text: object) -> str | None:
    try:
        return prepare_for_speech(text, UNLIMITED)
    except Unspeakable:
        return None


def _references(name: str) -> list[str]:
    with open(EVAL / f"step200000.{name}.csv", encoding="utf-8") as f:
        return [r["reference_raw"] for r in csv.DictReader(f)]


def corpus_texts(n_read: int = 50, n_paragraphs: int = 10) -> list[tuple[str, str, str]]:
    """(kind, text, speaker) triples in a fixed order (the same on every run): ~250 texts, ~25 min of speech.

    Sample user turns get the speaker a build assigns them; the other texts take the 20 profiles in turn.
    """
    from jaspeech.builders.sources import source_id_of
    from jaspeech.synthesis.speakers import PROFILES, assign_speaker

    texts: list[tuple[str, str, str]] = []
    assistant: list[str] = []
    for corpus, config in SAMPLES:
        cfg = corpus_spec(corpus).configs[config]
        for position, line in enumerate((SAMPLES_DIR / f"{config}.jsonl").read_text(encoding="utf-8").splitlines()):
            try:
                raw = json.loads(line)
                example = cfg.adapter(raw)
            except Exception:  # the samples hold malformed rows on purpose
                continue
            speaker = assign_speaker(cfg.hub_id, source_id_of(raw, cfg.id_field, position)).name
            for turn in example.turns:
                if (s := _speakable(turn.text)) and len(s) >= 4:
                    if turn.spoken:
                        texts.append(("sample-user", s, speaker))
                    else:
                        assistant.append(s)
    other = [("sample-assistant", s) for s in assistant[::4]]
    jsut = _references("jsut_basic5000")
    other += [("jsut", s) for s in jsut[: 50 * n_read : 50] if _speakable(s)]
    for name in ("common_voice_8_0", "reazonspeech_test"):
        refs = _references(name)
        other += [("cv8" if name.startswith("common") else "reazon", s)
                  for s in refs[7 : 7 + 100 * (n_read // 3) : 100] if _speakable(s) and len(s) >= 8]
    start = 2501
    for k in range(n_paragraphs):
        n = 3 + (k * 5) % 14  # 3..16 sentences
        paragraph = _speakable("".join(jsut[start : start + n]))
        start += n
        if paragraph:
            other.append(("paragraph", paragraph))
    texts += [(kind, t, PROFILES[k % len(PROFILES)].name) for k, (kind, t) in enumerate(other)]
    seen: set[tuple[str, str]] = set()
    return [x for x in texts if not (x[1:] in seen or seen.add(x[1:]))]


def measure(out: Path, texts: list[tuple[str, str, str]]) -> None:
    from jaspeech.synthesis.speakers import speaker_by_name
    from jaspeech.synthesis.tts.kokoro import KokoroTTS

    done = set()
    if out.exists():
        done = {(r["text"], r["speaker"]) for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    todo = [t for t in texts if t[1:] not in done]
    if not todo:
        return
    tts = KokoroTTS()
    out.parent.mkdir(parents=True, exist_ok=True)
    t0, audio = time.perf_counter(), 0.0
    with open(out, "a", encoding="utf-8") as f:
        for n, (kind, text, name) in enumerate(todo, 1):
            speaker = speaker_by_name(name)
            samples, sr = tts.synthesize(text, speaker, 0)
            seconds = len(samples) / sr
            audio += seconds
            f.write(json.dumps({"kind": kind, "text": text, "speaker": name, "speed": speaker.speed,
                                "seconds": round(seconds, 3)}, ensure_ascii=False) + "\n")
            f.flush()
            if n % 20 == 0:
                print(f"{n}/{len(todo)} texts, {audio:.0f} s of speech in {time.perf_counter() - t0:.0f} s", flush=True)


def _pct(errors: np.ndarray) -> str:
    q = np.percentile(errors, [0, 5, 50, 95, 100]) * 100
    return (f"mean {errors.mean() * 100:+6.1f} %  |mean| {np.abs(errors).mean() * 100:4.1f}  min {q[0]:+6.1f}  "
            f"p5 {q[1]:+6.1f}  median {q[2]:+6.1f}  p95 {q[3]:+6.1f}  max {q[4]:+6.1f}")


def previous_estimate(text: str) -> float:
    """The estimate this replaced: kanji 2 morae, digits 1.5, letters 1, every stop or comma a 2-mora pause, 6.5/s."""
    morae = 0.0
    for c in text:
        s = _script(c)
        morae += {"kana": 0.0 if c in _SMALL_KANA else 1.0, "han": 2.0, "latin": 1.0, "hangul": 1.0,
                  "other": 1.0}.get(s, 1.5 if c.isdigit() else 2.0 if c in _SENTENCE_END + "、," else 0.0)
    return morae / 6.5


def report(out: Path) -> None:
    wanted = {t[1:] for t in corpus_texts()}  # the file may hold texts of an older text list
    rows = [r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines()) if (r["text"], r["speaker"]) in wanted]
    seconds = np.array([r["seconds"] for r in rows])
    speed = np.array([r["speed"] for r in rows])
    counts = np.array([list(character_classes(r["text"]).values()) for r in rows], dtype=float)
    # relative least squares: every text counts by its relative error, whatever its length
    per_class, *_ = np.linalg.lstsq(counts / seconds[:, None], np.ones(len(rows)), rcond=None)
    morae = np.array([estimate_morae(r["text"]) for r in rows])
    ratio = morae / seconds

    def rate(sel: np.ndarray) -> float:
        return float((ratio[sel] @ ratio[sel]) / ratio[sel].sum())  # minimises the squared relative errors

    print(f"{len(rows)} texts, {seconds.sum():.0f} s of speech ({seconds.min():.1f}-{seconds.max():.1f} s), "
          f"{len({r['speaker'] for r in rows})} speakers")
    print("fitted seconds per character: " + ", ".join(f"{k} {v:.3f}" for k, v in zip(MORAE, per_class)))
    print("  in kana morae (text.MORAE): " + ", ".join(f"{k} {v / per_class[0]:.2f}" for k, v in zip(MORAE, per_class))
          + f"; {1 / per_class[0]:.2f} morae per second")
    everyone = np.ones(len(rows), bool)
    print(f"fitted rate for estimate_morae: {rate(everyone):.2f} morae per second (per speaker speed: "
          + ", ".join(f"{s:g}: {rate(speed == s):.2f}" for s in sorted(set(speed))) + ")")
    in_use = np.array([estimate_seconds(r["text"]) for r in rows])
    before = np.array([previous_estimate(r["text"]) for r in rows])
    print("relative error of the estimate, (estimate - measured) / measured:")
    print(f"  before (6.5 morae/s, kanji 2):  {_pct(before / seconds - 1)}")
    print(f"  in use ({TextOptions().morae_per_second:g} morae/s):           {_pct(in_use / seconds - 1)}")
    for lo, hi in ((0, 5), (5, 15), (15, 30), (30, 60), (60, 1e9)):
        sel = (seconds >= lo) & (seconds < hi)
        if sel.any():
            print(f"  measured {lo:>2g}-{hi if hi < 1e9 else '':<3} s  n={sel.sum():>3}  in use: "
                  f"{_pct(in_use[sel] / seconds[sel] - 1)}")
    worst = int(np.argmax(in_use / seconds))
    print(f"largest overestimate (in use): {in_use[worst]:.1f} s estimated, {seconds[worst]:.1f} s measured: "
          f"{rows[worst]['text'][:50]!r}...")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("build/speech_rate.jsonl"))
    ap.add_argument("--report", action="store_true", help="only report on the measured file")
    args = ap.parse_args()
    if not args.report:
        texts = corpus_texts()
        print(f"{len(texts)} texts")
        measure(args.out, texts)
    report(args.out)


if __name__ == "__main__":
    main()
