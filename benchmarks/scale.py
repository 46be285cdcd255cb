"""Memory and speed at scale: build 10k and 100k rows with the synthetic `tone` TTS (no ASR).

Each build runs in its own process (one worker, the whole pipeline: plan, duplicate scan, shards,
card) and reports its peak RSS. Target: memory stays flat, peak(100k) <= 1.1 x peak(10k).

    python benchmarks/scale.py --sizes 10000 100000
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from jaspeech.builders.build import BuildOptions, build
t0 = time.perf_counter()
s = build(BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input=sys.argv[1], out=Path(sys.argv[2]),
                       tts="tone", asr="none", quiet=True))
print(json.dumps({"rows": s["rows"], "rejects": s["rejects"], "shards": s["num_shards"], "audio_hours": s["audio_hours"],
                  "seconds": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PROMPTS = ["今日の天気を教えてください。", "おすすめの本は何ですか。", "東京から大阪までの行き方を教えて。",
           "健康に良い朝ごはんを三つ挙げてください。", "猫と犬の違いを説明してください。"]


def make_input(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            row = {"id": f"scale-{i:07d}", "conversations": [
                {"role": "user", "content": f"{PROMPTS[i % len(PROMPTS)]}{i % 97}番"},
                {"role": "assistant", "content": "はい、お答えします。" * (1 + i % 5)}]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as d:
        for n in args.sizes:
            src = Path(d) / f"input-{n}.jsonl"
            make_input(src, n)
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD, str(src), str(Path(d) / f"out-{n}")],
                                 check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["n"] = n
            results.append(r)
            print(f"{n} rows done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(f"{'input rows':>10} {'kept':>8} {'shards':>6} {'seconds':>8} {'rows/s':>8} {'peak RSS MB':>12} {'vs first':>9}")
    for r in results:
        print(f"{r['n']:>10} {r['rows']:>8} {r['shards']:>6} {r['seconds']:>8.1f} {r['n'] / r['seconds']:>8.0f} "
              f"{r['peak_rss_mb']:>12.1f} {r['peak_rss_mb'] / results[0]['peak_rss_mb']:>9.3f}")
    print("target: peak RSS of the largest <= 1.1 x the smallest")


if __name__ == "__main__":
    main()
