"""GPU cost of the synthetic-speech corpora, measured through the code a build runs: GPU-seconds per audio-second.

What one spoken second costs on one GPU, with random weights of the real shapes (the cost of a forward pass
does not depend on what the weights are; nothing is downloaded, no upstream package is needed):

  tts      `CosyVoice2Runtime.synthesize_batch` (jaspeech/synthesis/tts/cosyvoice2_runtime), the call a build's
           row builder makes once per group: the LM (CosyVoice2-0.5B's Qwen2 with its speech embedding and
           decoder, static KV cache, CUDA-graph decode step, continuous batching), the flow (10 Euler steps with
           classifier-free guidance, length-sorted batches by a frame budget) and HiFT (batched). The model folder
           is written here in upstream's layout (cosyvoice2.yaml, llm.pt, flow.pt, hift.pt, CosyVoice-BlankEN/) from the
           runtime's own modules with random weights, then loaded back by `from_folder` exactly as a build
           loads FunAudioLLM/CosyVoice2-0.5B. Every sentence is one item of `batch` items, each 8 s of speech:
           its text is 100 kana (one token each: a byte-level BPE with one merge chain per kana stands in for Qwen2's) and the
           LM's end-of-speech logit is raised, so every sentence stops at upstream's minimum length (2 speech
           tokens per text token, 200 tokens = 8 s) and no retry fires. Speakers: 20 random prompts of 5 s
           (125 speech tokens, their mel and embedding), as the frontend would have registered them.
  ear      `TransformersWhisperASR.transcribe` (jaspeech/synthesis/asr/transformers_whisper.py), the round trip of
           a GPU build: Whisper-large-v3 and whisper-large-v3-turbo shapes (the same encoder; 32 vs 4 decoder
           layers), fp16, 30 s windows, one 8 s clip per sentence, 50 transcript tokens each (random weights
           never stop by themselves: the per-window cap is set to 50), at several batch sizes.

Printed: GPU-s per audio-s for each TTS part at each batch size, the ear at each batch, the whole job (TTS at
its best batch + each ear at its best), the ratio to the original corpora's 0.56, and a JSON line for the log.

    python benchmarks/gpu_cost.py                       # on one GPU (planned for < 8 minutes on an H200)
    python benchmarks/gpu_cost.py --dry-run             # the plan, no GPU, no model built
    python benchmarks/gpu_cost.py --device cpu --tiny   # the same code on tiny shapes and 1 s sentences

On a GPU node without the offline extra, carry `soxr` and `soundfile` (the round trip's resampler and FLAC)
with torch, transformers, numpy, pyyaml and jinja2.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from jaspeech.synthesis.tts.cosyvoice2_runtime.config import ModelSizes, model_yaml  # noqa: E402  (yaml only)

ORIGINAL_GPU_H_PER_AUDIO_H = 0.56  # the original corpora: ~600 H200-hours for ~1,075 hours of speech
UPSTREAM_API_GPU_H_PER_AUDIO_H = 0.73  # --tts cosyvoice2-upstream, benchmarks/results/h200-2026-11-27/gpu_cost.log
TARGET_TTS = 0.005  # issue 22: TTS <= 0.005 GPU-h per audio-h, the whole job <= 0.01
TARGET_TOTAL = 0.01
TOKENS_PER_SECOND = 25  # CosyVoice2's speech tokens per second of audio
KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポ"


@dataclass(frozen=True)
class Shapes:
    """CosyVoice2-0.5B (its cosyvoice2.yaml: `tts`, and Qwen2-0.5B's config) and Whisper-large-v3."""

    tts: ModelSizes = ModelSizes()  # cosyvoice2.yaml's sizes (hidden is Qwen2's hidden size)
    qwen_layers: int = 24
    qwen_heads: int = 14
    qwen_kv_heads: int = 2
    qwen_ffn: int = 4864
    qwen_vocab: int = 151936
    whisper_d: int = 1280
    whisper_encoder_layers: int = 32
    whisper_heads: int = 20
    whisper_ffn: int = 5120
    whisper_mels: int = 128
    whisper_vocab: int = 51866


TINY = Shapes(tts=ModelSizes(hidden=64, speech_tokens=100, flow_heads=2, flow_ffn=64, flow_blocks=1, dec_channels=32,
                             dec_head_dim=16, dec_blocks=1, dec_mid_blocks=1, dec_heads=2, hift_channels=32,
                             hift_res_kernels=(3,), hift_dilations=((1, 3),), f0_channels=32),
              qwen_layers=2, qwen_heads=4, qwen_kv_heads=2, qwen_ffn=128, qwen_vocab=512, whisper_d=64,
              whisper_encoder_layers=2, whisper_heads=2, whisper_ffn=128)

EARS = {"whisper-large-v3": 32, "whisper-large-v3-turbo": 4}  # decoder layers; the encoder is the same
TINY_EARS = {"whisper-large-v3": 2, "whisper-large-v3-turbo": 1}


@dataclass(frozen=True)
class Plan:
    audio_seconds: float = 8.0  # one sentence's speech
    prompt_seconds: float = 5.0  # the reference clip (its tokens and mel prefix every sentence)
    prompt_text: int = 40  # tokens of the reference clip's transcript
    transcript_tokens: int = 50  # per round-trip clip
    batches: tuple = (1, 16, 64, 256)  # sentences per synthesize_batch call
    ear_batches: tuple = (16, 64, 128)  # windows per generate call
    repeats: int = 2

    @property
    def text_tokens(self) -> int:  # the LM stops at 2 speech tokens per text token
        return round(TOKENS_PER_SECOND * self.audio_seconds / 2)

    @property
    def prompt_tokens(self) -> int:
        return round(TOKENS_PER_SECOND * self.prompt_seconds)


TINY_PLAN = Plan(audio_seconds=1.0, prompt_seconds=1.0, prompt_text=8, transcript_tokens=4, batches=(1, 2, 4),
                 ear_batches=(2, 4), repeats=1)


# --- a random model folder of the real shapes, in upstream's layout ------------------------------------------


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which Qwen2's byte-level BPE uses."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def write_tokenizer(folder: Path) -> int:
    """A byte-level BPE in Qwen2's file layout (vocab.json, merges.txt) whose merges make exactly one token of each
    kana (its three UTF-8 bytes), so a text's token count is its length; stands in for Qwen2's real BPE, whose
    files are not here. Returns the vocabulary size."""
    table = _byte_alphabet()
    vocab = {"<|endoftext|>": 0, **{c: 1 + i for i, c in enumerate(table[b] for b in range(256))}}
    merges: list[str] = []
    for char in dict.fromkeys(KANA + "。、"):
        a, b, c = (table[x] for x in char.encode("utf-8"))
        for left, right in ((a, b), (a + b, c)):
            if left + right not in vocab:
                vocab[left + right] = len(vocab)
                merges.append(f"{left} {right}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": None, "model_max_length": 32768}), encoding="utf-8")
    return len(vocab)


