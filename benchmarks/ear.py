"""The round trip's ear: rows rejected with one listening vs with a second one, and what it costs.

Builds the bundled samples (magpie, automultiturn, hh-rlhf, chatbot-arena) and any `--input` through
the real pipeline (`RowBuilder.prepare`, then `finish` in groups of 16 rows, as a build does) with the
default stack (Kokoro TTS, Whisper base int8 through faster-whisper), and prints side by side:

- per config: rows that reached the round trip, rows a single (greedy) listening rejects, rows still
  rejected after the second listening of the failed turns (beam search over the kept encoder output),
  and ASR seconds for one listening vs both;
- every turn the first listening failed: its text, both transcripts, their readings (what kana-CER
  compares) and kana-CER, so a person can judge whether the voice or the ear was wrong;
- Whisper base's corpus-level CER on this synthetic speech (kotoba-whisper protocol, the one behind the
  published ~29 % on Common Voice 8 ja) and kana-CER, first listening, all spoken turns.

    python benchmarks/ear.py                                          # the four bundled samples
    python benchmarks/ear.py --input rows.jsonl:jaspeech-sft-audio:magpie --no-samples
    python benchmarks/ear.py --audio-cache build/ear-audio.pkl        # keep the synthesis for reruns
    python benchmarks/ear.py --audio-cache build/ear-audio.pkl --strong-beam 5   # another second listening

Timings depend on the machine's load; ASR seconds of both columns come from the same run.
"""
from __future__ import annotations

import argparse
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

from jaspeech.builders import corpus_spec
from jaspeech.builders.plan import DEFAULT_GROUP_ROWS as GROUP_ROWS
from jaspeech.builders.pipeline import RowBuilder, SynthesisOptions
from jaspeech.builders.schema import RowReject
from jaspeech.builders.sources import InputSource, source_id_of
from jaspeech.cer import corpus_rates, kotoba_normalize
from jaspeech.synthesis.roundtrip import kana_reading, score_turn

SAMPLES = (("jaspeech-sft-audio", "magpie"), ("jaspeech-sft-audio", "automultiturn"),
           ("jaspeech-dpo-audio", "hh-rlhf"), ("jaspeech-dpo-audio", "chatbot-arena"))


class RecordingEar:
    """Passes every call to the real backend and keeps each clip's transcript per listening."""

    def __init__(self, asr):
        self.asr, self.name = asr, asr.name
        self.heard: dict[tuple[int, bool], str] = {}  # (id of the samples array, strong) -> transcript

    def transcribe(self, audios, strong=False):
        out = self.asr.transcribe(audios, strong=strong)
        for (samples, _), text in zip(audios, out):
            self.heard[(id(samples), strong)] = text
        return out


@dataclass
class Tally:
    config: str
    rows: int = 0
    round_trip: int = 0
    rejected_one: int = 0
    rejected_two: int = 0
    asr_one: float = 0.0
    asr_two: float = 0.0
    failed_turns: list[dict] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    first: list[str] = field(default_factory=list)


def synthesize(builder: RowBuilder, source: InputSource, config, cache: dict, key: str) -> tuple[list, int]:
    """The rows' `Pending` (TTS done), from the cache when it holds this config."""
    if key in cache:
        return cache[key]
    pending, n = [], 0
    for position, raw in source.iter_rows():
        n += 1
        try:
            pending.append(builder.prepare(position, raw, source_id_of(raw, config.id_field, position)))
        except RowReject:
            pass
    cache[key] = (pending, n)
    return pending, n


