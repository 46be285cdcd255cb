"""The training loop: `jaspeech train CONFIG.yaml` for every stage, on CPU or many GPUs (accelerate).

`setup` builds the run (model, data, optimiser, accelerate), `fit` runs the steps with periodic
checkpoints and greedy-CER evaluation, `finish` evaluates and saves `<output_dir>/final`.
Checkpoints (`accelerate` state) go to `<output_dir>/checkpoint-<step>`; a rerun resumes from the latest.
The final model and processor are saved with `save_pretrained` to `<output_dir>/final`.

Under DDP and FSDP every rank runs the same evaluation (generation is synchronised across ranks) and
takes part in gathering the final weights; only the main process writes.
"""
from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from jaspeech.cer import corpus_rates, kotoba_normalize
from jaspeech.model import prompts
from jaspeech.model.train.batches import collate, collate_dpo
from jaspeech.model.train.config import apply_stage, enable_checkpointing, load_config
from jaspeech.model.train.data import Counters, Example, mixture, warn_skipped
from jaspeech.model.train.distributed import prepare_generation, save_final
from jaspeech.model.train.dpo import dpo_loss, pair_logps

ARCHITECTURE_KEYS = ("adapter_width", "adapter_bias", "audio_token_rounding", "prompt_format")
ASR_TASKS = ("asr_ja", "asr_en")


# --- model ----------------------------------------------------------------------------------------

def build_model(cfg: dict, texts_for_tokenizer: list[str] | None = None):
    """(model, processor) from `model.init`: `parts` (pretrained encoder + LLM), `checkpoint`, or `tiny`.

    `parts` and `tiny` take the architecture choices `adapter_width` (x the LLM width; the original: 2),
    `adapter_bias`, `audio_token_rounding` (ceil | floor) and `prompt_format` (chat | original-v1 |
    original-v2); a checkpoint brings its own.
    """
    m = cfg["model"]
    choices = {k: m[k] for k in ARCHITECTURE_KEYS if k in m}
    if m["init"] == "parts":
        from jaspeech.model.parts import from_pretrained_parts

        return from_pretrained_parts(m["encoder"], m["llm"], **choices)
    if m["init"] == "checkpoint":
        from jaspeech.model import JaSpeechLLMForConditionalGeneration, JaSpeechLLMProcessor

        if choices:
            raise ValueError(f"model.{', model.'.join(choices)}: a checkpoint brings its own architecture and "
                             "prompt format; remove these keys (or start from `init: parts`)")
        return (JaSpeechLLMForConditionalGeneration.from_pretrained(m["path"]),
                JaSpeechLLMProcessor.from_pretrained(m["path"]))
    if m["init"] != "tiny":
        raise ValueError("model.init must be parts, checkpoint or tiny")
    from jaspeech.model.parts import tiny

    return tiny(texts_for_tokenizer or [], d_model=int(m.get("d_model", 64)), hidden_size=int(m.get("hidden_size", 128)),
                layers=int(m.get("layers", 2)), vocab_size=int(m.get("vocab_size", 800)), seed=int(cfg.get("seed", 0)),
                **choices)


def _tokenizer_texts(sources: list[dict], seed: int, n: int) -> list[str]:
    """Texts a tiny tokenizer is trained on: the data's responses and every prompt string."""
    stream = mixture(sources, seed=seed, counters=Counters())
    texts = []
    for e in (next(stream) for _ in range(n)):
        texts += [e.response or "", e.chosen or "", e.rejected or ""] + [t["text"] for t in e.turns]
    fixed = [v for k, v in vars(prompts).items() if not k.startswith("_") and isinstance(v, str)]
    fixed += list(prompts.CHAT_INSTRUCTIONS.values()) + list(prompts.ORIGINAL_V1_INSTRUCTIONS.values())
    return [t for t in texts if t] + fixed + ["user", "assistant", "system"]


# --- evaluation hook ------------------------------------------------------------------------------