def write_model_folder(folder: Path, s: Shapes, device: str) -> Path:
    """cosyvoice2.yaml, CosyVoice-BlankEN/ and random llm.pt / flow.pt / hift.pt in upstream's layout, written
    from the runtime's own modules (which load upstream's files strictly: tests/synthesis/cosyvoice2_runtime)."""
    import torch
    from transformers import Qwen2Config

    from jaspeech.synthesis.tts.cosyvoice2_runtime.flow import CosyVoice2Flow
    from jaspeech.synthesis.tts.cosyvoice2_runtime.hift import CosyVoice2HiFT, unfold_weight_norm
    from jaspeech.synthesis.tts.cosyvoice2_runtime.llm import CosyVoice2LM

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cosyvoice2.yaml").write_text(model_yaml(s.tts), encoding="utf-8")
    blank = folder / "CosyVoice-BlankEN"
    write_tokenizer(blank)
    Qwen2Config(vocab_size=s.qwen_vocab, hidden_size=s.tts.hidden, intermediate_size=s.qwen_ffn,
                num_hidden_layers=s.qwen_layers, num_attention_heads=s.qwen_heads, num_key_value_heads=s.qwen_kv_heads,
                max_position_embeddings=32768, rope_theta=1e6, tie_word_embeddings=True).save_pretrained(blank)
    torch.manual_seed(0)
    with torch.device(device):
        lm = CosyVoice2LM.build(folder)
        with torch.no_grad():  # end of speech as soon as it is allowed: every sentence stops at 2 tokens per text token
            lm.llm_decoder.bias[lm.speech_token_size] = 30.0
        torch.save({k: v.cpu() for k, v in lm.state_dict().items()}, folder / "llm.pt")
        del lm
        torch.save({k: v.cpu() for k, v in CosyVoice2Flow.build(folder).state_dict().items()}, folder / "flow.pt")
        hift = {k: v.cpu() for k, v in CosyVoice2HiFT.build(folder).state_dict().items()}
        torch.save(unfold_weight_norm(hift), folder / "hift.pt")
    return folder


