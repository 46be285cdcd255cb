"""Recipe files: YAML with `--set key=value` overrides; the stages, which parts learn in each, checkpointing.

Stages (the encoder is always frozen, as in the seed):
    pretrain-adapter  adapter only (encoder and LLM frozen): the adapter learns ASR
    asr               adapter + LLM: the ASR-specialised model
    sft               adapter + LLM, multi-task (ASR, spoken instructions, captions, text), from the adapter checkpoint
    dpo               adapter + LLM against a frozen reference copy, sigmoid DPO loss, from the SFT checkpoint
"""
from __future__ import annotations

from pathlib import Path

STAGES = {
    "pretrain-adapter": {"encoder": False, "adapter": True, "language_model": False},
    "asr": {"encoder": False, "adapter": True, "language_model": True},
    "sft": {"encoder": False, "adapter": True, "language_model": True},
    "dpo": {"encoder": False, "adapter": True, "language_model": True},
}


def apply_stage(model, stage: str) -> list[str]:
    """Set requires_grad per part for a stage; returns the names of the trainable parts."""
    plan = STAGES[stage]
    for part, trainable in plan.items():
        for p in getattr(model, part).parameters():
            p.requires_grad_(trainable)
    return [part for part, trainable in plan.items() if trainable]


def enable_checkpointing(module) -> None:
    """Activation checkpointing of the LLM's layers, non-reentrant (the variant DDP and FSDP support)."""
    import inspect

    kw = {"use_reentrant": False}
    enable = getattr(module, "activation_checkpointing_enable", None)  # newer transformers; the old name warns
    if enable is not None and "activation_checkpointing_kwargs" in inspect.signature(enable).parameters:
        enable(activation_checkpointing_kwargs=kw)
    else:
        module.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    """A recipe with `key.sub=value` overrides applied (values are YAML; list items by index: data.sources.0.path)."""
    import yaml

    cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. training.max_steps=10")
        target = cfg
        *parents, last = key.split(".")
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target.setdefault(p, {})
        if isinstance(target, list):
            target[int(last)] = yaml.safe_load(value)
        else:
            target[last] = yaml.safe_load(value)
    if cfg.get("stage") not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}")
    return cfg
