"""`jaspeech eval asr`: transcribe a dataset with a model and score it by the kotoba-whisper protocol.

The model is a JaSpeechLLM checkpoint (`model_type` jaspeech_llm), any transformers Whisper checkpoint
(hub id or folder), or a CTranslate2 Whisper folder (faster-whisper). The dataset is read with
`datasets.load_dataset` (hub id or local folder), audio as raw bytes decoded with soundfile, so an
undecodable clip is skipped with a count instead of stopping the run. Predictions are appended per
batch to the predictions file, so a rerun resumes where it stopped.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path


from jaspeech.cer import kotoba_normalize
from jaspeech.model.eval.checkpoint import is_jaspeech_checkpoint, load_checkpoint
from jaspeech.model.eval.predictions import cer_metrics
from jaspeech.synthesis.audio import decode_audio_value

FIELDS = ["id", "reference_norm", "prediction_norm", "reference_raw", "prediction_raw"]


def make_transcriber(model: str, max_new_tokens: int = 200):
    """faster-whisper for a CTranslate2 folder (model.bin), JaSpeechLLM for its checkpoints (at most
    `max_new_tokens` per clip), else transformers."""
    path = Path(model)
    if (path / "model.bin").exists():
        from jaspeech.synthesis.asr.faster_whisper import FasterWhisperASR

        return FasterWhisperASR(str(path), beam_size=1)
    if is_jaspeech_checkpoint(path):
        return JaSpeechLLMTranscriber(str(path), max_new_tokens=max_new_tokens)
    from jaspeech.synthesis.asr.transformers_whisper import TransformersWhisperASR

    return TransformersWhisperASR(model)


class JaSpeechLLMTranscriber:
    """Japanese ASR with a JaSpeechLLM checkpoint: the `asr_ja` prompt, greedy decoding, batched."""

    def __init__(self, path: str, max_new_tokens: int = 200) -> None:
        self.checkpoint = load_checkpoint(path)
        self.prompt = self.checkpoint.prompt("asr_ja")
        self.name, self.max_new_tokens = f"{path} (JaSpeechLLM)", max_new_tokens

    def transcribe(self, audios):
        return self.checkpoint.generate(self.prompt, list(audios), self.max_new_tokens)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip("/")).strip("_")


def predictions_path(out: Path, model: str, dataset: str, split: str) -> Path:
    return out / f"predictions.{_slug(Path(model).name or model)}.{_slug(dataset)}.{split}.csv"


def evaluate(model: str, dataset: str, out: Path, split: str = "test", config: str | None = None,
             audio_column: str = "audio", text_column: str = "transcription", batch_size: int = 16,
             limit: int | None = None, transcriber=None, max_new_tokens: int = 200) -> dict:
    import datasets

    out.mkdir(parents=True, exist_ok=True)
    ds = datasets.load_dataset(dataset, config, split=split)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    for column in (audio_column, text_column):
        if column not in ds.column_names:
            raise ValueError(f"{dataset} has no column {column!r}; columns: {', '.join(ds.column_names)}")
    ds = ds.cast_column(audio_column, datasets.Audio(decode=False))
    pred_path = predictions_path(out, model, dataset, split)
    done: set[str] = set()
    if pred_path.exists():
        with open(pred_path, encoding="utf-8", newline="") as f:
            done = {r["id"] for r in csv.DictReader(f)}
    transcriber = transcriber or make_transcriber(model, max_new_tokens)
    undecodable = 0
    new_file = not pred_path.exists()
    with open(pred_path, "a", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        batch: list[tuple[str, str, tuple]] = []

        def flush() -> None:
            texts = transcriber.transcribe([b[2] for b in batch])
            for (rid, ref, _), hyp in zip(batch, texts):
                writer.writerow({"id": rid, "reference_norm": kotoba_normalize(ref), "prediction_norm":
                                 kotoba_normalize(hyp), "reference_raw": ref, "prediction_raw": hyp})
            f.flush()
            batch.clear()

        for i, row in enumerate(ds):
            rid = str(row.get("id", i)) if "id" in ds.column_names else str(i)
            if rid in done:
                continue
            try:
                clip = decode_audio_value(row[audio_column])
            except Exception:
                undecodable += 1
                continue
            batch.append((rid, row[text_column] or "", clip))
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    with open(pred_path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"no clip of {dataset} ({split}) could be transcribed ({undecodable} undecodable): "
                         f"check --audio-column {audio_column!r} and that the audio decodes")
    metrics = cer_metrics([r["reference_raw"] for r in rows], [r["prediction_raw"] for r in rows])
    line = {"model": model, "dataset": dataset, "dataset_config": config, "dataset_split": split, **metrics,
            "undecodable": undecodable, "predictions": pred_path.name}
    with open(out / "metric.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return line