def random_speakers(s: Shapes, plan: Plan, n: int = 20) -> dict:
    """20 registered voices as the frontend would cache them: transcript tokens, 25 Hz prompt tokens, their mel
    (2 frames per token) and a CAM++ embedding, random."""
    import numpy as np

    from jaspeech.synthesis.speakers import PROFILES
    from jaspeech.synthesis.tts.cosyvoice2_runtime.frontend import SpeakerPrompt

    rng = np.random.default_rng(0)
    return {p.name: SpeakerPrompt(p.name, "", rng.integers(2, 2 + len(KANA), plan.prompt_text).tolist(),
                                  rng.integers(0, s.tts.speech_tokens, plan.prompt_tokens).tolist(),
                                  (rng.standard_normal((2 * plan.prompt_tokens, 80)) * 2 - 4).astype(np.float32),
                                  rng.standard_normal(192).astype(np.float32))
            for p in PROFILES[:n]}


# --- timing ------------------------------------------------------------------------------------------------


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_tts(runtime, plan: Plan, batch: int, device: str) -> dict:
    """synthesize_batch of `batch` one-sentence items: a warm-up call, then the median of `repeats`; GPU-s per
    audio-s for the whole call and for each stage (the runtime's own stage timers, synchronised)."""
    from jaspeech.synthesis.batch import SynthesisItem
    from jaspeech.synthesis.speakers import PROFILES

    text = "".join(KANA[(7 * i) % len(KANA)] for i in range(plan.text_tokens))
    items = [SynthesisItem(text, PROFILES[n % 20], 1000 + n) for n in range(batch)]
    runtime.max_batch, runtime.flow_batch = batch, min(batch, 64)
    runtime.synthesize_batch(items)  # warm-up: CUDA graphs captured, kernels chosen
    runs = []
    for _ in range(plan.repeats):
        runtime.timings.update({k: 0.0 if isinstance(v, float) else 0 for k, v in runtime.timings.items()})
        sync(device)
        t0 = time.perf_counter()
        out = runtime.synthesize_batch(items)
        sync(device)
        wall = time.perf_counter() - t0
        failed = [r for r in out if isinstance(r, Exception)]
        if failed:
            raise RuntimeError(f"{len(failed)} of {batch} items failed: {failed[0]}")
        audio = runtime.timings["audio_s"]
        runs.append({"total": wall / audio, "llm": runtime.timings["lm_s"] / audio,
                     "flow": runtime.timings["flow_s"] / audio, "hift": runtime.timings["hift_s"] / audio,
                     "audio_s_per_item": audio / batch})
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


class IdsAsText:
    """STAND-IN for Whisper's tokenizer (benchmark only): random weights produce no words, and decoding ids to
    text is not what the ear's GPU time is spent on; `batch_decode` joins the ids."""

    def __init__(self, feature_extractor):
        self.feature_extractor = feature_extractor

    def batch_decode(self, rows, skip_special_tokens=True):
        return [" ".join(str(int(t)) for t in row) for row in rows]


def build_ear(s: Shapes, decoder_layers: int, device: str, plan: Plan):
    """TransformersWhisperASR around a random Whisper of the real shapes (large-v3's encoder, `decoder_layers`)."""
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from jaspeech.synthesis.asr.transformers_whisper import TransformersWhisperASR

    config = WhisperConfig(vocab_size=s.whisper_vocab, num_mel_bins=s.whisper_mels, d_model=s.whisper_d,
                           encoder_layers=s.whisper_encoder_layers, decoder_layers=decoder_layers,
                           encoder_attention_heads=s.whisper_heads, decoder_attention_heads=s.whisper_heads,
                           encoder_ffn_dim=s.whisper_ffn, decoder_ffn_dim=s.whisper_ffn, max_source_positions=1500,
                           max_target_positions=448, decoder_start_token_id=50258, eos_token_id=50257,
                           pad_token_id=50257, bos_token_id=50257)
    torch.manual_seed(0)
    with torch.device(device):
        model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50258, eos_token_id=50257, pad_token_id=50257, max_length=448, is_multilingual=True,
        lang_to_id={"<|ja|>": 50266}, task_to_id={"translate": 50359, "transcribe": 50360},
        no_timestamps_token_id=50364)
    processor = IdsAsText(WhisperFeatureExtractor(feature_size=s.whisper_mels))
    ear = TransformersWhisperASR(f"random {decoder_layers}-layer-decoder Whisper", device=device,
                                 parts=(model, processor))
    ear.max_new_tokens = plan.transcript_tokens  # random weights never stop: cap every window at a real length
    return ear


