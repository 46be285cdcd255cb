"""Training-step throughput of JaSpeechLLM: tokens/s, audio-seconds/s, peak memory, and the GPU-hours one
pass over the published SFT corpora would take at that rate.

    python benchmarks/train_step.py --gpu        # one GPU, ~2-4 min, no downloads: real shapes, random weights
    python benchmarks/train_step.py --tiny       # CPU, seconds: the same code path with the tiny shapes
    python benchmarks/train_step.py --dry-run    # --tiny, one timed step of one example (what CI runs)

`--gpu` builds, with random weights (the cost of a step does not depend on them), a Whisper-large-v3
encoder (32 layers, d 1280, 128 mel bins) and an 8B Llama-shaped LLM (hidden 4096, 32 layers, 32 query /
8 KV heads, MLP 14336, LLM-jp's 99,584-row vocabulary) joined by the original's 2H adapter, in bf16, as the
`sft` stage trains it: encoder frozen, adapter + LLM learning, activation checkpointing on. It times
forward + backward on two synthetic workloads: `asr` (5 s clips, 32 text tokens: ReazonSpeech, LibriSpeech,
captions) and `instruction` (10 s clips, 384 text tokens: spoken Magpie / multi-turn), each clip one 30 s
encoder window as in training. The optimiser step is left out: the 8B model's AdamW states (64 GB in fp32)
do not fit one GPU next to it, and under the recipes' FSDP they are sharded 8 ways and updated elementwise
(a few % of a step), so the projection is a lower bound. Figures per GPU; with N GPUs under FSDP divide
the hours by N (ideal scaling).

Needs only torch, transformers and jaspeech's model code (no datasets, tokenizers or audio decoding).
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from jaspeech.model.configuration_jaspeech_llm import SAMPLE_RATE, JaSpeechLLMConfig, audio_tokens_for
from jaspeech.model.modeling_jaspeech_llm import JaSpeechLLMForConditionalGeneration
from jaspeech.model.train.config import apply_stage, enable_checkpointing

SHAPES = {
    "tiny": ({"d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 128,
              "num_mel_bins": 80},
             {"vocab_size": 800, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2}),
    # openai/whisper-large-v3's encoder; an 8B Llama shape with LLM-jp's vocabulary (llm-jp-3/4 8B class)
    "8b": ({"d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20, "encoder_ffn_dim": 5120,
            "num_mel_bins": 128},
           {"vocab_size": 99584, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 8, "rope_theta": 500000.0}),
}
WORKLOADS = {"asr": (5.0, 32), "instruction": (10.0, 384)}  # (seconds of audio, text tokens) per example
PROMPT_TOKENS = 24  # system line + instruction around the audio
# Hours of audio of the published SFT corpora (their cards), and which workload each resembles.
CORPORA = [
    ("Atotti/spoken-magpie-ja", 700.0, "instruction"),
    ("Atotti/spoken-multiturn-sft", 265.0, "instruction"),
    ("FSD50K captions, CC0 + CC-BY (<= all of FSD50K, 108.3 h)", 108.3, "asr"),
    ("LibriSpeech train-clean-100", 100.6, "asr"),
]
NOT_PROJECTED = ("ReazonSpeech (~35,000 h) is streamed by the mix (weight 9 of 21), never passed over whole; "
                 "text-only chats carry no audio")


def build(shape: str, device: str, dtype: torch.dtype):
    audio, text = SHAPES[shape]
    config = JaSpeechLLMConfig(
        audio_config={"model_type": "whisper", "max_source_positions": 1500, "decoder_layers": 1,
                      "decoder_attention_heads": 4, "decoder_ffn_dim": 64, "vocab_size": 64, "pad_token_id": 0,
                      "bos_token_id": 0, "eos_token_id": 0, "decoder_start_token_id": 0, **audio},
        text_config={"model_type": "llama", "max_position_embeddings": 4096, "tie_word_embeddings": False,
                     "use_cache": False, **text},
        audio_token_id=text["vocab_size"] - 1, adapter_hidden_size=2 * text["hidden_size"], adapter_bias=False)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = JaSpeechLLMForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default)
    apply_stage(model, "sft")
    enable_checkpointing(model.language_model)
    model.train()
    return model


def batch(model, size: int, seconds: float, text_tokens: int, device: str, dtype: torch.dtype) -> dict:
    """A padded-free batch as the collator makes it: prompt, the clip's placeholders, the response."""
    cfg = model.config
    samples = int(seconds * SAMPLE_RATE)
    n_audio = audio_tokens_for(samples, cfg.pooling)
    g = torch.Generator().manual_seed(0)
    vocab = cfg.text_config.vocab_size - 1  # the last id is the audio placeholder
    prompt = torch.randint(0, vocab, (size, PROMPT_TOKENS), generator=g)
    response = torch.randint(0, vocab, (size, text_tokens), generator=g)
    ids = torch.cat([prompt[:, :4], torch.full((size, n_audio), cfg.audio_token_id), prompt[:, 4:], response], 1)
    labels = ids.clone()
    labels[:, : PROMPT_TOKENS + n_audio] = -100
    mels = cfg.audio_config.num_mel_bins
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device), "labels": labels.to(device),
            "input_features": torch.randn(size, mels, 3000, generator=g).to(device, dtype),
            "audio_chunk_samples": torch.full((size,), samples).to(device)}


