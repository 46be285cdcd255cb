"""Throughput of the offline default stack (kokoro + faster-whisper + DNSMOS) on this machine.

Builds N speakable rows (the bundled magpie sample's plain requests, repeated with new ids) once per
worker layout and prints, side by side: audio-hours per wall-hour and the orchestration overhead
(pipeline wall time / time inside TTS+ASR calls, single worker). Targets: >= 2 audio-h per wall-h on
2 cores, overhead <= 5 %.

With `--speak both` it also builds the speech-to-speech config (`magpie-s2s`: the instruction in the
user's voice and the response in an assistant voice, split in pieces at sentence ends, scored as one turn). The bundled sample's responses
are short (26 characters on average), while a response of the published corpora is several times its
instruction, so the S2S rows pair each instruction with a response of `--response-chars` characters
(default 420, ~5x the sample instructions' 84) made of the sample's own plain sentences; the printed
per-row seconds and the measured rate give the cost of a full S2S build.

    python benchmarks/sft_offline.py --rows 24
    python benchmarks/sft_offline.py --rows 24 --workers 2 --speak user both --s2s-rows 6
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from jaspeech.builders import corpus_spec
from jaspeech.builders.build import BuildOptions, build
from jaspeech.builders.sources import SAMPLES_DIR
from jaspeech.synthesis.text import Unspeakable, prepare_for_speech


def speakable_rows(n: int) -> list[dict]:
    base = []
    for line in (SAMPLES_DIR / "magpie.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        try:
            conv = row["conversations"]
            prepare_for_speech(conv[0]["content"])
            if conv[0]["role"] == "user" and conv[1]["content"] and conv[0]["content"].isascii() is False:
                base.append(conv)
        except (KeyError, IndexError, TypeError, Unspeakable):
            continue
    return [{"id": f"bench-{i:05d}", "conversations": base[i % len(base)]} for i in range(n)]


def s2s_rows(n: int, response_chars: int) -> list[dict]:
    """Instructions of the sample with long plain responses (the sample's own sentences, joined)."""
    rows = speakable_rows(n)
    sentences = [r["conversations"][0]["content"].strip() for r in speakable_rows(64)]
    sentences = [t for t in sentences if "\n" not in t and "*" not in t]
    sentences = [t if t.endswith(("。", "？", "！")) else t + "。" for t in dict.fromkeys(sentences)]
    out = []
    for i, row in enumerate(rows):
        parts, k = [], i
        while sum(map(len, parts)) < response_chars:
            parts.append(sentences[k % len(sentences)])
            k += 7
        conv = [row["conversations"][0], {"role": "assistant", "content": "".join(parts)}]
        out.append({"id": row["id"], "conversations": conv})
    return out


def run(rows: int, workers: int, shards: int, tmp: Path, speak: str = "user", response_chars: int = 420,
        quality: str = "dnsmos") -> dict:
    src = tmp / f"input-{speak}.jsonl"
    if not src.exists():
        made = speakable_rows(rows) if speak == "user" else s2s_rows(rows, response_chars)
        src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in made), "utf-8")
    out = tmp / f"out-{speak}-w{workers}"
    t0 = time.perf_counter()
    config = corpus_spec("jaspeech-sft-audio").config_for("magpie", speak)
    s = build(BuildOptions(corpus="jaspeech-sft-audio", config=config, input=str(src), out=out,
                           num_shards=shards, workers=workers, quality=quality, quiet=True))
    wall = time.perf_counter() - t0
    return {
        "config": config,
        "workers": workers,
        "row_s": s["audio_hours"] * 3600 / max(1, s["rows"]),
        "rows": s["rows"],
        "audio_h": s["audio_hours"],
        "wall_s": wall,
        "audio_h_per_wall_h": s["audio_hours"] * 3600 / wall,
        # the shard thread's time: TTS, ASR and its wait for the quality stage (which runs beside the next group)
        "overhead": s["wall_seconds"] / (s["tts_seconds"] + s["asr_seconds"] + s["quality_wait_seconds"]),
        "tts_rtf": s["tts_seconds"] / (s["audio_hours"] * 3600),
        "asr_rtf": s["asr_seconds"] / (s["audio_hours"] * 3600),
        "quality_rtf": s["quality_seconds"] / (s["audio_hours"] * 3600),
        # of the shards' wall time: the stage's own time, and the part of it the shard thread waited for
        "quality_share": s["quality_seconds"] / s["wall_seconds"],
        "quality_wait_share": s["quality_wait_seconds"] / s["wall_seconds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=24)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--speak", nargs="+", default=["user"], choices=("user", "both", "assistant"),
                    help="configs to measure: user (magpie), both (magpie-s2s), assistant (magpie-spoken-response)")
    ap.add_argument("--s2s-rows", type=int, default=6, help="rows of the S2S measurement (each ~1 min of speech)")
    ap.add_argument("--response-chars", type=int, default=420)
    ap.add_argument("--quality", default="dnsmos", choices=("dnsmos", "none"), help="the quality stage's MOS model")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        # warm-up: assemble the Whisper folder and the Kokoro model once, outside the timings
        build(BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input="sample", limit=1,
                           out=Path(d) / "warm", quality=args.quality, quiet=True))
        results = [run(args.rows if speak == "user" else args.s2s_rows, w, max(w, 2), Path(d), speak,
                       args.response_chars, args.quality)
                   for speak in args.speak for w in args.workers]
    print(f"{'config':>22} {'workers':>7} {'rows':>5} {'s/row':>6} {'audio s':>8} {'wall s':>7} {'audio-h/wall-h':>15} "
          f"{'overhead':>9} {'tts RTF':>8} {'asr RTF':>8} {'quality RTF':>11} {'quality %':>9} {'waited %':>8}")
    for r in results:
        print(f"{r['config']:>22} {r['workers']:>7} {r['rows']:>5} {r['row_s']:>6.1f} {r['audio_h'] * 3600:>8.1f} "
              f"{r['wall_s']:>7.1f} {r['audio_h_per_wall_h']:>15.2f} {r['overhead']:>9.3f} {r['tts_rtf']:>8.3f} "
              f"{r['asr_rtf']:>8.3f} {r['quality_rtf']:>11.3f} {100 * r['quality_share']:>8.1f}% "
              f"{100 * r['quality_wait_share']:>7.1f}%")
    print("targets: audio-h/wall-h >= 2.0 on 2 cores; overhead (wall / the shard thread's time in TTS, ASR and waiting "
          "for the quality stage, per worker) <= 1.05; quality <= 5 % of wall time (quality %: the stage's own time, "
          "on a helper thread beside the next group; waited %: what the shard thread waited for it)")


if __name__ == "__main__":
    main()