def time_ear(ear, plan: Plan, batch: int, device: str) -> float:
    """GPU-s per audio-s of `transcribe` on `batch` clips of one sentence's length, in one call of `batch` windows."""
    import numpy as np

    rng = np.random.default_rng(1)
    clips = [((0.1 * rng.standard_normal(int(16000 * plan.audio_seconds))).astype(np.float32), 16000)
             for _ in range(batch)]
    ear.batch_size = batch
    ear.transcribe(clips)
    runs = []
    for _ in range(plan.repeats):
        ear._recent = type(ear._recent)()  # a first listening encodes: no encoder outputs kept from the warm-up
        sync(device)
        t0 = time.perf_counter()
        ear.transcribe(clips)
        sync(device)
        runs.append((time.perf_counter() - t0) / (batch * plan.audio_seconds))
    return statistics.median(runs)


# the bounds --check holds the runtime to (GPU kernels may round differently by batch shape; estimates: a mel for the
# same tokens within relative L2 1e-2, and the waveform for the same mel within 1e-2 under TF32 convolutions)
FLOW_REL_L2_MAX = 1e-2
HIFT_REL_L2_MAX = 1e-2
PLANTS = ("lm", "flow", "hift")  # --plant: perturb one side of one comparison, so a rehearsal shows the check failing


def check_runtime(runtime, plan: Plan, plant: str | None = None) -> dict:
    """What only a GPU can tell: the LM's CUDA-graph step gives the eager step's tokens; a sentence decoded alone
    and among 7 batch-mates gives the same tokens; its mel alone and in a batch differ by float rounding only
    (relative L2 <= FLOW_REL_L2_MAX); HiFT's batched path gives each row's per-row waveform (relative L2 <=
    HIFT_REL_L2_MAX). Returns the figures and `failed`, the names of the checks that failed. `plant` perturbs one
    side of one comparison (a rehearsal of a failure; never in a real run)."""
    import torch

    from jaspeech.synthesis.tts.cosyvoice2_runtime.llm import LMPrompt

    voice = next(iter(runtime.speakers.values()))
    text = [2 + (5 * i) % len(KANA) for i in range(plan.text_tokens)]
    prompts = [LMPrompt(text[: plan.text_tokens - n], voice.text_tokens, voice.speech_tokens) for n in range(8)]
    seeds = list(range(8))
    graph = runtime.lm.generate(prompts, seeds, max_batch=8, cuda_graph=True)
    eager = runtime.lm.generate(prompts, seeds, max_batch=8, cuda_graph=False)
    if plant == "lm":
        eager[0] = eager[0][:-1] + [(eager[0][-1] + 1) % runtime.lm.speech_token_size]
    alone = runtime.lm.generate(prompts[:1], seeds[:1], max_batch=8)
    device, dtype = runtime.device, runtime.dtype

    def mels(rows):
        return runtime.flow.inference(
            [torch.tensor(graph[n], device=device) for n in rows],
            [torch.tensor(voice.speech_tokens, device=device) for _ in rows],
            [torch.from_numpy(voice.feat).to(device, dtype) for _ in rows],
            torch.from_numpy(voice.embedding).to(device, dtype)[None].expand(len(rows), -1))

    def rel(a, b):
        return float((a - b).norm() / b.norm().clamp_min(1e-12))

    batched = mels(list(range(8)))
    one, together = mels([0])[0].float(), batched[0].float()
    if plant == "flow":
        together = together * 1.1
    wave_mels = [m.float() for m in batched]
    per_row = runtime.hift.inference(wave_mels, seeds)
    wave_batch = runtime.hift.inference_batch(wave_mels, seeds)
    if plant == "hift":
        wave_batch = wave_batch + 0.1 * wave_batch.abs().max()
    hift_rel = max(rel(wave_batch[n, : w.numel()].float(), w.float()) for n, w in enumerate(per_row))
    out = {"graph_equals_eager": graph == eager, "alone_equals_batched": alone[0] == graph[0],
           "tokens_per_row": [len(t) for t in graph], "flow_rel_l2_alone_vs_batched": rel(together, one),
           "hift_rel_l2_batched_vs_row": hift_rel}
    bounds = {"graph_equals_eager": out["graph_equals_eager"], "alone_equals_batched": out["alone_equals_batched"],
              "flow_rel_l2_alone_vs_batched": out["flow_rel_l2_alone_vs_batched"] <= FLOW_REL_L2_MAX,
              "hift_rel_l2_batched_vs_row": hift_rel <= HIFT_REL_L2_MAX}
    out["failed"] = [name for name, ok in bounds.items() if not ok]
    print(f"  checks: {out}", flush=True)
    return out