@torch.no_grad()
def greedy_cer(model, processor, examples: list[Example], max_new_tokens: int = 48,
               synced: bool = False) -> tuple[float, list[str]]:
    """Greedy transcripts of ASR examples and their corpus CER (kotoba-whisper normalisation), in percent.

    `synced`: several ranks generate together (DDP, FSDP); each rank must pass the same examples.
    """
    was_training = model.training
    model.eval()
    hyps = []
    device = next(model.parameters()).device
    for e in examples:
        prompt = processor.render(processor.task_messages(e.task, e.turns), add_generation_prompt=True)
        inputs = {k: v.to(device) for k, v in processor(text=[prompt], audio=e.audio).items()}
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, synced_gpus=synced,
                             pad_token_id=processor.tokenizer.pad_token_id,
                             eos_token_id=processor.tokenizer.eos_token_id)
        hyps.append(processor.batch_decode(out, skip_special_tokens=True)[0])
    model.train(was_training)
    rates = corpus_rates([kotoba_normalize(e.response) for e in examples], [kotoba_normalize(h) for h in hyps])
    return rates.cer, hyps


def _eval_examples(sources: list[dict], seed: int, n: int) -> list[Example]:
    """The first `n` ASR examples of the mix (another seed than training); none if the mix has no ASR."""
    if not n:
        return []
    stream, found = mixture(sources, seed=seed + 1, counters=Counters()), []
    for _ in range(50 * n):
        e = next(stream)
        if e.task in ASR_TASKS:
            found.append(e)
            if len(found) == n:
                break
    return found


# --- learning rate --------------------------------------------------------------------------------

def lr_scheduler(optimizer, t: dict, max_steps: int):
    """`cosine` (ours) or `linear` (the original's: warm-up from 10 % of the rate, then linear decay to 10 %
    over `schedule_steps`; its scripts passed 1e9 steps, so the rate stayed ~constant after warm-up)."""
    from transformers import get_cosine_schedule_with_warmup

    warmup, total = int(t.get("warmup_steps", 0)), int(t.get("schedule_steps", max_steps))
    kind = t.get("lr_schedule", "cosine")
    if kind == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, total)
    if kind != "linear":
        raise ValueError("training.lr_schedule must be cosine or linear")

    def factor(step: int) -> float:
        if step < warmup:
            return 0.1 + 0.9 * step / warmup
        return 0.1 + 0.9 * (1 - (step - warmup) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --- the run --------------------------------------------------------------------------------------

@dataclass
class Run:
    cfg: dict
    accelerator: object
    model: torch.nn.Module  # as prepared by accelerate (DDP/FSDP-wrapped when distributed)
    processor: object
    optimizer: object
    scheduler: object
    params: list
    reference: torch.nn.Module | None
    eval_examples: list
    log: object = print  # the main process's log; silent on the other ranks
    counters: Counters = field(default_factory=Counters)
    result: dict = field(default_factory=dict)
    start: int = 0


def _latest_checkpoint(output_dir: Path) -> tuple[Path | None, int]:
    found = [(int(m.group(1)), p) for p in output_dir.glob("checkpoint-*")
             if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / "done").exists()]
    if not found:
        return None, 0
    step, path = max(found)
    return path, step


def _accelerator(cfg: dict):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    t = cfg.get("training", {})
    if AcceleratorState._shared_state:
        # a previous train() in this process fixed the precision settings process-wide; forget them (the
        # distributed PartialState is kept) so each recipe gets its own, as accelerate's own tests do
        AcceleratorState._reset_state()
    # a text-only batch leaves the adapter unused: DDP must then not wait for its gradients
    text_only = any(s.get("kind") == "text" for s in cfg["data"]["sources"])
    return Accelerator(
        cpu=bool(t.get("cpu", not torch.cuda.is_available())),  # CPU-only: gloo DDP under torchrun
        mixed_precision="bf16" if t.get("bf16") else "no",
        gradient_accumulation_steps=int(t.get("gradient_accumulation_steps", 1)),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=text_only)])


