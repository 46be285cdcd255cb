"""What DDP and FSDP need around the training step: every rank joins what needs all ranks, one rank writes.

- Generation under FSDP2: the root module's own parameters (embeddings, adapter, encoder stem) are only
  gathered by its forward hooks, and `generate` is not `forward`; `prepare_generation` registers
  `generate` as a forward method so FSDP gathers them around it. Every rank must then generate with
  `synced_gpus=True` (ranks that finish early keep stepping so the layers' all-gathers stay matched).
- Saving: the full state dict is gathered by all ranks (FSDP shards are all-gathered), written by the main
  process only, with `save_pretrained`, so `<output_dir>/final` loads with `from_pretrained`.
"""
from __future__ import annotations

from pathlib import Path


def is_fsdp2(model) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def prepare_generation(model) -> None:
    """Let `model.generate` run on an FSDP2-sharded model (a no-op for unsharded models)."""
    if is_fsdp2(model):
        from torch.distributed.fsdp import register_fsdp_forward_method

        register_fsdp_forward_method(model, "generate")


def full_state_dict(accelerator, model) -> dict:
    """The full, unsharded state dict on CPU (complete on the main process). Every rank must call this."""
    if is_fsdp2(model):  # what accelerate does for its FSDP2 plugin; also covers a model sharded by hand
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return accelerator.get_state_dict(model)


def save_final(accelerator, model, processor, out: Path) -> None:
    """`save_pretrained` of the model (gathered from every rank) and the processor, written by the main process."""
    state = full_state_dict(accelerator, model)
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(out, state_dict=state)
        processor.save_pretrained(out)
    accelerator.wait_for_everyone()