def verdict(checks: dict) -> str:
    """The one line --check ends with."""
    if checks["failed"]:
        return f"verdict: FAIL ({', '.join(checks['failed'])})"
    return (f"verdict: PASS (graph = eager tokens, alone = batched tokens, flow rel L2 "
            f"{checks['flow_rel_l2_alone_vs_batched']:.2g} <= {FLOW_REL_L2_MAX:g}, HiFT rel L2 "
            f"{checks['hift_rel_l2_batched_vs_row']:.2g} <= {HIFT_REL_L2_MAX:g})")


def run(shapes: Shapes, plan: Plan, device: str, ears: dict, check: bool = False, plant: str | None = None) -> dict:
    import torch

    from jaspeech.synthesis.tts.cosyvoice2_runtime.runtime import CosyVoice2Runtime

    results: dict = {"device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
                     "torch": torch.__version__, "tts": {}, "ear": {}}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = write_model_folder(Path(tmp) / "CosyVoice2-random", shapes, device)
        runtime = CosyVoice2Runtime(folder, random_speakers(shapes, plan), device=device, max_retries=0)
        results["setup_s"] = time.perf_counter() - t0
        if check:
            results["checks"] = check_runtime(runtime, plan, plant)
        for b in plan.batches:
            results["tts"][b] = time_tts(runtime, plan, b, device)
            print(f"  tts batch {b}: {results['tts'][b]['total']:.5f} GPU-s per audio-s", flush=True)
        del runtime
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    for name, layers in ears.items():
        ear = build_ear(shapes, layers, device, plan)
        results["ear"][name] = {b: time_ear(ear, plan, b, device) for b in plan.ear_batches}
        print(f"  {name}: " + ", ".join(f"batch {b} {v:.5f}" for b, v in results["ear"][name].items()), flush=True)
        del ear
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return results


def report(results: dict, plan: Plan) -> dict:
    """Print the table; return the machine-readable summary."""
    tts = results["tts"]
    print(f"\ndevice: {results['device']} (torch {results['torch']}); {plan.audio_seconds:g} s sentences "
          f"({round(TOKENS_PER_SECOND * plan.audio_seconds)} speech tokens), {plan.prompt_seconds:g} s prompts")
    print("GPU-seconds per audio-second (= GPU-hours per audio-hour), through CosyVoice2Runtime.synthesize_batch")
    print(f"{'part':<30}" + "".join(f"{'batch ' + str(b):>12}" for b in plan.batches))
    for part in ("llm", "flow", "hift", "total"):
        print(f"{'TTS ' + part:<30}" + "".join(f"{tts[b][part]:>12.5f}" for b in plan.batches))
    best_b = min(plan.batches, key=lambda b: tts[b]["total"])
    best_tts = tts[best_b]["total"]
    print(f"\nthe round trip through TransformersWhisperASR.transcribe, {plan.transcript_tokens} tokens per clip")
    print(f"{'ear':<30}" + "".join(f"{'batch ' + str(b):>12}" for b in plan.ear_batches))
    best_ear = {}
    for name, by_batch in results["ear"].items():
        print(f"{name:<30}" + "".join(f"{by_batch[b]:>12.5f}" for b in plan.ear_batches))
        best_ear[name] = min(by_batch.values())
    print(f"\n{'whole job (best batches)':<42}{'GPU-h/audio-h':>14}{'vs original':>13}{'1,075 h costs':>16}")
    totals = {name: best_tts + e for name, e in best_ear.items()}
    rows = [(f"TTS alone (batch {best_b})", best_tts)] + [(f"TTS + {name}", t) for name, t in totals.items()]
    for label, value in rows + [("upstream API today (2026-11-27 log)", UPSTREAM_API_GPU_H_PER_AUDIO_H),
                                ("original corpora", ORIGINAL_GPU_H_PER_AUDIO_H)]:
        print(f"{label:<42}{value:>14.5f}{ORIGINAL_GPU_H_PER_AUDIO_H / value:>12.1f}x{1075 * value:>13.1f} h")
    print(f"targets (issue 22): TTS <= {TARGET_TTS}, whole job <= {TARGET_TOTAL}")
    return {"device": results["device"], "torch": results["torch"], "plan": asdict(plan),
            "tts": {str(b): v for b, v in tts.items()},
            "ear": {n: {str(b): v for b, v in d.items()} for n, d in results["ear"].items()},
            "best_tts_batch": best_b, "tts_gpu_h_per_audio_h": best_tts, "total_gpu_h_per_audio_h": totals,
            "original": ORIGINAL_GPU_H_PER_AUDIO_H, "targets": {"tts": TARGET_TTS, "total": TARGET_TOTAL},
            "setup_s": results["setup_s"], "checks": results.get("checks")}


