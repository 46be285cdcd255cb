"""Training recipes: `jaspeech train CONFIG.yaml` for every stage, on CPU or many GPUs (accelerate).

Stages and what learns (the encoder is always frozen, as in the seed):
    pretrain-adapter  adapter only (encoder and LLM frozen): the adapter learns ASR
    asr               adapter + LLM: the ASR-specialised model
    sft               adapter + LLM, multi-task (ASR, spoken instructions, captions), from the adapter checkpoint
    dpo               adapter + LLM against a frozen reference copy, sigmoid DPO loss, from the SFT checkpoint

Checkpoints (`accelerate` state) go to `<output_dir>/checkpoint-<step>`; a rerun resumes from the latest.
The final model and processor are saved with `save_pretrained` to `<output_dir>/final`.
"""
from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from jaspeech.cer import corpus_rates, kotoba_normalize
from jaspeech.model.data import Counters, Example, mixture, warn_skipped

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


# --- config ---------------------------------------------------------------------------------------

def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    for item in overrides or []:
        key, _, value = item.partition("=")
        target = cfg
        *parents, last = key.split(".")
        for p in parents:  # list items by index: data.sources.0.path
            target = target[int(p)] if isinstance(target, list) else target.setdefault(p, {})
        if isinstance(target, list):
            target[int(last)] = yaml.safe_load(value)
        else:
            target[last] = yaml.safe_load(value)
    if cfg.get("stage") not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}")
    return cfg


# --- model ----------------------------------------------------------------------------------------

