"""Training-step throughput of JaSpeechLLM: tokens/s and audio-seconds/s per optimiser step.

CPU: the tiny-asr configuration. With a GPU (when one is lent): a mid-size configuration (Whisper-small
shaped encoder, 12-layer 1024-wide Llama) in bf16. Random weights and synthetic clips: the cost of a
step does not depend on what the weights are.

    python benchmarks/train_step.py [--steps 10] [--batch 4] [--seconds 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from jaspeech.model.train.data import Example
from jaspeech.model.train.batches import collate
from jaspeech.model.train.config import apply_stage
from jaspeech.model.train.recipes import build_model

TEXT = "今日はいい天気ですね。明日の会議は午後二時から始まります。"


def config(size: str) -> dict:
    if size == "tiny":
        return {"model": {"init": "tiny", "d_model": 64, "hidden_size": 128, "layers": 2, "vocab_size": 800}}
    return {"model": {"init": "tiny", "d_model": 768, "hidden_size": 1024, "layers": 12, "vocab_size": 8000}}


def run(size: str, device: str, steps: int, batch: int, seconds: float) -> dict:
    model, processor = build_model(config(size), [TEXT] * 8)
    apply_stage(model, "asr")
    model.to(device)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    rng = np.random.default_rng(0)
    examples = [Example("asr_ja", [], [((rng.standard_normal(int(16000 * seconds)) * 0.1).astype("float32"), 16000)],
                        response=TEXT) for _ in range(batch)]
    b = {k: v.to(device) for k, v in collate(examples, processor).items()}
    tokens = int(b["attention_mask"].sum())
    timings = []
    for step in range(steps + 2):  # two warm-up steps
        t0 = time.perf_counter()
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            loss = model(**b).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 2:
            timings.append(time.perf_counter() - t0)
    per_step = float(np.median(timings))
    return {"size": size, "device": device, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "step_s": per_step, "tokens_per_s": tokens / per_step, "audio_s_per_s": batch * seconds / per_step}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    runs = [("tiny", "cpu")] + ([("mid", "cuda")] if torch.cuda.is_available() else [])
    print(f"{'config':>6} {'device':>6} {'params M':>9} {'step s':>8} {'tokens/s':>10} {'audio s/s':>10}")
    for size, device in runs:
        r = run(size, device, args.steps, args.batch, args.seconds)
        print(f"{r['size']:>6} {r['device']:>6} {r['params_m']:>9.1f} {r['step_s']:>8.3f} {r['tokens_per_s']:>10.0f} "
              f"{r['audio_s_per_s']:>10.1f}")
    if not torch.cuda.is_available():
        print("no GPU here: the mid-size GPU figure needs a CUDA device")


if __name__ == "__main__":
    main()
