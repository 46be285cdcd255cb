"""CER/WER of a predictions file, as the original JaSpeechLLM evaluation computes them (see `jaspeech.cer`).

A predictions file has the columns `id, reference_norm, prediction_norm, reference_raw, prediction_raw`;
only the `*_raw` columns are read, the normalised ones are recomputed. Rows whose reference is empty
after the kotoba-whisper normalisation are dropped from every rate (the published files hold none).
Normalised rates: the kotoba-whisper protocol. Raw rates: `jiwer.cer` / `jiwer.wer` with jiwer's
default transforms on the raw strings of the same rows.
"""
from __future__ import annotations

import csv
from pathlib import Path

from jaspeech.cer import jiwer_cer, jiwer_wer, kotoba_normalize


def read_predictions(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no rows; a predictions file has a header and one row per utterance")
    if not {"reference_raw", "prediction_raw"} <= rows[0].keys():
        raise ValueError(f"{path}: needs the columns reference_raw and prediction_raw "
                         f"(found: {', '.join(rows[0].keys())})")
    for line, row in enumerate(rows, start=2):
        if row["reference_raw"] is None or row["prediction_raw"] is None:
            raise ValueError(f"{path}, line {line}: fewer fields than the header (is the CSV quoted properly?)")
    return rows


def cer_metrics(references_raw: list[str], predictions_raw: list[str]) -> dict:
    """Rates in percent, normalised and raw, over the rows whose normalised reference is non-empty.

    Raises `ValueError` when no such row exists: there is nothing to score.
    """
    if len(references_raw) != len(predictions_raw):
        raise ValueError(f"{len(references_raw)} references but {len(predictions_raw)} predictions")
    refs_norm = [kotoba_normalize(r) for r in references_raw]
    keep = [i for i, r in enumerate(refs_norm) if r]
    if not keep:
        raise ValueError(f"none of the {len(references_raw)} references has any text after normalisation: "
                         "nothing to score (check the reference column)")
    refs_n = [refs_norm[i] for i in keep]
    preds_n = [kotoba_normalize(predictions_raw[i]) for i in keep]
    refs_raw = [references_raw[i] for i in keep]
    preds_raw = [predictions_raw[i] for i in keep]
    # 100 * (edits / total), in this order, as the published metric.jsonl was computed
    return {"cer_norm": 100 * jiwer_cer(refs_n, preds_n), "cer_raw": 100 * jiwer_cer(refs_raw, preds_raw),
            "wer_norm": 100 * jiwer_wer(refs_n, preds_n), "wer_raw": 100 * jiwer_wer(refs_raw, preds_raw),
            "n": len(keep)}


def cer_metrics_from_file(path: Path, model: str | None = None, dataset: str | None = None) -> dict:
    rows = read_predictions(Path(path))
    metrics = cer_metrics([r["reference_raw"] for r in rows], [r["prediction_raw"] for r in rows])
    return {"model": model, "dataset": dataset, "dataset_split": "test", **metrics}