def run(corpus: str, config_name: str, input_spec: str, tts, asr, cache: dict) -> Tally:
    spec = corpus_spec(corpus)
    config = spec.configs[config_name]
    ear = RecordingEar(asr)
    builder = RowBuilder(spec, config, tts, ear, SynthesisOptions())
    pending, n = synthesize(builder, InputSource(input_spec, config_name, config.hub_id), config, cache,
                            f"{input_spec}|{corpus}|{config_name}")
    tally = Tally(f"{config_name}" + ("" if input_spec == "sample" else f" ({Path(input_spec).name})"), rows=n,
                  round_trip=len(pending))
    for start in range(0, len(pending), GROUP_ROWS):
        group = pending[start : start + GROUP_ROWS]
        for p, result in zip(group, builder.finish(group)):
            failed = False
            for i, (samples, _) in sorted(p.audios.items()):
                first = ear.heard[(id(samples), False)]
                tally.texts.append(p.texts[i])
                tally.first.append(first)
                s1 = score_turn(p.texts[i], first)
                if (id(samples), True) in ear.heard:
                    failed = True
                    second = ear.heard[(id(samples), True)]
                    s2 = score_turn(p.texts[i], second)
                    tally.failed_turns.append({"row": p.position, "turn": i, "text": p.texts[i], "first": first,
                                               "first_kana_cer": s1.kana_cer, "second": second,
                                               "second_kana_cer": s2.kana_cer})
            tally.rejected_one += failed
            tally.rejected_two += isinstance(result, RowReject) and result.reason == "roundtrip"
    tally.asr_two = builder.timers.asr
    tally.asr_one = builder.timers.asr - builder.timers.asr_second
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", action="append", default=[], metavar="PATH:CORPUS:CONFIG",
                    help="another input file in a source's schema, e.g. rows.jsonl:jaspeech-sft-audio:magpie")
    ap.add_argument("--no-samples", action="store_true", help="only the --input files")
    ap.add_argument("--audio-cache", type=Path, help="pickle of the synthesised rows, written once and reused")
    ap.add_argument("--strong-beam", type=int, help="beam size of the second listening (default: the backend's, 10)")
    args = ap.parse_args()

    from jaspeech.synthesis.asr.faster_whisper import FasterWhisperASR
    from jaspeech.synthesis.tts import make_tts

    tts = make_tts("kokoro")
    asr = FasterWhisperASR() if args.strong_beam is None else FasterWhisperASR(strong_beam_size=args.strong_beam)
    cache = pickle.loads(args.audio_cache.read_bytes()) if args.audio_cache and args.audio_cache.exists() else {}
    jobs = [] if args.no_samples else [(corpus, config, "sample") for corpus, config in SAMPLES]
    for item in args.input:
        path, corpus, config = item.rsplit(":", 2)
        jobs.append((corpus, config, path))
    t0 = time.perf_counter()
    tallies = [run(corpus, config, source, tts, asr, cache) for corpus, config, source in jobs]
    if args.audio_cache:
        args.audio_cache.parent.mkdir(parents=True, exist_ok=True)
        args.audio_cache.write_bytes(pickle.dumps(cache))

    print(f"\n{'config':<24} {'rows':>5} {'round trip':>10} {'rejected':>9} {'rejected':>9} "
          f"{'ASR s':>8} {'ASR s':>8} {'extra':>7}")
    print(f"{'':<24} {'':>5} {'':>10} {'1 pass':>9} {'2 passes':>9} {'1 pass':>8} {'2 passes':>8} {'ASR':>7}")
    total = Tally("all")
    for t in tallies + [total]:
        if t is total:
            for u in tallies:
                for k in ("rows", "round_trip", "rejected_one", "rejected_two", "asr_one", "asr_two"):
                    setattr(total, k, getattr(total, k) + getattr(u, k))
                total.texts += u.texts
                total.first += u.first
        extra = (t.asr_two / t.asr_one - 1) * 100 if t.asr_one else 0.0
        print(f"{t.config:<24} {t.rows:>5} {t.round_trip:>10} {t.rejected_one:>9} {t.rejected_two:>9} "
              f"{t.asr_one:>8.1f} {t.asr_two:>8.1f} {extra:>6.1f}%")

    print("\nTurns the first listening failed (kana-CER first -> second; kept if the second is within the threshold):")
    for t in tallies:
        for f in t.failed_turns:
            verdict = "kept" if f["second_kana_cer"] <= SynthesisOptions().max_kana_cer else "rejected"
            print(f"- {t.config} row {f['row']} turn {f['turn']}: {f['first_kana_cer']:.3f} -> "
                  f"{f['second_kana_cer']:.3f} {verdict}")
            for label, text in (("text", f["text"]), ("first", f["first"]), ("second", f["second"])):
                print(f"    {label + ':':<8}{text}\n    {'':<8}{kana_reading(text)}")

    chars = corpus_rates([kotoba_normalize(x) for x in total.texts], [kotoba_normalize(x) for x in total.first])
    kana = corpus_rates([kana_reading(x) for x in total.texts], [kana_reading(x) for x in total.first])
    print(f"\nWhisper base greedy on this synthetic speech, {chars.n} spoken turns: CER {chars.cer:.1f} % "
          f"(kotoba-whisper protocol), kana-CER {kana.cer:.1f} %")
    print(f"wall {time.perf_counter() - t0:.0f} s (timings under whatever load the machine had)")


if __name__ == "__main__":
    main()
