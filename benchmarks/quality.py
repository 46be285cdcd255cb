"""The quality stage on the bundled samples' Kokoro clips: windowing, cost and what each threshold would drop.

Builds the four bundled samples with Kokoro (`--asr none --quality none`: only the clips are needed) into a
temporary folder, or reads builds given with `--builds DIR ...`, then over every kept spoken turn:

1. scores each clip with both DNSMOS windowings, `speechmos` (the package's own 1 s hop, tiled short clips)
   and `cover` (the fewest 9.01 s windows that cover the clip), and prints how far apart the scores are and
   what each costs (windows, seconds, in the same run);
2. prints the share of turns each `--min-dnsmos` / `--max-silence` threshold would reject, and the lowest-
   scored turns (config, row, OVRL, text) to open in `jaspeech view` (`#rows?ovrl_max=...&sort=ovrl`).

    python benchmarks/quality.py                       # builds the samples first (~15 min on 2 cores)
    python benchmarks/quality.py --builds build/jaspeech-sft-audio build/jaspeech-dpo-audio
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from jaspeech.builders.build import BuildOptions, build
from jaspeech.synthesis.audio import decode_audio
from jaspeech.synthesis.quality import signal_checks
from jaspeech.synthesis.quality.dnsmos import DNSMOS, DNSMOS_FIELDS

SAMPLES = [("jaspeech-sft-audio", "magpie"), ("jaspeech-sft-audio", "automultiturn"),
           ("jaspeech-dpo-audio", "hh-rlhf"), ("jaspeech-dpo-audio", "chatbot-arena")]


def clips_of(folders: list[Path]) -> list[dict]:
    """Every spoken turn of every kept row: config, row id, turn, text, decoded audio."""
    out = []
    for folder in folders:
        for shard in sorted(folder.glob("data/*/*.parquet")):
            for row in pq.read_table(shard, columns=["id", "turns"]).to_pylist():
                for i, t in enumerate(row["turns"]):
                    if t["audio"] is not None:
                        out.append({"config": shard.parent.name, "id": row["id"], "turn": i, "text": t["text"],
                                    "audio": decode_audio(t["audio"]["bytes"])})
    return out


def score(scorer: DNSMOS, clips: list[dict], batch_clips: int = 16) -> tuple[np.ndarray, int, float]:
    """[clips, 4] scores, windows run, seconds, scoring `batch_clips` clips per call as a build's group does."""
    t0, rows, windows = time.perf_counter(), [], 0
    for lo in range(0, len(clips), batch_clips):
        group = [c["audio"] for c in clips[lo:lo + batch_clips]]
        windows += sum(len(scorer.clip_windows(x, sr)) for x, sr in group)
        rows += [[s[k] for k in DNSMOS_FIELDS] for s in scorer.score(group)]
    return np.asarray(rows), windows, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--builds", type=Path, nargs="*", help="built folders (default: build the samples with Kokoro)")
    ap.add_argument("--lowest", type=int, default=12, help="lowest-OVRL turns to list")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folders = args.builds
        if not folders:
            folders = []
            for corpus, config in SAMPLES:
                out = Path(d) / corpus
                build(BuildOptions(corpus=corpus, config=config, input="sample", out=out, asr="none",
                                   quality="none", quiet=True))
                folders.append(out)
            folders = list(dict.fromkeys(folders))
        clips = clips_of(folders)
    seconds = np.asarray([len(c["audio"][0]) / c["audio"][1] for c in clips])
    print(f"{len(clips)} spoken turns, {seconds.sum():.1f} s of speech (median {np.median(seconds):.1f} s, "
          f"max {seconds.max():.1f} s)")

    cover, w_cover, t_cover = score(DNSMOS(windows="cover"), clips)
    slide, w_slide, t_slide = score(DNSMOS(windows="speechmos"), clips)
    print("\n| windowing | windows | seconds | s per window | RTF |\n|---|---:|---:|---:|---:|")
    for name, w, t in (("speechmos (1 s hop)", w_slide, t_slide), ("cover", w_cover, t_cover)):
        print(f"| {name} | {w} | {t:.1f} | {t / w:.3f} | {t / seconds.sum():.3f} |")
    diff = cover - slide
    print("\n| score | mean speechmos | mean cover | mean abs diff | max abs diff | Pearson r | same side of 3.0 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for k, name in enumerate(DNSMOS_FIELDS):
        same = np.mean((cover[:, k] >= 3.0) == (slide[:, k] >= 3.0))
        r = np.corrcoef(cover[:, k], slide[:, k])[0, 1] if len(clips) > 1 else float("nan")
        print(f"| {name} | {slide[:, k].mean():.3f} | {cover[:, k].mean():.3f} | {np.abs(diff[:, k]).mean():.3f} | "
              f"{np.abs(diff[:, k]).max():.3f} | {r:.3f} | {100 * same:.1f} % |")
    long = seconds > 9.01
    if long.any():
        print(f"clips over 9.01 s ({long.sum()}): mean abs OVRL diff {np.abs(diff[long, 2]).mean():.3f}; "
              f"under: {np.abs(diff[~long, 2]).mean():.3f}")

    ovrl = cover[:, 2]
    print("\n| --min-dnsmos | turns rejected | share |\n|---:|---:|---:|")
    for bound in (2.5, 2.8, 3.0, 3.2, 3.5):
        print(f"| {bound:g} | {int((ovrl < bound).sum())} | {100 * np.mean(ovrl < bound):.1f} % |")
    signals = [signal_checks(*c["audio"]) for c in clips]
    worst = np.asarray([max(s["leading_silence"], s["trailing_silence"], s["longest_silence"]) for s in signals])
    print("\n| --max-silence s | turns rejected | share |\n|---:|---:|---:|")
    for bound in (0.5, 0.75, 1.0, 1.5, 2.0):
        print(f"| {bound:g} | {int((worst > bound).sum())} | {100 * np.mean(worst > bound):.1f} % |")
    for key in ("leading_silence", "trailing_silence", "longest_silence", "clipping", "peak", "rms_db"):
        v = np.asarray([s[key] for s in signals])
        print(f"{key}: median {np.median(v):.3f}, p95 {np.percentile(v, 95):.3f}, max {v.max():.3f}")
    print("\nlowest OVRL (cover windows): config, id, turn, seconds, OVRL, SIG, BAK, text")
    for k in np.argsort(ovrl)[: args.lowest]:
        c = clips[k]
        print(f"  {c['config']} {c['id']} t{c['turn']} {seconds[k]:.1f}s OVRL {ovrl[k]:.2f} SIG {cover[k, 0]:.2f} "
              f"BAK {cover[k, 1]:.2f} {c['text'][:60]!r}")
    print("\nby config: " + ", ".join(f"{name} mean OVRL {ovrl[[c['config'] == name for c in clips]].mean():.2f}"
                                      for name in dict.fromkeys(c["config"] for c in clips)))


if __name__ == "__main__":
    main()
