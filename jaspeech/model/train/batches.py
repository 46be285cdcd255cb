"""Collators: examples -> padded model inputs (audio features concatenated in placeholder order)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from jaspeech.model.train.data import Example


def _pad(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    width = max(r.shape[-1] for r in rows)
    return torch.stack([F.pad(r, (0, width - r.shape[-1]), value=value) for r in rows])


def _batch(rows: list, audio_rows: list, pad: int) -> dict:
    """Pad the token rows into one batch; audio features come from `audio_rows` (encoded once)."""
    batch = {
        "input_ids": _pad([e["input_ids"][0] for e in rows], pad),
        "attention_mask": _pad([e["attention_mask"][0] for e in rows], 0),
        "labels": _pad([e["labels"][0] for e in rows], -100),
    }
    with_audio = [e for e in audio_rows if "input_features" in e]
    if with_audio:  # text-only rows have none; placeholders of the others are filled in row order
        batch["input_features"] = torch.cat([e["input_features"] for e in with_audio])
        batch["audio_chunk_samples"] = torch.cat([e["audio_chunk_samples"] for e in with_audio])
    return batch


def collate(examples: list[Example], processor, loss_on: str = "response") -> dict:
    """Supervised batch (ASR, instruction, caption, text): labels on the responses (or on all text)."""
    encoded = [processor.training_example(processor.task_messages(e.task, e.turns), e.response, e.audio, loss_on)
               for e in examples]
    return _batch(encoded, encoded, processor.tokenizer.pad_token_id)


def collate_dpo(examples: list[Example], processor) -> dict:
    """Chosen rows then rejected rows; audio features once (both halves share one encoder pass)."""
    def encode(e: Example, response: str):
        return processor.training_example(processor.task_messages("dpo", e.turns), response, e.audio)

    chosen = [encode(e, e.chosen) for e in examples]
    rejected = [encode(e, e.rejected) for e in examples]
    return _batch(chosen + rejected, chosen, processor.tokenizer.pad_token_id)
