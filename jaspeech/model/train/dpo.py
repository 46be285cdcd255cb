"""Sigmoid DPO on summed response log-probabilities (the original's setting: beta 0.1, sigmoid, sums)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of log-probabilities of the label tokens (positions != -100), one value per row."""
    logits, labels = logits[:, :-1], labels[:, 1:]
    mask = labels != -100
    logps = torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logps * mask).sum(-1)


def dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta: float = 0.1):
    """Sigmoid DPO: -log sigma(beta * ((pi_c - ref_c) - (pi_r - ref_r))), averaged over pairs."""
    margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)
    return -F.logsigmoid(beta * margin).mean(), margin


def pair_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen and rejected log-probs from ONE forward call, with one encoder pass shared by both halves.

    `model` may be the DDP/FSDP-wrapped model: the call goes through its forward, so gradients are
    synchronised and sharded parameters gathered.
    """
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   input_features=batch.get("input_features"), audio_chunk_samples=batch.get("audio_chunk_samples"),
                   audio_repeats=2).logits
    logps = sequence_logps(logits, batch["labels"])
    n = batch["input_ids"].shape[0] // 2
    return logps[:n], logps[n:]