def describe(shapes: Shapes, plan: Plan, device: str) -> None:
    print(f"plan on {device}: shapes {'tiny' if shapes == TINY else 'CosyVoice2-0.5B + Whisper-large-v3'}")
    print(f"  tts: CosyVoice2Runtime.synthesize_batch of {list(plan.batches)} sentences, each "
          f"{plan.text_tokens} text tokens -> {2 * plan.text_tokens} speech tokens ({plan.audio_seconds:g} s), "
          f"prompt {plan.prompt_text} text + {plan.prompt_tokens} speech tokens; flow 10 Euler steps x CFG 2")
    print(f"  ear: Whisper {shapes.whisper_encoder_layers}-layer encoder, decoders {list(EARS.values())} layers, "
          f"batches {list(plan.ear_batches)} x 30 s windows, {plan.transcript_tokens} tokens each")
    print(f"  each timing: 1 warm-up + median of {plan.repeats}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes and 1 s sentences (the code path on CPU too)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and exit: no model, no GPU")
    ap.add_argument("--batches", type=int, nargs="+", help=f"TTS batch sizes (default {' '.join(map(str, Plan.batches))})")
    ap.add_argument("--ear-batches", type=int, nargs="+",
                    help=f"round-trip batch sizes (default {' '.join(map(str, Plan.ear_batches))})")
    ap.add_argument("--audio-seconds", type=float, help=f"one sentence's speech (default {Plan.audio_seconds})")
    ap.add_argument("--repeats", type=int, help=f"timed runs after the warm-up (default {Plan.repeats})")
    ap.add_argument("--ear", choices=("both", "none", *EARS), default="both", help="which ears to time")
    ap.add_argument("--check", action="store_true",
                    help="first check what only a GPU can tell (CUDA-graph vs eager tokens, a row alone vs batched, the "
                         "flow's and HiFT's batch error within their bounds); exit 1 if one fails; a verdict line last")
    ap.add_argument("--plant", choices=PLANTS,
                    help="rehearsal only: perturb one side of one --check comparison, so the check must fail")
    args = ap.parse_args(argv)
    plan = TINY_PLAN if args.tiny else Plan()
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items()
             if k in Plan.__dataclass_fields__ and v is not None}
    plan = replace(plan, **given)
    shapes = TINY if args.tiny else Shapes()
    layers = TINY_EARS if args.tiny else EARS
    ears = {} if args.ear == "none" else layers if args.ear == "both" else {args.ear: layers[args.ear]}
    describe(shapes, plan, args.device)
    if args.dry_run:
        print(json.dumps({"dry_run": True, "device": args.device, "plan": asdict(plan), "shapes": asdict(shapes)}))
        return 0
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run on a GPU, or use --device cpu --tiny to exercise the code path")
        return 2
    t0 = time.perf_counter()
    results = run(shapes, plan, args.device, ears, check=args.check or bool(args.plant), plant=args.plant)
    if not ears:
        results["ear"] = {}
    summary = report(results, plan) if ears else {"tts": {str(b): v for b, v in results["tts"].items()}}
    summary["wall_seconds"] = time.perf_counter() - t0
    summary["checks"] = results.get("checks")
    print(json.dumps(summary))
    if results.get("checks") is not None:
        print(verdict(results["checks"]))
        return 1 if results["checks"]["failed"] else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
