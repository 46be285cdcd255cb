"""Collators: examples -> padded model inputs (audio features concatenated in placeholder order).

`original_multi_turn_audio` (the recipe's `training.original_multi_turn_audio`, off in ours) batches the
way the original ja-speech-llm's `finetune.py` did: a batch holding a row with more than one user turn
goes through its multi-turn path whole, so every clip of every row of that batch (single-turn rows too)
is heard as its whole padded 30 s window, and its text-only rows get the spoken system line
(`あなたは音声を理解できるAIアシスタントです。`, `build_multiturn_prompt`) instead of the text one. Other
batches are trimmed, as ours always are. Continued training of an original checkpoint then sees what it
was trained on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from jaspeech.model import prompts
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


def _original_batch(messages: list[list[dict]], original_multi_turn_audio: bool) -> tuple[list[list[dict]], bool]:
    """(messages, whether every clip is heard as a whole window) under the original's batch rule, or ours."""
    multi_turn = any(sum(m["role"] == "user" for m in ms) > 1 for ms in messages)
    if not (original_multi_turn_audio and multi_turn):
        return messages, False
    return [[{**m, "content": prompts.AUDIO_SYSTEM} if m["role"] == "system" else m for m in ms]
            for ms in messages], True


def collate(examples: list[Example], processor, loss_on: str = "response",
            original_multi_turn_audio: bool = False) -> dict:
    """Supervised batch (ASR, instruction, caption, text): labels on the responses (or on all text)."""
    messages, whole = _original_batch([processor.task_messages(e.task, e.turns) for e in examples],
                                      original_multi_turn_audio)
    encoded = [processor.training_example(m, e.response, e.audio, loss_on, full_window=whole)
               for m, e in zip(messages, examples)]
    return _batch(encoded, encoded, processor.tokenizer.pad_token_id)


def collate_dpo(examples: list[Example], processor, original_multi_turn_audio: bool = False) -> dict:
    """Chosen rows then rejected rows; audio features once (both halves share one encoder pass, so both are
    heard alike: `original_multi_turn_audio` decides for the whole batch)."""
    messages, whole = _original_batch([processor.task_messages("dpo", e.turns) for e in examples],
                                      original_multi_turn_audio)

    def encode(m: list[dict], e: Example, response: str):
        return processor.training_example(m, response, e.audio, full_window=whole)

    chosen = [encode(m, e, e.chosen) for m, e in zip(messages, examples)]
    rejected = [encode(m, e, e.rejected) for m, e in zip(messages, examples)]
    return _batch(chosen + rejected, chosen, processor.tokenizer.pad_token_id)
