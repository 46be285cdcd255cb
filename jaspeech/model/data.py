"""Training data: readers for our corpora and ASR corpora, duration limits, weighted mixing.

Every reader yields `Example`s. Audio is read as raw bytes (`Audio(decode=False)`) and decoded with
soundfile, so an undecodable clip is skipped and counted (`Counters`) instead of killing the run.

Source kinds (`kind` in a recipe's `data.sources`):
- `asr`: any ASR set with an audio and a text column (`japanese-asr/whisper_transcriptions.reazonspeech.all`
  uses `audio`/`transcription`; Common Voice uses `audio`/`sentence`); task `asr_ja` or `asr_en`.
- `jaspeech-sft`: our SFT corpus; task `instruction` (spoken turns -> last response) or `asr_ja`
  (each spoken turn with its text).
- `jaspeech-dpo`: our DPO corpus; spoken prompt turns with `chosen` / `rejected`.
- `fsd50k`: our caption corpus; task `caption`.
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from jaspeech.synthesis.audio import decode_audio


@dataclass
class Example:
    task: str
    turns: list[dict]  # [{role, text, spoken}] for instruction/dpo; empty for single-clip tasks
    audio: list[tuple[np.ndarray, int]]  # one clip per spoken turn / per placeholder, in order
    response: str | None = None
    chosen: str | None = None
    rejected: str | None = None


@dataclass
class Counters:
    undecodable: int = 0
    too_long: int = 0
    used: int = 0
    by_source: dict = field(default_factory=dict)


def decode(audio: dict | None) -> tuple[np.ndarray, int]:
    """An `Audio(decode=False)` value -> (mono float32 samples, rate); raises on missing or empty audio."""
    if not audio or not audio.get("bytes"):
        raise ValueError("no audio bytes")
    samples, sr = decode_audio(audio["bytes"])
    if samples.size == 0:
        raise ValueError("empty audio")
    return samples, sr


def _load(spec: dict):
    import datasets

    ds = datasets.load_dataset(spec["path"], spec.get("config"), split=spec.get("split", "train"),
                               streaming=spec.get("streaming", False))
    features = ds.features
    if "turns" in features:
        turn = features["turns"].feature
        ds = ds.cast_column("turns", datasets.List({**turn, "audio": datasets.Audio(decode=False)}))
    audio_column = spec.get("audio_column", "audio")
    if audio_column in features and isinstance(features[audio_column], datasets.Audio):
        ds = ds.cast_column(audio_column, datasets.Audio(decode=False))
    return ds


def _rows_to_examples(spec: dict, rows, counters: Counters) -> Iterator[Example]:
    kind, task = spec["kind"], spec.get("task")
    max_seconds = float(spec.get("max_seconds", 30.0 if kind != "jaspeech-sft" else 60.0))

    def clip(audio) -> tuple[np.ndarray, int] | None:
        try:
            samples, sr = decode(audio)
        except Exception:
            counters.undecodable += 1
            return None
        if samples.size / sr > max_seconds:
            counters.too_long += 1
            return None
        return samples, sr

    for row in rows:
        if kind in ("asr", "fsd50k"):
            c = clip(row.get(spec.get("audio_column", "audio")))
            text = row.get(spec.get("text_column", "caption" if kind == "fsd50k" else "transcription"))
            if c is not None and text:
                yield Example(task or ("caption" if kind == "fsd50k" else "asr_ja"), [], [c], response=text)
        elif kind == "jaspeech-sft" and task == "asr_ja":
            for t in row["turns"]:
                if t["role"] == "user" and (c := clip(t["audio"])) is not None:
                    yield Example("asr_ja", [], [c], response=t["text"])
        elif kind in ("jaspeech-sft", "jaspeech-dpo"):
            turns, audio = [], []
            for t in row["turns"]:
                if t["role"] == "user":
                    c = clip(t["audio"])
                    if c is None:
                        break
                    audio.append(c)
                turns.append({"role": t["role"], "text": t["text"], "spoken": t["role"] == "user"})
            else:
                if kind == "jaspeech-dpo":
                    yield Example("dpo", turns, audio, chosen=row["chosen"], rejected=row["rejected"])
                elif turns and turns[-1]["role"] == "assistant":
                    yield Example("instruction", turns[:-1], audio, response=turns[-1]["text"])
        else:
            raise ValueError(f"unknown data source kind {kind!r}")


def iter_source(spec: dict, counters: Counters) -> Iterator[Example]:
    rows = _load(spec)
    if spec.get("limit"):
        rows = rows.take(int(spec["limit"])) if hasattr(rows, "take") else rows
    yield from _rows_to_examples(spec, rows, counters)


def mixture(sources: list[dict], seed: int = 0, counters: Counters | None = None) -> Iterator[Example]:
    """Endless weighted mix of the sources (each cycled when exhausted), deterministic for a seed."""
    counters = counters if counters is not None else Counters()
    rng = random.Random(seed)
    iterators = [iter_source(s, counters) for s in sources]
    weights = [float(s.get("weight", 1.0)) for s in sources]
    empty_rounds = [0] * len(sources)
    while True:
        i = rng.choices(range(len(sources)), weights=weights)[0]
        try:
            example = next(iterators[i])
            empty_rounds[i] = 0
        except StopIteration:
            empty_rounds[i] += 1
            if empty_rounds[i] > 1:
                raise ValueError(f"data source {sources[i].get('path')} yields no usable example") from None
            iterators[i] = iter_source(sources[i], counters)
            continue
        counters.used += 1
        name = sources[i].get("name", sources[i].get("path"))
        counters.by_source[name] = counters.by_source.get(name, 0) + 1
        yield example


def warn_skipped(counters: Counters) -> None:
    if counters.undecodable or counters.too_long:
        warnings.warn(f"skipped {counters.undecodable} undecodable and {counters.too_long} over-long clips",
                      stacklevel=2)
