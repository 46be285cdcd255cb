"""Throughput of the offline default stack (kokoro + faster-whisper) on this machine.

Builds N speakable rows (the bundled magpie sample's plain requests, repeated with new ids) once per
worker layout and prints, side by side: audio-hours per wall-hour and the orchestration overhead
(pipeline wall time / time inside TTS+ASR calls, single worker). Targets: >= 2 audio-h per wall-h on
2 cores, overhead <= 5 %.

    python benchmarks/sft_offline.py --rows 24
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

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


def run(rows: int, workers: int, shards: int, tmp: Path) -> dict:
    src = tmp / "input.jsonl"
    if not src.exists():
        src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in speakable_rows(rows)), "utf-8")
    out = tmp / f"out-w{workers}"
    t0 = time.perf_counter()
    s = build(BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input=str(src), out=out,
                           num_shards=shards, workers=workers, quiet=True))
    wall = time.perf_counter() - t0
    return {
        "workers": workers,
        "rows": s["rows"],
        "audio_h": s["audio_hours"],
        "wall_s": wall,
        "audio_h_per_wall_h": s["audio_hours"] * 3600 / wall,
        "overhead": s["wall_seconds"] / (s["tts_seconds"] + s["asr_seconds"]),
        "tts_rtf": s["tts_seconds"] / (s["audio_hours"] * 3600),
        "asr_rtf": s["asr_seconds"] / (s["audio_hours"] * 3600),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=24)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        # warm-up: assemble the Whisper folder and the Kokoro model once, outside the timings
        build(BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input="sample", limit=1,
                           out=Path(d) / "warm", quiet=True))
        results = [run(args.rows, w, max(w, 2), Path(d)) for w in args.workers]
    print(f"{'workers':>7} {'rows':>5} {'audio s':>8} {'wall s':>7} {'audio-h/wall-h':>15} "
          f"{'overhead':>9} {'tts RTF':>8} {'asr RTF':>8}")
    for r in results:
        print(f"{r['workers']:>7} {r['rows']:>5} {r['audio_h'] * 3600:>8.1f} {r['wall_s']:>7.1f} "
              f"{r['audio_h_per_wall_h']:>15.2f} {r['overhead']:>9.3f} {r['tts_rtf']:>8.3f} {r['asr_rtf']:>8.3f}")
    print("targets: audio-h/wall-h >= 2.0 on 2 cores; overhead (wall / time in TTS+ASR, per worker) <= 1.05")


if __name__ == "__main__":
    main()
