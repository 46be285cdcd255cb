"""CER over the published reference predictions (14,746 pairs): normalisation + corpus rates, timed.

Target: under 2 s on this machine for all three files.

    python benchmarks/cer.py [--data DIR]   (default: tests/data/ja-speech-llm-eval in this repository)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from jaspeech.model.evaluation import cer_metrics, read_predictions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path,
                    default=Path(__file__).resolve().parents[1] / "tests" / "data" / "ja-speech-llm-eval")
    args = ap.parse_args()
    files = sorted(args.data.glob("step200000.*.csv"))
    if not files:
        raise SystemExit(f"no step200000.*.csv predictions under {args.data}")
    tables = [read_predictions(f) for f in files]
    t0 = time.perf_counter()
    pairs = 0
    for f, rows in zip(files, tables):
        m = cer_metrics([r["reference_raw"] for r in rows], [r["prediction_raw"] for r in rows])
        pairs += len(rows)
        print(f"{f.name:40s} n={m['n']:5d} cer_norm={m['cer_norm']:.4f} cer_raw={m['cer_raw']:.4f}")
    print(f"{pairs} pairs in {time.perf_counter() - t0:.3f} s (target < 2 s)")


if __name__ == "__main__":
    main()
