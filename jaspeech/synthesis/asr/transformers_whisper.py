"""`transformers`: any Whisper checkpoint through transformers (Whisper-large-v3, kotoba-whisper, ...).

Batched on GPU (fp16) or CPU (fp32), language `ja`, task `transcribe`: the same round trip and scores as
the offline faster-whisper backend, for GPU clusters. Clips arrive in groups of rows from the build
(see `RowBuilder.finish`) and are transcribed `batch_size` at a time.
"""
from __future__ import annotations

import numpy as np

from jaspeech.synthesis.audio import resample

WHISPER_SR = 16000


class TransformersWhisperASR:
    def __init__(self, model: str = "openai/whisper-large-v3", device: str | None = None,
                 batch_size: int = 16, max_new_tokens: int = 220) -> None:
        import torch
        from transformers import AutoProcessor, WhisperForConditionalGeneration

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.processor = AutoProcessor.from_pretrained(model)
        self.model = WhisperForConditionalGeneration.from_pretrained(model, dtype=self.dtype).to(self.device).eval()
        self.name = f"{model} (transformers)"
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self._torch = torch

    def transcribe(self, audios: list[tuple[np.ndarray, int]]) -> list[str]:
        out: list[str] = []
        for start in range(0, len(audios), self.batch_size):
            batch = [resample(x, sr, WHISPER_SR) for x, sr in audios[start : start + self.batch_size]]
            features = self.processor.feature_extractor(batch, sampling_rate=WHISPER_SR, return_tensors="pt")
            with self._torch.inference_mode():
                ids = self.model.generate(
                    features.input_features.to(self.device, self.dtype),
                    language="ja",
                    task="transcribe",
                    max_new_tokens=self.max_new_tokens,
                )
            out += [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]
        return out