def build_model(cfg: dict, texts_for_tokenizer: list[str] | None = None):
    """(model, processor) from `model.init`: `parts` (pretrained encoder + LLM), `checkpoint`, or `tiny`."""
    from jaspeech.model import JaSpeechLLMConfig, JaSpeechLLMForConditionalGeneration, JaSpeechLLMProcessor

    m = cfg["model"]
    if m["init"] == "parts":
        return JaSpeechLLMForConditionalGeneration.from_pretrained_parts(m["encoder"], m["llm"])
    if m["init"] == "checkpoint":
        return (JaSpeechLLMForConditionalGeneration.from_pretrained(m["path"]),
                JaSpeechLLMProcessor.from_pretrained(m["path"]))
    if m["init"] != "tiny":
        raise ValueError("model.init must be parts, checkpoint or tiny")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, WhisperFeatureExtractor

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts_for_tokenizer or ["あ"], trainers.BpeTrainer(
        vocab_size=int(m.get("vocab_size", 800)), special_tokens=["<|endoftext|>", "<|audio|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    processor = JaSpeechLLMProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer)
    d, h, layers = int(m.get("d_model", 64)), int(m.get("hidden_size", 128)), int(m.get("layers", 2))
    config = JaSpeechLLMConfig(
        audio_config={"model_type": "whisper", "d_model": d, "encoder_layers": layers, "encoder_attention_heads": 4,
                      "encoder_ffn_dim": 2 * d, "num_mel_bins": 80, "decoder_layers": 1, "decoder_attention_heads": 4,
                      "decoder_ffn_dim": 2 * d, "vocab_size": 64,
                      "pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0, "decoder_start_token_id": 0},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": h, "intermediate_size": 2 * h,
                     "num_hidden_layers": layers, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": 2048, "tie_word_embeddings": False,
                     "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.eos_token_id},
        audio_token_id=processor.audio_token_id)
    torch.manual_seed(int(cfg.get("seed", 0)))
    return JaSpeechLLMForConditionalGeneration(config), processor


# --- batches --------------------------------------------------------------------------------------

def _pad(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    width = max(r.shape[-1] for r in rows)
    return torch.stack([F.pad(r, (0, width - r.shape[-1]), value=value) for r in rows])


def _batch(rows: list, audio_rows: list, pad: int) -> dict:
    """Pad the token rows into one batch; audio features come from `audio_rows` (encoded once)."""
    return {
        "input_ids": _pad([e["input_ids"][0] for e in rows], pad),
        "attention_mask": _pad([e["attention_mask"][0] for e in rows], 0),
        "labels": _pad([e["labels"][0] for e in rows], -100),
        "input_features": torch.cat([e["input_features"] for e in audio_rows]),
        "audio_chunk_samples": torch.cat([e["audio_chunk_samples"] for e in audio_rows]),
    }


def collate(examples: list[Example], processor) -> dict:
    """Supervised batch (ASR, instruction, caption): labels only on the responses."""
    encoded = [processor.training_example(processor.task_messages(e.task, e.turns), e.response, e.audio)
               for e in examples]
    return _batch(encoded, encoded, processor.tokenizer.pad_token_id)


def collate_dpo(examples: list[Example], processor) -> dict:
    """Chosen rows then rejected rows; audio features once (both halves share one encoder pass)."""
    def encode(e: Example, response: str):
        return processor.training_example(processor.task_messages("dpo", e.turns), response, e.audio)

    chosen = [encode(e, e.chosen) for e in examples]
    rejected = [encode(e, e.rejected) for e in examples]
    return _batch(chosen + rejected, chosen, processor.tokenizer.pad_token_id)


# --- DPO ------------------------------------------------------------------------------------------

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
    """Chosen and rejected log-probs with ONE encoder pass shared by both halves of the batch."""
    audio = model.encode_audio(batch["input_features"], batch["audio_chunk_samples"])
    ids = batch["input_ids"]
    embeds = model.get_input_embeddings()(ids)
    mask = ids == model.config.audio_token_id
    n = ids.shape[0] // 2
    audio_both = torch.cat([audio, audio]).to(embeds.dtype)  # the rejected half reuses the same embeddings
    embeds = embeds.masked_scatter(mask.unsqueeze(-1).expand_as(embeds), audio_both)
    logits = model.language_model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
    logps = sequence_logps(logits, batch["labels"].masked_fill(mask, -100))
    return logps[:n], logps[n:]


# --- evaluation hook ------------------------------------------------------------------------------

@torch.no_grad()
def greedy_cer(model, processor, examples: list[Example], max_new_tokens: int = 48) -> tuple[float, list[str]]:
    """Greedy transcripts of ASR examples and their corpus CER (kotoba-whisper normalisation), in percent."""
    was_training = model.training
    model.eval()
    hyps = []
    for e in examples:
        prompt = processor.render(processor.task_messages(e.task, e.turns), add_generation_prompt=True)
        inputs = processor(text=[prompt], audio=e.audio)
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=processor.tokenizer.pad_token_id,
                             eos_token_id=processor.tokenizer.eos_token_id)
        hyps.append(processor.batch_decode(out, skip_special_tokens=True)[0])
    model.train(was_training)
    rates = corpus_rates([kotoba_normalize(e.response) for e in examples], [kotoba_normalize(h) for h in hyps])
    return rates.cer, hyps


# --- the loop -------------------------------------------------------------------------------------

def _latest_checkpoint(output_dir: Path) -> tuple[Path | None, int]:
    found = [(int(m.group(1)), p) for p in output_dir.glob("checkpoint-*") if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))
             and (p / "done").exists()]
    if not found:
        return None, 0
    step, path = max(found)
    return path, step


def train(config_path: str | Path, overrides: list[str] | None = None, log=print) -> dict:
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    cfg = load_config(config_path, overrides)
    stage, output_dir = cfg["stage"], Path(cfg["output_dir"])
    t = cfg.get("training", {})
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state:
        # a previous train() in this process fixed the precision settings process-wide; forget them (the
        # distributed PartialState is kept) so each recipe gets its own, as accelerate's own tests do
        AcceleratorState._reset_state()
    accelerator = Accelerator(mixed_precision="bf16" if t.get("bf16") else "no",
                              gradient_accumulation_steps=int(t.get("gradient_accumulation_steps", 1)))
    counters = Counters()
    sources = cfg["data"]["sources"]
    seed = int(cfg.get("seed", 0))
    eval_examples: list[Example] = []
    if cfg.get("eval", {}).get("examples"):
        stream = mixture(sources, seed=seed + 1, counters=Counters())
        eval_examples = [next(stream) for _ in range(int(cfg["eval"]["examples"]))]
    texts = None
    if cfg["model"]["init"] == "tiny":  # the tiny tokenizer is trained on the data's text
        stream = mixture(sources, seed=seed, counters=Counters())
        texts = [(e.response or e.chosen or "") for e in (next(stream) for _ in range(int(cfg["model"].get("tokenizer_examples", 64))))]
        texts += ["音声を書き起こしてください。", "user", "assistant"]
    model, processor = build_model(cfg, texts)
    trainable = apply_stage(model, stage)
    if t.get("gradient_checkpointing"):
        model.language_model.gradient_checkpointing_enable()
    reference = None
    if stage == "dpo":
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(t.get("learning_rate", 1e-4)),
                                  weight_decay=float(t.get("weight_decay", 0.0)))
    max_steps = int(t["max_steps"])
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(t.get("warmup_steps", 0)), max_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    if reference is not None:
        reference = reference.to(accelerator.device)

    output_dir.mkdir(parents=True, exist_ok=True)
    start = 0
    checkpoint, step_found = _latest_checkpoint(output_dir)
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        start = step_found
        log(f"resumed from {checkpoint.name} (step {start})")

    raw = accelerator.unwrap_model(model)
    result = {"stage": stage, "trainable": trainable, "start_step": start}
    if eval_examples and start == 0 and accelerator.is_main_process:
        result["cer_before"], _ = greedy_cer(raw, processor, eval_examples)
        log(f"greedy CER before training: {result['cer_before']:.1f} %")

    batch_size = int(t.get("per_device_batch_size", 4))
    stream = mixture(sources, seed=seed, counters=counters)
    per_step = batch_size * accelerator.num_processes
    for _ in range(start * per_step * accelerator.gradient_accumulation_steps):  # deterministic data resume
        next(stream)
    beta = float(t.get("beta", 0.1))
    losses, t0 = [], time.perf_counter()
    model.train()
    for step in range(start, max_steps):
        for _ in range(accelerator.gradient_accumulation_steps):
            examples = [next(stream) for _ in range(per_step)][accelerator.process_index::accelerator.num_processes]
            with accelerator.accumulate(model):
                if stage == "dpo":
                    batch = {k: v.to(accelerator.device) for k, v in collate_dpo(examples, processor).items()}
                    pc, pr = pair_logps(accelerator.unwrap_model(model), batch)
                    with torch.no_grad():
                        rc, rr = pair_logps(reference, batch)
                    loss, _ = dpo_loss(pc, pr, rc, rr, beta)
                else:
                    batch = {k: v.to(accelerator.device) for k, v in collate(examples, processor).items()}
                    loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and t.get("max_grad_norm"):
                    accelerator.clip_grad_norm_(params, float(t["max_grad_norm"]))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
        losses.append(float(accelerator.gather(loss.detach().reshape(1)).mean()))
        done = step + 1
        if done % int(t.get("log_steps", 10)) == 0 or done == max_steps:
            log(f"step {done}/{max_steps} loss {losses[-1]:.4f} ({time.perf_counter() - t0:.0f} s)")
        every = int(cfg.get("eval", {}).get("every_steps", 0))
        if eval_examples and every and done % every == 0 and done < max_steps and accelerator.is_main_process:
            cer, _ = greedy_cer(accelerator.unwrap_model(model), processor, eval_examples)
            result.setdefault("cer_during", []).append([done, cer])
            log(f"step {done}: greedy CER {cer:.1f} %")
        if done % int(t.get("save_steps", max_steps)) == 0 or done == max_steps:
            path = output_dir / f"checkpoint-{done}"
            accelerator.save_state(str(path))
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                (path / "done").write_text(str(done))
    warn_skipped(counters)
    result.update({"first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
                   "steps": max_steps, "losses": losses, "skipped_undecodable": counters.undecodable,
                   "skipped_too_long": counters.too_long})
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        raw = accelerator.unwrap_model(model)
        if eval_examples:
            result["cer_after"], hyps = greedy_cer(raw, processor, eval_examples)
            result["examples"] = [{"reference": e.response, "hypothesis": h} for e, h in zip(eval_examples[:5], hyps)]
            log(f"greedy CER after training: {result['cer_after']:.1f} %")
        raw.save_pretrained(output_dir / "final")
        processor.save_pretrained(output_dir / "final")
        (output_dir / "final" / "train_result.json").write_text(json.dumps(
            {k: v for k, v in result.items() if k != "losses"}, ensure_ascii=False, indent=1), encoding="utf-8")
    return result

