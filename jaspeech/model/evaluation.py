"""CER/WER from a predictions file, by the kotoba-whisper short-form protocol (see `jaspeech.cer`).

A predictions file has the columns `id, reference_norm, prediction_norm, reference_raw, prediction_raw`;
only the `*_raw` columns are read, the normalised ones are recomputed.
"""
from __future__ import annotations

import csv
from pathlib import Path

from jaspeech.cer import corpus_rates, kotoba_normalize


def read_predictions(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"reference_raw", "prediction_raw"} <= rows[0].keys():
        raise ValueError(f"{path}: needs the columns reference_raw and prediction_raw")
    return rows


def cer_metrics(references_raw: list[str], predictions_raw: list[str]) -> dict:
    """Rates in percent, raw and normalised; empty references (after normalisation) are dropped from both."""
    refs_norm = [kotoba_normalize(r) for r in references_raw]
    preds_norm = [kotoba_normalize(p) for p in predictions_raw]
    keep = [i for i, r in enumerate(refs_norm) if r]
    norm = corpus_rates([refs_norm[i] for i in keep], [preds_norm[i] for i in keep])
    raw = corpus_rates([references_raw[i] for i in keep], [predictions_raw[i] for i in keep])
    return {"cer_norm": norm.cer, "cer_raw": raw.cer, "wer_norm": norm.wer, "wer_raw": raw.wer, "n": norm.n}


def cer_metrics_from_file(path: Path, model: str | None = None, dataset: str | None = None) -> dict:
    rows = read_predictions(Path(path))
    metrics = cer_metrics([r["reference_raw"] for r in rows], [r["prediction_raw"] for r in rows])
    return {"model": model, "dataset": dataset, "dataset_split": "test", **metrics}
