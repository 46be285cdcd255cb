"""What moves a row's bytes: build the bundled samples under one environment and compare with a reference.

Builds the quick-start sample (`jaspeech-sft-audio` magpie) and the automultiturn sample with the default offline
stack (Kokoro, Whisper base, DNSMOS) in a subprocess whose environment this script sets (`--env VAR=VALUE`:
`CT2_FORCE_CPU_ISA=AVX2`, `ONEDNN_MAX_CPU_ISA`, `MKL_ENABLE_INSTRUCTIONS`, `NPY_DISABLE_CPU_FEATURES`,
`JASPEECH_TTS_THREADS`, ...; `--prepend DIR`: a folder of other package versions put before the venv's, e.g. made
with `pip install --no-deps --target DIR onnxruntime==1.31.1`), and writes per-row digests: each spoken turn's
decoded PCM, transcript, kana-CER and DNSMOS OVRL, and each reject's reason. With `--reference FILE` it prints, per
config, how many rows differ in audio, transcript, scores or decision (kept / rejected), and which.

    python benchmarks/environment.py --label reference --out benchmarks/results/env/reference.json
    python benchmarks/environment.py --label ct2-avx2 --env CT2_FORCE_CPU_ISA=AVX2 \\
        --reference benchmarks/results/env/reference.json --out benchmarks/results/env/ct2-avx2.json
    python benchmarks/environment.py --quick ...   # 4 rows of magpie only: checks the script, measures little
    python benchmarks/environment.py --reference R.json --table A.json B.json   # the table of runs made before

Each full build of a sample takes ~1.5 min on 2 cores. docs/reproducibility.md holds the measured table.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("magpie", "automultiturn")


def row_digests(out: Path, config: str) -> dict[str, dict]:
    """source_index -> what the row became: per spoken turn its PCM hash, transcript and scores; or the reject."""
    import numpy as np
    import pyarrow.parquet as pq
    import soundfile as sf

    rows: dict[str, dict] = {}
    for f in sorted((out / "data" / config).glob("*.parquet")):
        for r in pq.read_table(f).to_pylist():
            turns = []
            for t in r["turns"]:
                if not t.get("audio"):
                    continue
                pcm, sr = sf.read(io.BytesIO(t["audio"]["bytes"]), dtype="int16")
                turns.append({"audio": f"{sr}:{hashlib.sha256(np.ascontiguousarray(pcm).tobytes()).hexdigest()[:16]}",
                              "transcript": t.get("transcript"), "kana_cer": t.get("kana_cer"),
                              "ovrl": (t.get("dnsmos") or {}).get("ovrl")})
            rows[str(r["source_index"])] = {"kept": True, "turns": turns}
    for f in sorted((out / "rejects" / config).glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            rows[str(r["source_index"])] = {"kept": False, "reason": r["reason"], "detail": r["detail"]}
    return dict(sorted(rows.items(), key=lambda kv: int(kv[0])))


def build(config: str, env: dict, limit: int | None) -> tuple[dict, float, dict]:
    with tempfile.TemporaryDirectory(prefix="jaspeech-env-") as tmp:
        out = Path(tmp)
        cmd = [sys.executable, "-m", "jaspeech", "build", "jaspeech-sft-audio", "--config", config, "--input",
               "sample", "--out", str(out), "--quality", "dnsmos", "--quiet"]
        if limit:
            cmd += ["--limit", str(limit)]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - t
        plan = json.loads((out / "manifests" / config / "plan.json").read_text(encoding="utf-8"))
        return row_digests(out, config), seconds, plan["environment"]


def compare(rows: dict, ref: dict) -> dict:
    """Rows whose decision, audio, transcript or scores differ from the reference's."""
    out: dict[str, list[str]] = {"decision": [], "audio": [], "transcript": [], "scores": []}
    for pos in sorted(set(rows) | set(ref), key=int):
        a, b = rows.get(pos), ref.get(pos)
        if a is None or b is None or a["kept"] != b["kept"] or a.get("reason") != b.get("reason"):
            out["decision"].append(pos)
            continue
        if not a["kept"]:
            continue
        ta, tb = a["turns"], b["turns"]
        if [t["audio"] for t in ta] != [t["audio"] for t in tb]:
            out["audio"].append(pos)
        if [t["transcript"] for t in ta] != [t["transcript"] for t in tb]:
            out["transcript"].append(pos)
        if [(t["kana_cer"], t["ovrl"]) for t in ta] != [(t["kana_cer"], t["ovrl"]) for t in tb]:
            out["scores"].append(pos)
    return out


def row(label: str, config: str, rows: dict, seconds: float, reference: dict | None, limit: int | None) -> str:
    """One line of the table: how many rows (and which source positions) differ from the reference."""
    cells = ["(no reference)"] * 4
    if reference and config in reference["configs"]:
        ref = reference["configs"][config]["rows"]
        if limit:
            ref = {k: v for k, v in ref.items() if int(k) < limit}
        cells = [f"{len(v)}" + (f" ({', '.join(v)})" if v else "") for v in compare(rows, ref).values()]
    return f"| {label} | {config} | {len(rows)} | {seconds:.0f} | {' | '.join(cells)} |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", default="run", help="the name of this environment in the printed table")
    ap.add_argument("--env", action="append", default=[], metavar="VAR=VALUE",
                    help="set an environment variable for the builds (repeatable)")
    ap.add_argument("--prepend", action="append", default=[], metavar="DIR",
                    help="a folder of packages put before the venv's on the builds' path (repeatable)")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    ap.add_argument("--limit", type=int, default=None, help="only the first N rows of each sample")
    ap.add_argument("--quick", action="store_true", help="4 rows of magpie only")
    ap.add_argument("--reference", type=Path, default=None, help="a digest file this script wrote before")
    ap.add_argument("--out", type=Path, default=None, help="write this run's digests here")
    ap.add_argument("--table", type=Path, nargs="+", default=None,
                    help="build nothing: print the table of these digest files against --reference")
    args = ap.parse_args(argv)
    if args.quick:
        args.configs, args.limit = ["magpie"], 4

    env = dict(os.environ)
    for pair in args.env:
        name, sep, value = pair.partition("=")
        if not sep:
            ap.error(f"--env takes VAR=VALUE, not {pair!r}")
        env[name] = value
    env["PYTHONPATH"] = os.pathsep.join([*args.prepend, str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    reference = json.loads(args.reference.read_text(encoding="utf-8")) if args.reference else None
    print("| environment | config | rows | seconds | decision differs | audio differs | transcript differs | "
          "scores differ |")
    print("|---|---|---:|---:|---|---|---|---|")
    if args.table:
        for path in args.table:
            run = json.loads(path.read_text(encoding="utf-8"))
            for config, c in run["configs"].items():
                print(row(run["label"], config, c["rows"], c["seconds"], reference, run["limit"]))
        return 0

    result = {"label": args.label, "env": args.env, "prepend": args.prepend, "limit": args.limit, "configs": {}}
    for config in args.configs:
        rows, seconds, environment = build(config, env, args.limit)
        result["configs"][config] = {"rows": rows, "seconds": round(seconds, 1), "environment": environment}
        print(row(args.label, config, rows, seconds, reference, args.limit), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
