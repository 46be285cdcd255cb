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
from jaspeech.model.train.data import decode
from jaspeech.model.evaluation import cer_metrics

FIELDS = ["id", "reference_norm", "prediction_norm", "reference_raw", "prediction_raw"]


def make_transcriber(model: str):
    """faster-whisper for a CTranslate2 folder (model.bin), transformers for anything else."""
    path = Path(model)
    if (path / "model.bin").exists():
        from jaspeech.synthesis.asr.faster_whisper import FasterWhisperASR

        return FasterWhisperASR(str(path), beam_size=1)
    config = path / "config.json"
    if config.exists() and json.loads(config.read_text()).get("model_type") == "jaspeech_llm":
        return JaSpeechLLMTranscriber(str(path))
    from jaspeech.synthesis.asr.transformers_whisper import TransformersWhisperASR

    return TransformersWhisperASR(model)


class JaSpeechLLMTranscriber:
    """Japanese ASR with a JaSpeechLLM checkpoint: the `asr_ja` prompt, greedy decoding, batched."""

    def __init__(self, path: str, max_new_tokens: int = 200) -> None:
        import torch

        from jaspeech.model import JaSpeechLLMForConditionalGeneration, JaSpeechLLMProcessor

        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self.model = JaSpeechLLMForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device).eval()
        self.processor = JaSpeechLLMProcessor.from_pretrained(path)
        self.processor.tokenizer.padding_side = "left"  # batched generation continues every prompt at its end
        self.prompt = self.processor.render(self.processor.task_messages("asr_ja"), add_generation_prompt=True)
        self.name, self.device, self.dtype, self.max_new_tokens = f"{path} (JaSpeechLLM)", device, dtype, max_new_tokens

    def transcribe(self, audios):
        inputs = self.processor(text=[self.prompt] * len(audios), audio=list(audios))
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["input_features"] = inputs["input_features"].to(self.dtype)
        tok = self.processor.tokenizer
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        return [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip("/")).strip("_")


def predictions_path(out: Path, model: str, dataset: str, split: str) -> Path:
    return out / f"predictions.{_slug(Path(model).name or model)}.{_slug(dataset)}.{split}.csv"


def evaluate(model: str, dataset: str, out: Path, split: str = "test", config: str | None = None,
             audio_column: str = "audio", text_column: str = "transcription", batch_size: int = 16,
             limit: int | None = None, transcriber=None) -> dict:
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
    transcriber = transcriber or make_transcriber(model)
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
                clip = decode(row[audio_column])
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
    metrics = cer_metrics([r["reference_raw"] for r in rows], [r["prediction_raw"] for r in rows])
    line = {"model": model, "dataset": dataset, "dataset_config": config, "dataset_split": split, **metrics,
            "undecodable": undecodable, "predictions": pred_path.name}
    with open(out / "metric.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return line
