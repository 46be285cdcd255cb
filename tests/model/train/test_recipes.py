"""Training recipes: freezing per stage, the DPO loss, the CPU proof, a 2-process run with resume, DPO training."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jaspeech.model.train.batches import collate, collate_dpo
from jaspeech.model.train.config import STAGES, apply_stage
from jaspeech.model.train.data import Example
from jaspeech.model.train.dpo import dpo_loss, pair_logps, sequence_logps
from jaspeech.model.train.recipes import train
from tests.model.tiny import tiny_model_and_processor
from tests.model.train.test_distributed import free_port

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "configs" / "train" / "tiny-asr.yaml"


def examples(n=2, seconds=1.0):
    import numpy as np

    rng = np.random.default_rng(0)
    return [Example("asr_ja", [], [((rng.standard_normal(int(16000 * seconds)) * 0.1).astype("float32"), 16000)],
                    response="今日はいい天気です。") for _ in range(n)]


@pytest.mark.parametrize("stage", list(STAGES))
def test_freezing_per_stage_and_what_changes_after_a_step(stage):
    torch.manual_seed(0)
    model, processor = tiny_model_and_processor()
    trainable = apply_stage(model, stage)
    assert trainable == (["adapter"] if stage == "pretrain-adapter" else ["adapter", "language_model"])
    for part in ("encoder", "adapter", "language_model"):
        flags = {p.requires_grad for p in getattr(model, part).parameters()}
        assert flags == {part in trainable}, part
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**collate(examples(), processor)).loss.backward()
    optimizer.step()
    for part in ("encoder", "adapter", "language_model"):
        changed = any(not torch.equal(p, before[n]) for n, p in model.named_parameters() if n.startswith(part + "."))
        assert changed == (part in trainable), part


def test_dpo_loss_against_a_hand_computed_value():
    pc, pr, rc, rr = torch.tensor([-10.0, -4.0]), torch.tensor([-12.0, -3.0]), torch.tensor([-11.0, -4.0]), torch.tensor([-11.0, -4.0])
    loss, margin = dpo_loss(pc, pr, rc, rr, beta=0.5)
    # pair 1: margin (-10+11) - (-12+11) = 2; pair 2: (-4+4) - (-3+4) = -1
    expected = (-math.log(1 / (1 + math.exp(-0.5 * 2))) - math.log(1 / (1 + math.exp(-0.5 * -1)))) / 2
    assert margin.tolist() == [2.0, -1.0] and loss.item() == pytest.approx(expected, rel=1e-6)
    same = dpo_loss(pc, pr, pc, pr)[0]
    assert same.item() == pytest.approx(math.log(2))  # policy == reference: log 2


def test_chosen_and_rejected_share_one_encoder_pass():
    torch.manual_seed(0)
    model, processor = tiny_model_and_processor()
    turns = [{"role": "user", "text": "質問", "spoken": True}]
    ex = [Example("dpo", turns, examples(1)[0].audio, chosen="良い答えです。", rejected="悪い。")]
    batch = collate_dpo(ex, processor)
    assert batch["input_ids"].shape[0] == 2 and batch["input_features"].shape[0] == 1
    calls = []
    hook = model.encoder.register_forward_hook(lambda *a: calls.append(1))
    chosen, rejected = pair_logps(model, batch)
    hook.remove()
    assert calls == [1]
    # the same numbers as two separate ordinary forwards
    for row, value in ((0, chosen), (1, rejected)):
        single = {"input_ids": batch["input_ids"][row:row + 1], "attention_mask": batch["attention_mask"][row:row + 1],
                  "input_features": batch["input_features"], "audio_chunk_samples": batch["audio_chunk_samples"]}
        logits = model(**single).logits
        assert torch.allclose(sequence_logps(logits, batch["labels"][row:row + 1]), value, atol=1e-4)


@pytest.mark.slow
def test_cpu_proof_tiny_asr_learns(sample_corpora, tmp_path, capsys):
    result = train(TINY, [f"data.sources.0.path={sample_corpora / 'sft'}", f"output_dir={tmp_path / 'run'}"])
    print(f"tiny-asr: loss {result['first_loss']:.3f} -> {result['last_loss']:.3f}; "
          f"greedy CER {result['cer_before']:.1f} % -> {result['cer_after']:.1f} %")
    assert result["last_loss"] < 0.5 * result["first_loss"]
    assert result["cer_after"] < result["cer_before"]
    assert [step for step, _ in result["cer_during"]] == [100, 200]  # the periodic evaluation hook
    final = tmp_path / "run" / "final"
    from jaspeech.model import JaSpeechLLMForConditionalGeneration

    assert isinstance(JaSpeechLLMForConditionalGeneration.from_pretrained(final), JaSpeechLLMForConditionalGeneration)
    assert json.loads((final / "train_result.json").read_text())["cer_after"] == result["cer_after"]


@pytest.mark.slow
def test_two_processes_save_and_resume(sample_corpora, tmp_path):
    out = tmp_path / "ddp"
    base = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
            "-m", "jaspeech", "train", str(TINY), "--set", f"data.sources.0.path={sample_corpora / 'sft'}",
            "--set", f"output_dir={out}", "--set", "eval.examples=0", "--set", "training.save_steps=2",
            "--set", "training.per_device_batch_size=2", "--set", "training.log_steps=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(base + ["--set", "training.max_steps=2"], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "checkpoint-2" / "done").exists() and (out / "final" / "config.json").exists()
    second = subprocess.run(base + ["--set", "training.max_steps=4"], capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from checkpoint-2 (step 2)" in second.stdout + second.stderr
    assert "step 3/4" in second.stdout and "step 1/4" not in second.stdout
    assert (out / "checkpoint-4" / "done").exists()


def test_dpo_stage_trains_from_a_checkpoint(sample_corpora, tmp_path):
    first = train(TINY, [f"data.sources.0.path={sample_corpora / 'sft'}", f"output_dir={tmp_path / 'asr'}",
                         "training.max_steps=2", "eval.examples=0"])
    assert first["steps"] == 2
    dpo = ROOT / "configs" / "train" / "dpo.yaml"
    result = train(dpo, [f"model.path={tmp_path / 'asr' / 'final'}", f"output_dir={tmp_path / 'dpo'}",
                         f"data.sources=[{{kind: jaspeech-dpo, path: '{sample_corpora / 'dpo'}', config: chatbot-arena}}]",
                         "training.max_steps=3", "training.per_device_batch_size=2", "training.learning_rate=1.0e-3",
                         "training.bf16=false", "training.gradient_checkpointing=false",
                         "training.gradient_accumulation_steps=1", "training.log_steps=1"])
    assert result["stage"] == "dpo" and result["first_loss"] == pytest.approx(math.log(2), abs=1e-3)
    assert all(math.isfinite(x) for x in result["losses"])


def test_bf16_and_gradient_checkpointing_run(sample_corpora, tmp_path):
    result = train(TINY, [f"data.sources.0.path={sample_corpora / 'sft'}", f"output_dir={tmp_path / 'bf16'}",
                          "training.max_steps=2", "eval.examples=0", "training.bf16=true",
                          "training.gradient_checkpointing=true"])
    assert result["steps"] == 2 and all(math.isfinite(x) for x in result["losses"])
    from jaspeech.model import JaSpeechLLMForConditionalGeneration

    saved = JaSpeechLLMForConditionalGeneration.from_pretrained(tmp_path / "bf16" / "final")
    assert saved.dtype == torch.float32  # mixed precision trains in bf16 autocast, weights stay fp32


def test_learning_rate_schedules_ours_and_the_originals():
    from jaspeech.model.train.recipes import lr_scheduler

    def rates(t, steps):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched, out = lr_scheduler(opt, t, steps), []
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    linear = rates({"lr_schedule": "linear", "warmup_steps": 10}, 110)
    # the original's get_lr_schedule: from 10 % up to the rate over the warm-up, then down to 10 %
    assert linear[0] == pytest.approx(0.1) and linear[5] == pytest.approx(0.55) and linear[10] == pytest.approx(1.0)
    assert linear[60] == pytest.approx(0.55) and linear[109] == pytest.approx(0.1 + 0.9 / 100)
    flat = rates({"lr_schedule": "linear", "warmup_steps": 10, "schedule_steps": 1_000_000_000}, 50)
    assert flat[49] == pytest.approx(1.0, abs=1e-6)  # its scripts' 1e9 steps: constant after warm-up
    cosine = rates({"warmup_steps": 10}, 110)
    assert cosine[0] == 0.0 and cosine[10] == pytest.approx(1.0) and cosine[60] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="cosine or linear"):
        rates({"lr_schedule": "step"}, 1)


def test_loss_on_all_text_tokens_or_only_the_response():
    torch.manual_seed(0)
    _, processor = tiny_model_and_processor(prompt_format="original-v2")
    ex = examples(1)
    response = collate(ex, processor, "response")
    everything = collate(ex, processor, "all")
    audio = response["input_ids"] == processor.audio_token_id
    assert (everything["labels"][audio] == -100).all() and (everything["labels"][~audio] != -100).all()
    labelled = processor.tokenizer.decode(response["labels"][0][response["labels"][0] != -100])
    assert labelled == "今日はいい天気です。<|eos|>"
