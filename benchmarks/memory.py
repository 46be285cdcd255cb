"""Peak resident memory of a build worker on the offline stack (kokoro + faster-whisper base + DNSMOS).

Each case is a fresh `jaspeech build` process (one worker, one shard), so the peak its shard manifest records
(`peak_rss_mb`, the process's ru_maxrss) is the build's own: models, one group's audio and whatever the stages keep.
Cases: one row (the models alone, nearly), 8 short rows (the quick-start build of the bundled magpie sample) and
30 seven-turn dialogues (user / assistant alternating, ending on the user, spoken with --trailing-user speak: four
spoken turns each, the heaviest shape a dialogue corpus asks for). Printed beside the target (<= 3 GiB per offline
worker) and the figures issue 30 measured before the change (2.0 GB for 8 rows, 5.6 GB for 30 dialogues).

    python benchmarks/memory.py            # the full cases (~10-20 min on 2 cores)
    python benchmarks/memory.py --quick    # 1 row, 2 short rows, 3 dialogues
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jaspeech.builders.sources import SAMPLES_DIR

TARGET_MB = 3 * 1024
BEFORE_MB = {"8 short rows": 2000, "30 seven-turn dialogues": 5600}  # issue 30, measured before this benchmark


def sentences(n: int) -> list[str]:
    """Plain Japanese sentences of the bundled magpie sample (its first user turns that are one line)."""
    out = []
    for line in (SAMPLES_DIR / "magpie.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            text = json.loads(line)["conversations"][0]["content"].strip()
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            continue
        if text and "\n" not in text and "*" not in text and not text.isascii() and len(text) < 80:
            out.append(text)
    return [out[i % len(out)] for i in range(n)]


def dialogues(n: int, turns: int = 7) -> list[dict]:
    said = sentences(n * turns)
    return [{"id": f"d{i:03d}", "messages": [
        {"role": "user" if t % 2 == 0 else "assistant", "content": said[i * turns + t]} for t in range(turns)]}
        for i in range(n)]


def measure(name: str, args: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "jaspeech", "build", *args, "--out", str(out), "--quiet", "--workers", "1"]
    t0 = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"{name}: {' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    manifests = [json.loads(p.read_text(encoding="utf-8")) for p in out.glob("manifests/*/train-*.json")]
    return {"case": name, "rows": summary["rows"], "input_rows": summary["input_rows"],
            "audio_s": summary["audio_hours"] * 3600, "wall_s": wall,
            "peak_rss_mb": max(m["peak_rss_mb"] for m in manifests)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 row, 2 short rows and 3 dialogues (a code-path check)")
    ap.add_argument("--group-rows", type=int, default=None, help="rows per group (default: the build's, 16)")
    ap.add_argument("--only", choices=("models", "short", "dialogues"), nargs="+", default=None,
                    help="measure only these cases")
    ap.add_argument("--build-flags", default="",
                    help="more `jaspeech build` flags for every case, e.g. '--quality none'")
    args = ap.parse_args()
    short, n_dialogues = (2, 3) if args.quick else (8, 30)
    group = (["--group-rows", str(args.group_rows)] if args.group_rows else []) + args.build_flags.split()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "dialogues.jsonl"
        src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in dialogues(n_dialogues)), "utf-8")
        sft = ["jaspeech-sft-audio", "--config", "magpie", "--input", "sample", *group]
        cases = [
            ("1 row (models)", [*sft, "--limit", "1"]),
            (f"{short} short rows", [*sft, "--limit", str(short)]),
            (f"{n_dialogues} seven-turn dialogues", ["spoken", "--config", "daily", "--input", str(src), "--license",
                                                    "cc-by-4.0", "--trailing-user", "speak", *group]),
        ]
        keys = ("models", "short", "dialogues")
        results = [measure(name, flags, tmp / f"out{i}") for i, (name, flags) in enumerate(cases)
                   if args.only is None or keys[i] in args.only]
    print(f"{'case':>26} {'rows':>9} {'audio s':>8} {'wall s':>7} {'peak RSS MB':>12} {'before MB':>10} "
          f"{'target MB':>10}")
    for r in results:
        before = BEFORE_MB.get(r["case"])
        print(f"{r['case']:>26} {r['rows']:>4}/{r['input_rows']:<4} {r['audio_s']:>8.1f} {r['wall_s']:>7.1f} "
              f"{r['peak_rss_mb']:>12.0f} {before if before else '-':>10} {TARGET_MB:>10}")
    worst = max(r["peak_rss_mb"] for r in results)
    print(f"{'ok' if worst <= TARGET_MB else 'FAIL'}: the largest peak, {worst:.0f} MB, against the target of "
          f"{TARGET_MB} MB per offline worker" + (" (quick mode: a code-path check)" if args.quick else ""))


if __name__ == "__main__":
    main()
