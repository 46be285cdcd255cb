"""CER/WER over the published reference predictions: ours (rapidfuzz) vs jiwer, values and time side by side.

Target: under 2 s on this machine for all carried files (ours: normalised + raw rates); raw rates equal
to jiwer's (the original evaluation's library) and to the published metric.jsonl.

    python benchmarks/cer.py [--data DIR]   (default: tests/data/ja-speech-llm-eval in this repository)

jiwer is in the `test` extra; without it only our figures are printed.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from jaspeech.model.eval.predictions import cer_metrics, read_predictions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path,
                    default=Path(__file__).resolve().parents[1] / "tests" / "data" / "ja-speech-llm-eval")
    args = ap.parse_args()
    files = sorted(args.data.glob("*.csv"))
    if not files:
        raise SystemExit(f"no predictions CSV under {args.data}")
    try:
        import jiwer
    except ImportError:
        jiwer = None
    tables = [read_predictions(f) for f in files]
    ours_s = jiwer_s = 0.0
    pairs = 0
    for f, rows in zip(files, tables):
        refs, preds = [r["reference_raw"] for r in rows], [r["prediction_raw"] for r in rows]
        t0 = time.perf_counter()
        m = cer_metrics(refs, preds)
        ours_s += time.perf_counter() - t0
        pairs += len(rows)
        line = f"{f.name:40s} n={m['n']:5d} ours: cer_raw={m['cer_raw']:.4f} wer_raw={m['wer_raw']:.4f}"
        if jiwer is not None:
            t0 = time.perf_counter()
            j_cer, j_wer = 100 * jiwer.cer(refs, preds), 100 * jiwer.wer(refs, preds)
            jiwer_s += time.perf_counter() - t0
            line += f" | jiwer: cer_raw={j_cer:.4f} wer_raw={j_wer:.4f} (max diff {max(abs(j_cer - m['cer_raw']), abs(j_wer - m['wer_raw'])):.1e})"
        print(line)
    print(f"{pairs} pairs: ours {ours_s:.3f} s (normalised + raw CER/WER; target < 2 s)"
          + (f", jiwer {jiwer_s:.3f} s (raw CER/WER only)" if jiwer is not None else ""))


if __name__ == "__main__":
    main()