def _multi_turn_audio(processor, original: bool, log) -> None:
    """Set how the processor hears dialogues to what this run trains on, so the saved model says so.

    `training.original_multi_turn_audio: true` trains (and saves the processor) with the original
    ja-speech-llm's rule: every clip of a batch holding a multi-turn row is its whole padded 30 s window
    (see `batches`); continued training of an original checkpoint then sees what the checkpoint learned.
    Off (our recipes): every clip trimmed to its audio, as our own models are trained and run.
    """
    if original and processor.prompt_format == "chat":
        raise ValueError("training.original_multi_turn_audio is the original ja-speech-llm's rule for its prompt "
                         "formats; this model renders the chat format")
    wanted = "full_window" if original else "trimmed"
    if processor.multi_turn_audio != wanted:
        log(f"multi_turn_audio: {processor.multi_turn_audio} -> {wanted} (training.original_multi_turn_audio: "
            f"{str(original).lower()}); dialogues are trained and saved {wanted}")
    processor.multi_turn_audio = wanted


def setup(cfg: dict, log=print) -> Run:
    """Accelerator, model (frozen per stage), optimiser and schedule, evaluation examples; resumes if it can."""
    t = cfg.get("training", {})
    accelerator = _accelerator(cfg)
    if not accelerator.is_main_process:
        log = lambda *args, **kwargs: None  # noqa: E731 - one rank reports
    sources, seed = cfg["data"]["sources"], int(cfg.get("seed", 0))
    eval_examples = _eval_examples(sources, seed, int(cfg.get("eval", {}).get("examples", 0)))
    texts = None
    if cfg["model"]["init"] == "tiny":  # the tiny tokenizer is trained on the data's text
        texts = _tokenizer_texts(sources, seed, int(cfg["model"].get("tokenizer_examples", 64)))
    model, processor = build_model(cfg, texts)
    _multi_turn_audio(processor, bool(t.get("original_multi_turn_audio", False)), log)
    trainable = apply_stage(model, cfg["stage"])
    if t.get("gradient_checkpointing"):
        enable_checkpointing(model.language_model)
    reference = None
    if cfg["stage"] == "dpo":
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(t.get("learning_rate", 1e-4)),
                                  weight_decay=float(t.get("weight_decay", 0.0)))
    scheduler = lr_scheduler(optimizer, t, int(t["max_steps"]))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    prepare_generation(accelerator.unwrap_model(model))
    if reference is not None:  # a full copy on every rank, in the compute precision (bf16: 16 GB for 8B)
        reference = reference.to(accelerator.device, dtype=torch.bfloat16 if t.get("bf16") else None)
    run = Run(cfg, accelerator, model, processor, optimizer, scheduler, params, reference, eval_examples, log)
    run.result = {"stage": cfg["stage"], "trainable": trainable}
    output_dir = Path(cfg["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint, step_found = _latest_checkpoint(output_dir)
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        run.start = step_found
        log(f"resumed from {checkpoint.name} (step {run.start})")
    run.result["start_step"] = run.start
    return run


def evaluate(run: Run) -> tuple[float, list[str]]:
    """Greedy CER on the evaluation examples, run by every rank (FSDP needs all of them to generate)."""
    acc = run.accelerator
    return greedy_cer(acc.unwrap_model(run.model), run.processor, run.eval_examples, synced=acc.num_processes > 1)


def step_loss(run: Run, examples: list[Example]) -> torch.Tensor:
    """One micro-batch's loss, computed through the prepared (wrapped) model."""
    t, device = run.cfg.get("training", {}), run.accelerator.device
    original = bool(t.get("original_multi_turn_audio", False))
    if run.cfg["stage"] == "dpo":
        batch = {k: v.to(device) for k, v in collate_dpo(examples, run.processor, original).items()}
        pc, pr = pair_logps(run.model, batch)
        with torch.no_grad():
            rc, rr = pair_logps(run.reference, batch)
        return dpo_loss(pc, pr, rc, rr, float(t.get("beta", 0.1)))[0]
    batch = collate(examples, run.processor, t.get("loss_on", "response"), original)
    return run.model(**{k: v.to(device) for k, v in batch.items()}).loss


def fit(run: Run) -> dict:
    """The optimiser steps from `run.start` to `max_steps`, with checkpoints and periodic evaluation."""
    cfg, acc, log = run.cfg, run.accelerator, run.log
    t, output_dir, result = cfg.get("training", {}), Path(cfg["output_dir"]), run.result
    max_steps = int(t["max_steps"])
    if run.eval_examples and run.start == 0:
        result["cer_before"], _ = evaluate(run)
        log(f"greedy CER before training: {result['cer_before']:.1f} %")
    stream = mixture(cfg["data"]["sources"], seed=int(cfg.get("seed", 0)), counters=run.counters)
    per_step = int(t.get("per_device_batch_size", 4)) * acc.num_processes
    for _ in range(run.start * per_step * acc.gradient_accumulation_steps):  # deterministic data resume
        next(stream)
    losses, t0 = [], time.perf_counter()
    run.model.train()
    for step in range(run.start, max_steps):
        for _ in range(acc.gradient_accumulation_steps):
            examples = [next(stream) for _ in range(per_step)][acc.process_index::acc.num_processes]
            with acc.accumulate(run.model):
                loss = step_loss(run, examples)
                acc.backward(loss)
                if acc.sync_gradients and t.get("max_grad_norm"):
                    acc.clip_grad_norm_(run.params, float(t["max_grad_norm"]))
                run.optimizer.step()
                run.scheduler.step()
                run.optimizer.zero_grad()
        losses.append(float(acc.gather(loss.detach().reshape(1)).mean()))
        done = step + 1
        if done % int(t.get("log_steps", 10)) == 0 or done == max_steps:
            log(f"step {done}/{max_steps} loss {losses[-1]:.4f} ({time.perf_counter() - t0:.0f} s)")
        every = int(cfg.get("eval", {}).get("every_steps", 0))
        if run.eval_examples and every and done % every == 0 and done < max_steps:
            cer, _ = evaluate(run)
            result.setdefault("cer_during", []).append([done, cer])
            log(f"step {done}: greedy CER {cer:.1f} %")
        if done % int(t.get("save_steps", max_steps)) == 0 or done == max_steps:
            path = output_dir / f"checkpoint-{done}"
            acc.save_state(str(path))
            acc.wait_for_everyone()
            if acc.is_main_process:
                (path / "done").write_text(str(done))
    warn_skipped(run.counters)
    result.update({"first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
                   "steps": max_steps, "losses": losses, "skipped_undecodable": run.counters.undecodable,
                   "skipped_too_long": run.counters.too_long, "skipped_long_response": run.counters.long_response})
    return result


def finish(run: Run) -> dict:
    """Final evaluation and `<output_dir>/final` (model + processor + train_result.json)."""
    acc, result, log = run.accelerator, run.result, run.log
    final = Path(run.cfg["output_dir"]) / "final"
    acc.wait_for_everyone()
    if run.eval_examples:
        result["cer_after"], hyps = evaluate(run)
        result["examples"] = [{"reference": e.response, "hypothesis": h} for e, h in zip(run.eval_examples[:5], hyps)]
        log(f"greedy CER after training: {result['cer_after']:.1f} %")
    save_final(acc, run.model, run.processor, final)
    if acc.is_main_process:
        (final / "train_result.json").write_text(json.dumps(
            {k: v for k, v in result.items() if k != "losses"}, ensure_ascii=False, indent=1), encoding="utf-8")
    return result


def train(config_path: str | Path, overrides: list[str] | None = None, log=print) -> dict:
    """Run a recipe file end to end; returns the result (losses, CER before/during/after, skipped clips)."""
    run = setup(load_config(config_path, overrides), log)
    fit(run)
    return finish(run)
