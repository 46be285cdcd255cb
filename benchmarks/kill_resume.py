"""Kill a multi-worker build with SIGKILL at random moments, resume it, and compare with a clean build.

Uses the fast `openjtalk` backend (no ASR). Checks: same row ids, same audio bytes and speakers, no
duplicates, every input row kept or rejected exactly once, the same published files, no `.partial`
file left. Exits 1 if any check fails.

    python benchmarks/kill_resume.py --rows 400 --kills 5 --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq


def make_input(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            if i % 53 == 7:
                f.write("{broken line\n")  # rejects must survive kills too
                continue
            row = {"id": f"k{i:05d}", "conversations": [
                {"role": "user", "content": f"{i}番目の質問です。今日の天気を教えてください。"},
                {"role": "assistant", "content": "晴れです。"}]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def command(out: Path, input_path: Path, shards: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "jaspeech", "build", "jaspeech-sft-audio", "--config", "magpie", "--input",
            str(input_path), "--out", str(out), "--tts", "openjtalk", "--asr", "none", "--num-shards",
            str(shards), "--workers", str(workers), "--quiet"]


def contents(out: Path) -> tuple[dict, list[int], set[str]]:
    rows: dict[str, tuple] = {}
    positions: list[int] = []
    for f in sorted((out / "data" / "magpie").glob("*.parquet")):
        for r in pq.read_table(f, columns=["id", "speaker", "source_index", "turns"]).to_pylist():
            if r["id"] in rows:
                raise SystemExit(f"duplicate row {r['id']}")
            rows[r["id"]] = (r["speaker"], r["turns"][0]["audio"]["bytes"])
            positions.append(r["source_index"])
    for f in sorted((out / "rejects" / "magpie").glob("*.jsonl")):
        positions += [json.loads(line)["source_index"] for line in f.read_text(encoding="utf-8").splitlines()]
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    return rows, positions, files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=400)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        make_input(tmp / "input.jsonl", args.rows)
        reference, resumed = tmp / "reference", tmp / "resumed"
        t0 = time.perf_counter()
        subprocess.run(command(reference, tmp / "input.jsonl", args.shards, args.workers), check=True,
                       stdout=subprocess.DEVNULL)
        clean_s = time.perf_counter() - t0
        killed = 0
        progress: list[int] = []
        per_shard = clean_s / args.shards
        manifests = resumed / "manifests" / "magpie"
        for k in range(args.kills):
            # kill at a random moment inside what is left: once a random number of further shards is
            # complete, plus a random part of a shard's time (a time alone misses when the load changes)
            done = progress[-1] if progress else 0
            target = rng.randint(done, max(done, args.shards - 3))
            extra = rng.uniform(0.0, 0.5) * per_shard
            proc = subprocess.Popen(command(resumed, tmp / "input.jsonl", args.shards, args.workers),
                                    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t_start = time.perf_counter()
            while proc.poll() is None and len(list(manifests.glob("train-*.json"))) < target:
                time.sleep(0.05)
            time.sleep(extra)
            alive = proc.poll() is None
            if alive:
                os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the driver and its workers
                killed += 1
            proc.wait()
            done = len(list(manifests.glob("train-*.json")))
            progress.append(done)
            print(f"run {k + 1}: {'killed' if alive else 'finished'} after {time.perf_counter() - t_start:.1f} s, "
                  f"{done}/{args.shards} shards complete")
        subprocess.run(command(resumed, tmp / "input.jsonl", args.shards, args.workers), check=True,
                       stdout=subprocess.DEVNULL)
        ref_rows, ref_pos, ref_files = contents(reference)
        res_rows, res_pos, res_files = contents(resumed)
        checks = {
            "same ids, speakers and audio bytes": res_rows == ref_rows,
            "every input row exactly once": sorted(res_pos) == list(range(args.rows)),
            "same published files": res_files == ref_files,
            "no partial files": not any(f.endswith(".partial") for f in res_files),
            f"killed {args.kills} times": killed == args.kills,
            "some kills hit a partly built corpus": any(0 < n < args.shards for n in progress),
        }
        for name, ok in checks.items():
            print(f"{'ok  ' if ok else 'FAIL'} {name}")
        print(f"{len(res_rows)} rows kept, {args.rows - len(res_rows)} rejected; clean build {clean_s:.1f} s")
        return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