def measure(model, b: dict, steps: int, device: str, optimizer=None) -> float:
    """Median seconds per forward + backward (+ optimiser step), after two warm-up steps."""
    timings = []
    for step in range(steps + 2):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(**b).loss.backward()
        if optimizer is not None:
            optimizer.step()
        model.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 2:
            timings.append(time.perf_counter() - t0)
    return sorted(timings)[len(timings) // 2]


def run(shape: str, device: str, steps: int, batch_size: int, with_optimizer: bool) -> dict:
    t_start = time.perf_counter()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = build(shape, device, dtype)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5) if with_optimizer else None
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    results = {}
    for name, (seconds, text_tokens) in WORKLOADS.items():
        b = batch(model, batch_size, seconds, text_tokens, device, dtype)
        step_s = measure(model, b, steps, device, optimizer)
        tokens = int(b["attention_mask"].sum())
        results[name] = {"clip_s": seconds, "text_tokens": text_tokens, "tokens_per_example": tokens // batch_size,
                         "step_s": step_s, "tokens_per_s": tokens / step_s, "audio_s_per_s": batch_size * seconds / step_s}
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    projection = [{"corpus": name, "hours": hours, "workload": kind,
                   "gpu_hours": hours / results[kind]["audio_s_per_s"]} for name, hours, kind in CORPORA]
    return {"benchmark": "train_step", "shape": shape, "device": device,
            "gpu": torch.cuda.get_device_name() if device == "cuda" else None, "dtype": str(dtype).split(".")[-1],
            "params_b": params / 1e9, "batch": batch_size, "steps": steps, "optimizer_step": with_optimizer,
            "activation_checkpointing": True, "peak_memory_gib": peak, "workloads": results,
            "projection_one_pass": projection, "projection_total_gpu_hours": sum(p["gpu_hours"] for p in projection),
            "not_projected": NOT_PROJECTED, "wall_s": time.perf_counter() - t_start}


def report(r: dict) -> None:
    print(f"{r['shape']} ({r['params_b']:.2f} B parameters) on {r['gpu'] or r['device']}, {r['dtype']}, batch {r['batch']}, "
          f"activation checkpointing, optimiser step {'included' if r['optimizer_step'] else 'excluded'}")
    print(f"{'workload':>12} {'clip s':>7} {'tok/ex':>7} {'step s':>8} {'tokens/s':>10} {'audio s/s':>10}")
    for name, w in r["workloads"].items():
        print(f"{name:>12} {w['clip_s']:>7.1f} {w['tokens_per_example']:>7d} {w['step_s']:>8.3f} "
              f"{w['tokens_per_s']:>10.0f} {w['audio_s_per_s']:>10.1f}")
    if r["peak_memory_gib"] is not None:
        print(f"peak GPU memory: {r['peak_memory_gib']:.1f} GiB")
    print("one pass over the published SFT corpora at these rates (GPU-hours; / N GPUs under FSDP):")
    for p in r["projection_one_pass"]:
        print(f"  {p['corpus']:<58} {p['hours']:>7.1f} h audio  {p['workload']:>11}  {p['gpu_hours']:>9.1f} GPU-h")
    print(f"  {'total':<58} {sum(p['hours'] for p in r['projection_one_pass']):>7.1f} h audio  {'':>11}  "
          f"{r['projection_total_gpu_hours']:>9.1f} GPU-h")
    print(f"  not projected: {r['not_projected']}")
    print(f"wall time {r['wall_s']:.0f} s")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--gpu", action="store_true", help="Whisper-large-v3 + 8B shapes on the GPU, bf16")
    mode.add_argument("--tiny", action="store_true", help="the tiny shapes on the CPU (default)")
    mode.add_argument("--dry-run", action="store_true", help="--tiny with one timed step of one example")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per workload (default: 5 on GPU, 3 on CPU)")
    ap.add_argument("--batch", type=int, default=4, help="examples per step (default 4)")
    ap.add_argument("--optimizer", choices=("on", "off"), default=None,
                    help="include an AdamW step (default: on for tiny, off for --gpu, see above)")
    args = ap.parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        ap.error("--gpu needs a CUDA device; use --tiny on a CPU")
    shape, device = ("8b", "cuda") if args.gpu else ("tiny", "cpu")
    steps = 1 if args.dry_run else args.steps or (5 if args.gpu else 3)
    with_optimizer = (args.optimizer or ("off" if args.gpu else "on")) == "on"
    r = run(shape, device, steps, 1 if args.dry_run else args.batch, with_optimizer)
    report(r)
    print(json.dumps(r))
    return r


if __name__ == "__main__":
    main()
