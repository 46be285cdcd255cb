"""Per-rank programs for the multi-process tests, started with torchrun (gloo on CPU).

    python -m torch.distributed.run --nproc_per_node 2 -m tests.model.train.workers ddp-dpo OUT DPO_FOLDER
    python -m torch.distributed.run --nproc_per_node 2 -m tests.model.train.workers fsdp-sft OUT SFT_FOLDER

Each rank writes what the test compares to OUT/rank<N>.pt (and rank 0 OUT/result.json).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from jaspeech.model.train.config import load_config

ROOT = Path(__file__).resolve().parents[3]


def trainable_vector(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).float().clone() for p in model.parameters() if p.requires_grad])


def ddp_dpo(out: Path, data: str) -> None:
    """The DPO recipe (tiny model) for 2 steps under DDP, through the recipe's own setup and loop."""
    from jaspeech.model.train.recipes import fit, setup

    cfg = load_config(ROOT / "configs" / "train" / "dpo.yaml", [
        "model.init=tiny", f"output_dir={out / 'run'}", "training.max_steps=2", "training.per_device_batch_size=1",
        "training.gradient_accumulation_steps=1", "training.learning_rate=1.0e-2", "training.warmup_steps=0",
        "training.bf16=false", "training.gradient_checkpointing=false",
        f"data.sources=[{{kind: jaspeech-dpo, path: '{data}'}}]"])
    run = setup(cfg)
    model = run.accelerator.unwrap_model(run.model)
    before = trainable_vector(model)
    fit(run)
    assert type(run.model).__name__ == "DistributedDataParallel", type(run.model)
    torch.save({"before": before, "after": trainable_vector(model), "losses": run.result["losses"],
                "world": run.accelerator.num_processes}, out / f"rank{run.accelerator.process_index}.pt")


def fsdp_sft(out: Path, data: str) -> None:
    """An SFT step, evaluation and save with the model sharded by FSDP2 `fully_shard`.

    accelerate enables its FSDP plugin only on GPU-like devices (on CPU it silently uses DDP instead), so the
    model is sharded here as accelerate's `fsdp_version: 2` plugin shards it (each Llama decoder and Whisper
    encoder layer, then the root), and the recipe's own step, evaluation and final save run on it.
    """
    from accelerate import Accelerator
    from torch.distributed.fsdp import fully_shard

    from jaspeech.model.train.config import apply_stage
    from jaspeech.model.train.distributed import full_state_dict, prepare_generation
    from jaspeech.model.train.recipes import Run, _eval_examples, _tokenizer_texts, build_model, finish, step_loss
    from jaspeech.model.train.data import mixture

    cfg = load_config(ROOT / "configs" / "train" / "sft.yaml", [
        "model.init=tiny", f"output_dir={out / 'run'}", "training.max_steps=1",
        f"data.sources=[{{kind: jaspeech-sft, task: asr_ja, path: '{data}', config: magpie}}]"])
    accelerator = Accelerator(cpu=True)
    assert accelerator.num_processes == 2
    sources = cfg["data"]["sources"]
    model, processor = build_model(cfg, _tokenizer_texts(sources, 0, 32))
    apply_stage(model, "sft")
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    for module in model.modules():
        if type(module).__name__ in ("LlamaDecoderLayer", "WhisperEncoderLayer"):
            fully_shard(module)
    fully_shard(model)
    prepare_generation(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    run = Run(cfg, accelerator, model, processor, optimizer, None, params, None, _eval_examples(sources, 0, 2))
    stream = mixture(sources, seed=0)
    examples = [next(stream) for _ in range(4)][accelerator.process_index::2]
    loss = step_loss(run, examples)
    loss.backward()
    optimizer.step()
    finish(run)  # every rank: sharded greedy generation, full state dict gathered; rank 0 writes final/
    full = full_state_dict(accelerator, model)
    torch.save({"loss": float(loss), "cer_after": run.result["cer_after"], "hyps": run.result["examples"]},
               out / f"rank{accelerator.process_index}.pt")
    if accelerator.is_main_process:
        from jaspeech.model import JaSpeechLLMForConditionalGeneration

        loaded = JaSpeechLLMForConditionalGeneration.from_pretrained(out / "run" / "final").state_dict()
        same = all(torch.equal(loaded[k], full[k]) for k in full)
        changed = [k for k in full if not torch.equal(full[k], initial[k])]
        (out / "result.json").write_text(json.dumps({
            "keys_equal": sorted(loaded) == sorted(full), "same": same, "changed": changed,
            "rows": {n: [p.to_local().shape[0], full[n].shape[0]] for n, p in model.named_parameters()
                     if n.endswith("self_attn.q_proj.weight")}}))


if __name__ == "__main__":
    {"ddp-dpo": ddp_dpo, "fsdp-sft": fsdp_sft}[sys.argv[1]](Path(sys.argv[2]), sys.argv[3])
