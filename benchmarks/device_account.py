"""GPU cost without a GPU: an account of every kernel, byte, launch and host sync the real job asks of a device.

Each stage of a GPU build runs here on the `meta` device (shapes only, no arithmetic, no memory) at the real depths
and widths of CosyVoice2-0.5B and Whisper-large-v3 / -turbo with random weights, under a TorchDispatchMode that
sees every aten op and records, per op:

  flops     torch.utils.flop_counter's rules where it has one (mm, addmm, bmm, convolution, SDPA kernels), else
            ours: linear 2·out·in, conv1d 2·out·(C_in/groups)·k, conv_transpose1d 2·in·C_out·k, SDPA 4·B·H·Lq·Lk·d,
            everything else one per output element;
  bytes     every input and output tensor's size: an unfused upper bound on the op's memory traffic (a weight is
            read once per op that uses it; a scatter into a tensor, such as the KV-cache write, counts what it
            writes, not the whole destination);
  launches  one per op that does device work (views and host-only tensors: none; a few composites that are
            several kernels on a GPU count their kernels, `MULTI_KERNEL`);
  syncs     ops that make the host wait for the device: `_local_scalar_dense` (.item(), .tolist(), `if t:`),
            `equal`, `is_nonzero`, `nonzero`, `masked_select`, a device-to-host copy, a blocking host-to-device
            copy (pageable memory waits for the queue), and `istft` (its envelope check).

From these, a per-op roofline predicts each stage's GPU time: an op takes max(FLOPs / rate, bytes / bandwidth)
on the device (rate by dtype: fp16/bf16 dense tensor cores, fp32 as TF32 for matmuls and convs, plain fp32
otherwise); run eagerly, the host needs `--host-us` per launch and the device waits when that is longer; in a
CUDA-graph replay a kernel costs GRAPH_US; a sync drains the queue (SYNC_US). Stated constants, `CARDS`.

Calibration: the same account of the eager code the 2026-11-27 H200 log measured (transformers' Qwen2 with a
DynamicCache and the full lm_head, as upstream's `Qwen2LM.inference` runs it, at batch 1/4/16; the flow and HiFT
eagerly at batch 1/4/16; Whisper-large-v3 `generate` at batch 16), predicted for the H200, beside the measured
figures: predicted / measured. The account is trusted where that ratio is within 2x.

Host time per decode step: our LM step and transformers' Qwen2 step at the real depth (24 layers) and a tiny width,
on this CPU: what a launch-bound GPU waits for, per launch (printed beside `--host-us`).

Stages per second of audio for a stated sentence mix (MIX: 1-10 s, ten of each, a group of 100 sentences, with
CosyVoice2's 25 speech tokens per second, 6 text tokens per second, a 5 s voice prompt), before and after each cut.

    python benchmarks/device_account.py            # the table (~2-4 minutes on 2 cores)
    python benchmarks/device_account.py --json     # and one JSON line last
    python benchmarks/device_account.py --quick    # fewer cases (the every-benchmark test's size)
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils.flop_counter import flop_registry  # noqa: E402

from jaspeech.synthesis.tts.cosyvoice2_runtime.config import ModelSizes, model_yaml  # noqa: E402
from jaspeech.synthesis.tts.cosyvoice2_runtime.graphs import bucket, budget_batches, padding_waste  # noqa: E402

TOKENS_PER_SECOND = 25
TEXT_TOKENS_PER_SECOND = 6  # Qwen2 tokens of a Japanese sentence per second of its speech (stated estimate)
PROMPT_SECONDS, PROMPT_TEXT = 5.0, 40
SAMPLES_PER_TOKEN = 960  # 24 kHz, 2 mel frames per token, 480 samples per frame
MIX = [s for s in range(1, 11) for _ in range(10)]  # seconds per sentence: a group of 100, 1-10 s
CHECK_EVERY = 8

# stated device constants (dense peak, no sparsity): FLOP/s by kind, HBM bytes/s; GRAPH_US per kernel in a graph
# replay, SYNC_US per host wait (queue drain + round trip). Sources: NVIDIA H100 SXM / H200 datasheets.
CARDS = {
    "h100": {"half": 989e12, "tf32": 494e12, "fp32": 67e12, "fp64": 67e12, "bw": 3.35e12},
    "h200": {"half": 989e12, "tf32": 494e12, "fp32": 67e12, "fp64": 67e12, "bw": 4.8e12},
}
GRAPH_US = 1.5
SYNC_US = 20.0
# eager host cost per launch on the GPU node's CPU: the 2026-11-27 log's batch-1 LM took 24 ms per decode step
# (0.601 GPU-s per audio-s x 8 s / 200 steps), ~1,000 launches a step by this account: 24 us each (this CPU measures
# ~20-23 us per launch for the same step at a tiny width, `host` below)
HOST_US = 24.0
# the share of the datasheet peaks a real kernel mix reaches: fitted on one point, the log's flow at batch 16 (the
# most compute-bound measurement: predicted at peak / measured = 0.39), applied to every op; all other calibration
# rows are checks of it
EFFICIENCY = 0.4
WASTE = 0.15  # the runtime's max padded share of a flow / HiFT batch (runtime.py max_waste)

# the 2026-11-27 H200 log (benchmarks/results/h200-2026-11-27/gpu_cost.log): GPU-s per audio-s, 8 s sentences
MEASURED = {"llm": {1: 0.6012, 4: 0.1852, 16: 0.0295}, "flow": {1: 0.0362, 4: 0.0086, 16: 0.0025},
            "hift": {1: 0.0022, 4: 0.0008, 16: 0.0006}, "ear": {16: 0.0170}}

VIEWS = {"view", "_unsafe_view", "reshape", "_reshape_alias", "transpose", "t", "permute", "expand", "slice",
         "select", "unsqueeze", "squeeze", "as_strided", "alias", "detach", "view_as_real", "view_as_complex",
         "unfold", "split", "split_with_sizes", "chunk", "narrow", "lift_fresh", "unbind", "expand_as", "view_as",
         "flatten", "unflatten", "movedim", "_conj", "conj", "resolve_conj", "resolve_neg", "contiguous",
         "set_", "empty", "empty_like", "empty_strided", "new_empty", "squeeze_", "unsqueeze_", "_to_copy_noop"}
SYNC_OPS = {"_local_scalar_dense", "equal", "is_nonzero", "nonzero", "masked_select", "unique_consecutive",
            "_unique2", "item", "istft"}
SCATTERS = {"index_put_", "index_put", "_index_put_impl_", "scatter_", "scatter", "index_copy_", "index_copy",
            "put_", "masked_scatter_"}
MULTI_KERNEL = {"istft": 8, "stft": 3, "multinomial": 3, "sort": 2, "topk": 2, "group_norm": 2, "conv1d": 2,
                "conv_transpose1d": 2}


@dataclass
class Tally:
    """Sums over the ops of one region (a step, a call): device work and host events."""
    flops: float = 0.0
    bytes: float = 0.0
    launches: int = 0
    syncs: int = 0
    h2d: int = 0
    ops: dict = field(default_factory=dict)  # aten op name -> launches
    device_s: dict = field(default_factory=lambda: {c: 0.0 for c in CARDS})  # roofline sum per card
    largest: float = 0.0  # the largest single op's bytes (a lower bound of the peak)
    resident: float = 0.0  # weights and persistent state (the LM's cache) in bytes
    graph_part: "Tally | None" = None  # the share of it that runs as a CUDA-graph replay (the flow's ODE)

    def scaled(self, k: float) -> "Tally":
        return Tally(self.flops * k, self.bytes * k, self.launches * k, self.syncs * k, self.h2d * k,
                     {n: v * k for n, v in self.ops.items()}, {c: v * k for c, v in self.device_s.items()},
                     self.largest, self.resident, None if self.graph_part is None else self.graph_part.scaled(k))

    def __add__(self, other: "Tally") -> "Tally":
        ops = dict(self.ops)
        for n, v in other.ops.items():
            ops[n] = ops.get(n, 0) + v
        parts = [p for p in (self.graph_part, other.graph_part) if p is not None]
        return Tally(self.flops + other.flops, self.bytes + other.bytes, self.launches + other.launches,
                     self.syncs + other.syncs, self.h2d + other.h2d, ops,
                     {c: self.device_s[c] + other.device_s[c] for c in CARDS}, max(self.largest, other.largest),
                     max(self.resident, other.resident), parts[0] if len(parts) == 1 else
                     (parts[0] + parts[1] if parts else None))

    def predict(self, card: str, graph: bool = False, host_us: float = HOST_US) -> float:
        """Seconds on `card`: eager, the device waits for the host where a launch's host cost exceeds its kernel
        (summed per launch: max(device, host) is bounded below by the device sum and by the host sum)."""
        if self.graph_part is not None and not graph:  # part eager, part replayed
            g = self.graph_part
            eager = self + g.scaled(-1)
            eager.graph_part = None
            return eager.predict(card, False, host_us) + g.predict(card, True, host_us)
        if graph:
            return self.device_s[card] + self.launches * GRAPH_US * 1e-6 + self.syncs * SYNC_US * 1e-6
        host = self.launches * host_us * 1e-6
        return max(self.device_s[card], host) + self.syncs * SYNC_US * 1e-6


def _tensors(x):
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for y in x:
            yield from _tensors(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _tensors(y)


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _flops(name: str, func, args, kwargs, out) -> float:
    packet = func._overloadpacket
    if packet in flop_registry:
        try:
            return float(flop_registry[packet](*args, **kwargs, out_val=out))
        except Exception:  # noqa: BLE001 (a rule that does not take these arguments: fall through to ours)
            pass
    outs = list(_tensors(out))
    if name == "linear":
        return 2.0 * outs[0].numel() * args[1].shape[1]
    if name == "conv1d":
        w = args[1]
        return 2.0 * outs[0].numel() * w.shape[1] * w.shape[2]
    if name == "conv_transpose1d":
        x, w = args[0], args[1]
        return 2.0 * x.numel() * w.shape[1] * w.shape[2]
    if name == "scaled_dot_product_attention":
        q, k = args[0], args[1]
        return 4.0 * q.numel() * k.shape[-2]
    if name in ("matmul", "bmm", "mm"):
        a, b = args[0], args[1]
        return 2.0 * outs[0].numel() * a.shape[-1]
    if name in ("stft", "istft", "fft_rfft", "fft_irfft"):
        n = max(t.numel() for t in _tensors(args))
        return 5.0 * n * 4
    return float(sum(t.numel() for t in outs))


def _rate(card: dict, name: str, dtype: torch.dtype) -> float:
    heavy = name in ("linear", "conv1d", "conv_transpose1d", "scaled_dot_product_attention", "matmul", "bmm", "mm",
                     "addmm", "convolution", "baddbmm")
    if dtype in (torch.float16, torch.bfloat16):
        return card["half"] if heavy else card["half"] / 16
    if dtype == torch.float64:
        return card["fp64"]
    return card["tf32"] if heavy else card["fp32"]


class Account(TorchDispatchMode):
    """Records every aten op that reaches the dispatcher (run under inference_mode, composites such as linear
    and SDPA arrive whole: one op, as one kernel on a GPU). Meta tensors stand in for device tensors; host
    syncs are recorded and answered with stand-in values (1, True, an empty index)."""

    def __init__(self, device: str = "meta"):
        super().__init__()
        self.device = device
        self.tally = Tally()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name.split("::")[-1]
        inputs = list(_tensors(args)) + list(_tensors(kwargs))
        on_device = any(t.device.type == self.device for t in inputs)
        t = self.tally
        if name in ("_to_copy", "copy_", "to"):
            dst = kwargs.get("device") or (args[0].device if name == "copy_" else None)
            src = args[1] if name == "copy_" else args[0]
            to_host = src.device.type == self.device and dst is not None and torch.device(dst).type == "cpu"
            to_device = src.device.type == "cpu" and dst is not None and torch.device(dst).type == self.device
            if to_host:  # a device-to-host copy: the host waits for the queue
                t.syncs += 1
                t.launches += 1
                t.ops["d2h"] = t.ops.get("d2h", 0) + 1
                return torch.zeros(src.shape, dtype=kwargs.get("dtype") or src.dtype)
            if to_device:
                t.h2d += 1
                t.launches += 1
                t.ops["h2d"] = t.ops.get("h2d", 0) + 1
                if not kwargs.get("non_blocking", False):
                    t.syncs += 1
                return func(*args, **kwargs)
        if on_device and name in SYNC_OPS:
            t.syncs += 1
            t.ops[name] = t.ops.get(name, 0) + 1
            if self.device != "meta":  # real tensors: the real answer (the count is what matters)
                return func(*args, **kwargs)
            if name == "_local_scalar_dense":
                return True if args[0].dtype == torch.bool else 1
            if name in ("equal", "is_nonzero"):
                return True
            if name == "nonzero":
                return torch.zeros(0, args[0].dim(), dtype=torch.long, device=self.device)
            if name == "istft":  # its envelope check cannot run on meta: the output's shape, and its kernels
                spec, n_fft, hop = args[0], args[1], args[2]
                out = torch.zeros(spec.shape[0], hop * (spec.shape[-1] - 1), device=self.device,
                                  dtype=torch.float64 if spec.dtype == torch.complex128 else torch.float32)
                t.launches += MULTI_KERNEL["istft"]
                t.flops += _flops(name, func, args, kwargs, out)
                moved = _nbytes(spec) + 3 * _nbytes(out)
                t.bytes += moved
                for card, c in CARDS.items():
                    t.device_s[card] += moved / c["bw"] / EFFICIENCY + MULTI_KERNEL["istft"] * 2e-6
                return out
        out = func(*args, **kwargs)
        if not on_device or name in VIEWS:
            return out
        flops = _flops(name, func, args, kwargs, out)
        if name in SCATTERS:  # writes only the indexed elements: not the whole destination (the KV cache)
            moved = 2 * sum(_nbytes(x) for x in inputs[1:])
        else:
            moved = sum(_nbytes(x) for x in inputs) + sum(_nbytes(x) for x in _tensors(out))
        kernels = MULTI_KERNEL.get(name, 1)
        t.flops += flops
        t.bytes += moved
        t.launches += kernels
        t.ops[name] = t.ops.get(name, 0) + kernels
        t.largest = max(t.largest, moved)
        dtype = next((x.dtype for x in inputs if x.is_floating_point()), torch.float32)
        for card, c in CARDS.items():
            t.device_s[card] += max(flops / _rate(c, name, dtype), moved / c["bw"]) / EFFICIENCY + (kernels - 1) * 2e-6
        return out


def account(fn, device: str = "meta", resident: float = 0.0) -> Tally:
    with torch.inference_mode(), Account(device) as acc:
        fn()
    acc.tally.resident = resident
    return acc.tally


def weights(module: torch.nn.Module) -> float:
    return float(sum(p.numel() * p.element_size() for p in module.parameters()))


# --- the models at the real shapes, on meta -------------------------------------------------------------------


def model_folder(tmp: Path, sizes: ModelSizes = ModelSizes()) -> Path:
    """cosyvoice2.yaml and CosyVoice-BlankEN's config at CosyVoice2-0.5B's sizes (no weights: meta)."""
    from transformers import Qwen2Config

    folder = tmp / "CosyVoice2-shapes"
    (folder / "CosyVoice-BlankEN").mkdir(parents=True, exist_ok=True)
    (folder / "cosyvoice2.yaml").write_text(model_yaml(sizes), encoding="utf-8")
    Qwen2Config(vocab_size=151936, hidden_size=sizes.hidden, intermediate_size=4864, num_hidden_layers=24,
                num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1e6,
                tie_word_embeddings=True).save_pretrained(folder / "CosyVoice-BlankEN")
    return folder


def on_meta(build, dtype: torch.dtype):
    with torch.device("meta"):
        module = build()
    return module.to(dtype).eval()


# --- stages ---------------------------------------------------------------------------------------------------


def sentence(seconds: float) -> dict:
    tokens = round(TOKENS_PER_SECOND * seconds)
    text = max(1, round(TEXT_TOKENS_PER_SECOND * seconds))
    prompt_speech = round(TOKENS_PER_SECOND * PROMPT_SECONDS)
    return {"tokens": tokens, "text": text, "prefix": 2 + PROMPT_TEXT + text + prompt_speech,
            "frames": 2 * (prompt_speech + tokens), "mel": 2 * tokens}


def simulate_decode(mix: list[float], slots: int, check_every: int = CHECK_EVERY) -> dict:
    """Continuous batching as llm.decode runs it (rows in input order, lowest free slot, checks every
    `check_every` steps), on the host: steps, checks, finished collections, and each step's live length."""
    rows = [sentence(s) for s in mix]
    waiting = list(range(len(rows)))
    owner, left, start = [-1] * slots, [0] * slots, [0] * slots
    steps = checks = collections = admissions = 0
    live_sum = 0
    cache_len = bucket(max(r["prefix"] + 20 * r["text"] for r in rows), 128)

    def admit():
        nonlocal admissions
        free = [i for i, o in enumerate(owner) if o < 0]
        took = False
        for slot in free:
            if not waiting:
                break
            i = waiting.pop(0)
            owner[slot], left[slot] = i, rows[i]["tokens"] + 1  # + the EOS step
            start[slot] = rows[i]["prefix"] - 1 - steps
            took = True
        admissions += took

    admit()
    while any(o >= 0 for o in owner):
        reach = max(start[s] for s, o in enumerate(owner) if o >= 0) + steps + check_every
        live = min(cache_len, bucket(reach + 1, 128))
        for _ in range(check_every):
            for s in range(slots):
                if owner[s] >= 0 and left[s] > 0:
                    left[s] -= 1
        steps += check_every
        live_sum += live * check_every
        checks += 1
        finished = [s for s, o in enumerate(owner) if o >= 0 and left[s] == 0]
        if finished:
            collections += 1
            for s in finished:
                owner[s] = -1
            admit()
    return {"steps": steps, "checks": checks, "collections": collections, "admissions": admissions,
            "live_mean": live_sum / steps, "cache_len": cache_len,
            "audio_s": sum(mix), "occupancy": sum(r["tokens"] + 1 for r in rows) / (steps * slots)}


def lm_account(folder: Path, dtype: torch.dtype, slots: int, live: int, cache_len: int) -> tuple[Tally, Tally]:
    """Our LM: one decode step over `slots` at a live length, and one prefill chunk of 32 mean-length rows."""
    from jaspeech.synthesis.tts.cosyvoice2_runtime.llm import CosyVoice2LM

    lm = on_meta(lambda: CosyVoice2LM.build(folder), dtype)
    s = lm._slots(slots, cache_len)
    step = account(lambda: lm._step(s, live), resident=weights(lm) + _nbytes(s.cache))
    mean = sentence(sum(MIX) / len(MIX))
    prefixes = [torch.zeros(mean["prefix"], lm.llm_embedding.weight.shape[1], dtype=dtype, device="meta")] * 32
    prefill = account(lambda: lm._prefill(s, list(range(min(32, slots))), prefixes[:min(32, slots)]))
    return step, prefill.scaled(1 / min(32, slots))


def hf_lm_account(folder: Path, dtype: torch.dtype, batch: int, prefill: int) -> tuple[Tally, Tally]:
    """The 2026-11-27 log's eager LM (= upstream's Qwen2LM.inference path): transformers' Qwen2ForCausalLM with a
    DynamicCache and the full lm_head, llm_decoder + log_softmax, a batched top-k/top-p sampler, and the
    `.tolist()` that hands each token to Python: one prefill of `prefill` embeddings, one decode step after it."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config.from_pretrained(folder / "CosyVoice-BlankEN")
    qwen = on_meta(lambda: Qwen2ForCausalLM(config), dtype)
    with torch.device("meta"):
        decoder = torch.nn.Linear(896, 6564).to(dtype)
        embedding = torch.nn.Embedding(6564, 896).to(dtype)
    state = {}

    def forward(x, mask):
        out = qwen(inputs_embeds=x, attention_mask=mask, output_hidden_states=True, use_cache=True,
                   past_key_values=state.get("cache"))
        state["cache"] = out.past_key_values
        logp = decoder(out.hidden_states[-1][:, -1]).float().log_softmax(dim=-1)
        probs, ids = logp.softmax(dim=-1).topk(25, dim=-1)
        drop = probs.cumsum(dim=-1) - probs >= 0.8
        pick = ids.gather(-1, torch.multinomial(probs.masked_fill(drop, 0.0), 1))
        pick.view(-1).cpu()  # the .tolist(): a device-to-host copy
        return embedding(pick % 6561)

    x = torch.zeros(batch, prefill, 896, dtype=dtype, device="meta")
    mask = torch.ones(batch, prefill, dtype=torch.long, device="meta")
    first = account(lambda: state.update(x=forward(x, mask)))
    mask2 = torch.ones(batch, prefill + 1, dtype=torch.long, device="meta")
    step = account(lambda: forward(state["x"], mask2))
    return step, first


def flow_account(folder: Path, dtype: torch.dtype, mix: list[float], batches: list[list[int]],
                 graph: bool = False) -> Tally:
    """Our flow (flow.inference: encoder + 10 Euler steps with CFG) over the given batches of the mix. graph: the
    runtime's GPU path, the ODE on bucketed buffers (graphs.FlowODE, its padding counted) as one graph replay,
    the encoder eager: returned with `graph_part`, the ODE's share (predicted at graph cost)."""
    from jaspeech.synthesis.tts.cosyvoice2_runtime.flow import CosyVoice2Flow
    from jaspeech.synthesis.tts.cosyvoice2_runtime.graphs import FlowODE

    flow = on_meta(lambda: CosyVoice2Flow.build(folder), dtype)
    flow.decoder.rand_noise = flow.decoder.rand_noise.to("meta")
    padded = FlowODE(flow.decoder, capture=False)
    inner = Tally()

    def ode(*args, **kwargs):  # the ODE's ops, counted apart (they are also in the outer account)
        nonlocal inner
        with Account() as acc:
            out = padded(*args, **kwargs)
        inner = inner + acc.tally
        return out

    total = Tally()
    prompt = round(TOKENS_PER_SECOND * PROMPT_SECONDS)
    for batch in batches:
        rows = [sentence(mix[n]) for n in batch]
        total = total + account(resident=weights(flow), fn=lambda: flow.inference(
            [torch.zeros(r["tokens"], dtype=torch.long, device="meta") for r in rows],
            [torch.zeros(prompt, dtype=torch.long, device="meta") for _ in rows],
            [torch.zeros(2 * prompt, 80, dtype=dtype, device="meta") for _ in rows],
            torch.zeros(len(rows), 192, dtype=dtype, device="meta"), ode=ode if graph else None))
    total.graph_part = inner
    return total


def hift_account(folder: Path, mix: list[float], batches: list[list[int]] | None) -> Tally:
    """Our HiFT in fp32: per row (`inference`, each with its host copy) when batches is None, else
    `inference_batch` per batch with one host copy each."""
    from jaspeech.synthesis.tts.cosyvoice2_runtime.hift import CosyVoice2HiFT

    hift = on_meta(lambda: CosyVoice2HiFT.build(folder), torch.float32)
    hift.stft_window = hift.stft_window.to("meta")
    mels = [torch.zeros(80, sentence(s)["mel"], device="meta") for s in mix]

    def run():
        if batches is None:
            for mel, wave in zip(mels, hift.inference(mels, list(range(len(mels))))):
                wave.cpu()
        else:
            for b in batches:
                hift.inference_batch([mels[n] for n in b], list(b)).cpu()

    return account(run, resident=weights(hift))


def ear_account(decoder_layers: int, batch: int, tokens: int = 50, forced: int = 4) -> tuple[Tally, Tally]:
    """Whisper (large-v3's encoder, `decoder_layers`) in fp16: the encoder over `batch` 30 s windows, and one decoder
    step with a cache at the mean position (FLOPs, bytes), its launches and syncs as `generate` runs it
    (`generate_overhead`)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    config = WhisperConfig(vocab_size=51866, num_mel_bins=128, d_model=1280, encoder_layers=32,
                           decoder_layers=decoder_layers, encoder_attention_heads=20, decoder_attention_heads=20,
                           encoder_ffn_dim=5120, decoder_ffn_dim=5120, max_source_positions=1500,
                           max_target_positions=448)
    model = on_meta(lambda: WhisperForConditionalGeneration(config), torch.float16)
    feats = torch.zeros(batch, 128, 3000, dtype=torch.float16, device="meta")
    state = {}
    encoder = account(lambda: state.update(h=model.model.encoder(feats).last_hidden_state), resident=weights(model))
    cache = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
    ids = torch.zeros(batch, forced + tokens // 2, dtype=torch.long, device="meta")
    with torch.inference_mode():
        model(encoder_outputs=(state["h"],), decoder_input_ids=ids, past_key_values=cache, use_cache=True)
    one = torch.zeros(batch, 1, dtype=torch.long, device="meta")
    step = account(lambda: model(encoder_outputs=(state["h"],), decoder_input_ids=one, past_key_values=cache,
                                 use_cache=True))
    if decoder_layers not in _OVERHEAD:
        _OVERHEAD[decoder_layers] = generate_overhead(decoder_layers)
    step.launches, step.syncs = _OVERHEAD[decoder_layers]  # as generate runs the step (FLOPs, bytes: the forward)
    return encoder, step


def generate_overhead(decoder_layers: int) -> tuple[float, float]:
    """What transformers' `generate` (as TransformersWhisperASR calls it: encoder outputs given, language ja,
    transcribe) launches and syncs per token, its decoder forward included: counted on CPU at a tiny width and the
    real depth (the counts do not depend on the width), as (generate with 12 tokens - with 4) / 8."""
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(vocab_size=51866, num_mel_bins=128, d_model=64, encoder_layers=1,
                           decoder_layers=decoder_layers, encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=128, decoder_ffn_dim=128, max_source_positions=1500,
                           max_target_positions=448, decoder_start_token_id=50258, eos_token_id=50257,
                           pad_token_id=50257, bos_token_id=50257)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50258, eos_token_id=50257, pad_token_id=50257, max_length=448, is_multilingual=True,
        lang_to_id={"<|ja|>": 50266}, task_to_id={"translate": 50359, "transcribe": 50360},
        no_timestamps_token_id=50364)
    from transformers.modeling_outputs import BaseModelOutput

    h = BaseModelOutput(last_hidden_state=torch.zeros(1, 1500, 64))  # one window: launches do not grow with the batch

    def gen(n):
        return account(lambda: model.generate(encoder_outputs=h, language="ja", task="transcribe",
                                              max_new_tokens=n, suppress_tokens=[50257]), device="cpu")

    short, long = gen(4), gen(12)
    return (long.launches - short.launches) / 8, (long.syncs - short.syncs) / 8


_OVERHEAD: dict = {}


# --- host time per decode step --------------------------------------------------------------------------------


def host_step_times(repeats: int = 20) -> dict:
    """Our LM step and transformers' Qwen2 step, 24 layers at a tiny width, on this CPU (1 thread): host seconds
    per step and per launch, what a launch-bound GPU waits for."""
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from transformers.cache_utils import DynamicCache

    from jaspeech.synthesis.tts.cosyvoice2_runtime.llm import CosyVoice2LM

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = Qwen2Config(vocab_size=1000, hidden_size=56, intermediate_size=64, num_hidden_layers=24,
                             num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
                             rope_theta=1e6, tie_word_embeddings=True)
        torch.manual_seed(0)
        lm = CosyVoice2LM(config, 6561, 56, 56).eval()
        s = lm._slots(4, 256)
        ours_ops = account(lambda: lm._step(s, 256), device="cpu").launches
        with torch.inference_mode():
            for _ in range(3):
                lm._step(s, 256)
            t0 = time.perf_counter()
            for _ in range(repeats):
                lm._step(s, 256)
            ours = (time.perf_counter() - t0) / repeats
        qwen = Qwen2ForCausalLM(config).eval()
        x = torch.zeros(1, 200, 56)
        with torch.inference_mode():
            cache = DynamicCache(config=config)
            qwen(inputs_embeds=x, use_cache=True, past_key_values=cache)
            one = torch.zeros(1, 1, 56)
            hf_ops = account(lambda: qwen(inputs_embeds=one, use_cache=True, past_key_values=cache,
                                          output_hidden_states=True), device="cpu").launches
            t0 = time.perf_counter()
            for _ in range(repeats):
                qwen(inputs_embeds=one, use_cache=True, past_key_values=cache, output_hidden_states=True)
            hf = (time.perf_counter() - t0) / repeats
    finally:
        torch.set_num_threads(threads)
    return {"ours_step_s": ours, "ours_launches": ours_ops, "ours_us_per_launch": 1e6 * ours / ours_ops,
            "hf_step_s": hf, "hf_launches": hf_ops, "hf_us_per_launch": 1e6 * hf / hf_ops}


# --- the account ----------------------------------------------------------------------------------------------


def per_audio_s(t: Tally, audio_s: float) -> Tally:
    return t.scaled(1 / audio_s)


def stage_row(name: str, t: Tally, graph: bool, host_us: float, note: str = "") -> dict:
    """peak_gib estimates the peak device memory as the resident bytes (weights, the LM's cache) + 3x the largest
    op's inputs and outputs (a stated heuristic: a few such tensors alive at once)."""
    resident = t.resident
    return {"stage": name, "flops": t.flops, "bytes": t.bytes, "launches": t.launches, "syncs": t.syncs,
            "predicted_h100": t.predict("h100", graph, host_us), "predicted_h200": t.predict("h200", graph, host_us),
            "graph": graph, "peak_gib": (resident + 3 * t.largest) / 2 ** 30, "note": note}


def run(quick: bool, host_us: float) -> dict:
    half = torch.float16
    out: dict = {"mix": "1-10 s, ten sentences each (100, mean 5.5 s), 5 s voice prompt",
                 "constants": {"cards": CARDS, "graph_us": GRAPH_US, "sync_us": SYNC_US, "host_us": host_us,
                               "efficiency": EFFICIENCY,
                               "text_tokens_per_s": TEXT_TOKENS_PER_SECOND}}
    mix = MIX[::5] if quick else MIX
    audio = float(sum(mix))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = model_folder(Path(tmp))
        rows: list[dict] = []

        # LM: before (the whole static cache every step, capture per call, fp16 sampler) vs after (live length)
        slots = 256
        n_slots = min(slots, 1 << (len(mix) - 1).bit_length())
        sim = simulate_decode(mix, n_slots)
        before_step, prefill = lm_account(folder, half, n_slots, sim["cache_len"], sim["cache_len"])
        after_step, _ = lm_account(folder, half, n_slots, bucket(int(sim["live_mean"]), 128), sim["cache_len"])
        check_syncs = sim["checks"] + 3 * sim["collections"]  # done.tolist(); n_out, tokens, logprobs per collection
        admissions = Tally(syncs=sim["admissions"])  # before: one synchronise per admission
        capture = before_step.scaled(4)  # before: 3 warm-up steps + a capture per decode() call
        lm_before = before_step.scaled(sim["steps"]) + prefill.scaled(len(mix)) + Tally(syncs=check_syncs) \
            + admissions + capture
        lm_after = after_step.scaled(sim["steps"]) + prefill.scaled(len(mix)) + Tally(syncs=check_syncs)
        out["decode_step_syncs"] = after_step.syncs
        out["decode_step_launches"] = after_step.launches
        out["lm_sim"] = sim
        rows.append(stage_row("llm before", per_audio_s(lm_before, audio), True, host_us,
                              f"attends the whole cache ({sim['cache_len']}), capture per call, admission syncs"))
        rows.append(stage_row("llm", per_audio_s(lm_after, audio), True, host_us,
                              f"live length ~{bucket(int(sim['live_mean']), 128)}, kept graphs, {n_slots} slots, "
                              f"occupancy {sim['occupancy']:.2f}"))

        # flow: by row count (64 rows, length-sorted) vs by frame budget; eager, and predicted as one graph per shape
        frames = [sentence(s)["frames"] for s in mix]
        order = sorted(range(len(mix)), key=lambda n: frames[n])
        by_rows = [order[i:i + 64] for i in range(0, len(order), 64)]
        by_budget = budget_batches(order, frames, 64, 65536, 64 * 1024 ** 2, WASTE)
        flow_rows = flow_account(folder, half, mix, by_rows)
        flow_budget = flow_account(folder, half, mix, by_budget)
        flow_graph = flow_account(folder, half, mix, by_budget, graph=True)
        worst = max(len(b) * 8 * max(frames[n] for n in b) * (2 * max(frames[n] for n in b) - 1) * 2
                    for b in by_rows) / 2 ** 30
        worst_budget = max(len(b) * 8 * max(frames[n] for n in b) * (2 * max(frames[n] for n in b) - 1) * 2
                           for b in by_budget) / 2 ** 30
        out["flow_batches"] = {"by_rows": [len(b) for b in by_rows], "by_budget": [len(b) for b in by_budget],
                               "waste_by_rows": padding_waste(by_rows, frames),
                               "waste_by_budget": padding_waste(by_budget, frames),
                               "relpos_gib_by_rows": worst, "relpos_gib_by_budget": worst_budget}
        rows.append(stage_row("flow before", per_audio_s(flow_rows, audio), False, host_us,
                              f"64 rows a batch, eager; rel-pos scores {worst:.1f} GiB"))
        rows.append(stage_row("flow", per_audio_s(flow_budget, audio), False, host_us,
                              f"frame budget (<= 15 % padding), eager; rel-pos scores {worst_budget:.1f} GiB"))
        rows.append(stage_row("flow graphs (opt-in)", per_audio_s(flow_graph, audio), False, host_us,
                              "ODE one CUDA graph per (rows, frames) bucket: the buckets' padding costs more"))

        # HiFT: per row vs batched by a frame budget
        mels = [sentence(s)["mel"] for s in mix]
        h_order = sorted(range(len(mix)), key=lambda n: mels[n])
        h_batches = budget_batches(h_order, mels, len(mix), 32768, max_waste=WASTE)
        hift_rows = hift_account(folder, mix, None)
        hift_batch = hift_account(folder, mix, h_batches)
        rows.append(stage_row("hift before", per_audio_s(hift_rows, audio), False, host_us,
                              "per row: istft's check and a .cpu() per row"))
        rows.append(stage_row("hift", per_audio_s(hift_batch, audio), False, host_us,
                              f"batched: {len(h_batches)} batch(es), one .cpu() each"))

        # the ear: large-v3 vs turbo, batch 16/64/128, eager generate vs a captured decoder step (predicted)
        ear_rows = {}
        clip_s = sum(mix) / len(mix)  # one clip per sentence, padded to a 30 s window
        for name, layers in (("whisper-large-v3", 32), ("whisper-large-v3-turbo", 4)):
            for b in ((16,) if quick else (16, 64, 128)):
                enc, step = ear_account(layers, b)
                call = enc + step.scaled(50)
                audio_b = b * clip_s
                for graph in (False, True):
                    label = f"ear {name} b{b}{' graph (predicted only)' if graph else ''}"
                    row = stage_row(label, per_audio_s(call, audio_b), graph, host_us,
                                    "decoder step captured (static cache): not implemented" if graph else "generate, eager")
                    ear_rows[(name, b, graph)] = row
                    rows.append(row)
        out["rows"] = rows

        # calibration: the 2026-11-27 eager paths, predicted for the H200, beside what was measured there
        cal = []
        for b in (1, 4, 16):
            step, first = hf_lm_account(folder, half, b, 207)
            t = per_audio_s(step.scaled(200) + first, 8.0 * b)
            cal.append({"stage": "llm", "batch": b, "predicted_h200": t.predict("h200", False, host_us),
                        "measured_h200": MEASURED["llm"][b]})
        for b in (1, 4, 16):
            batch = [list(range(b))]
            f = flow_account(folder, half, [8.0] * b, batch)
            cal.append({"stage": "flow", "batch": b,
                        "predicted_h200": per_audio_s(f, 8.0 * b).predict("h200", False, host_us),
                        "measured_h200": MEASURED["flow"][b]})
            h = hift_account(folder, [8.0] * b, batch)
            cal.append({"stage": "hift", "batch": b,
                        "predicted_h200": per_audio_s(h, 8.0 * b).predict("h200", False, host_us),
                        "measured_h200": MEASURED["hift"][b]})
        enc, step = ear_account(32, 16)
        ear16 = per_audio_s(enc + step.scaled(50), 16 * 8.0)
        cal.append({"stage": "ear", "batch": 16, "predicted_h200": ear16.predict("h200", False, host_us),
                    "measured_h200": MEASURED["ear"][16]})
        for c in cal:
            c["ratio"] = c["predicted_h200"] / c["measured_h200"]
            c["trusted"] = 0.5 <= c["ratio"] <= 2.0
        out["calibration"] = cal

    out["host"] = host_step_times(5 if quick else 20)
    # the chosen job: the runtime's rows (flow eager: its graphs are opt-in) and the best implemented ear
    chosen_ear = min((r for (n, b, g), r in ear_rows.items() if not g), key=lambda r: r["predicted_h100"])
    stages = {r["stage"]: r for r in rows}
    tts = sum(stages[s]["predicted_h100"] for s in ("llm", "flow", "hift"))
    out["stages"] = {s: {k: stages[s][k] for k in ("flops", "bytes", "launches", "syncs", "predicted_h100",
                                                     "predicted_h200")} for s in ("llm", "flow", "hift")}
    out["stages"]["ear"] = {k: chosen_ear[k] for k in ("flops", "bytes", "launches", "syncs", "predicted_h100",
                                                         "predicted_h200")}
    out["chosen_ear"] = chosen_ear["stage"]
    out["total"] = {"tts_h100": tts, "ear_h100": chosen_ear["predicted_h100"],
                    "job_h100": tts + chosen_ear["predicted_h100"], "targets": {"tts": 0.002, "job": 0.003}}
    out["wall_seconds"] = time.perf_counter() - t0
    return out


def predict_group(folder: Path, mix: list[float], host_us: float) -> dict:
    """The runtime's stages for one synthesize_batch call over `mix` (seconds per sentence), predicted per card:
    GPU-s per audio-s for the LM (graph replay), the flow and HiFT (eager)."""
    half, audio = torch.float16, float(sum(mix))
    n_slots = min(256, 1 << (len(mix) - 1).bit_length())
    sim = simulate_decode(mix, n_slots)
    step, prefill = lm_account(folder, half, n_slots, bucket(int(sim["live_mean"]), 128), sim["cache_len"])
    lm = step.scaled(sim["steps"]) + prefill.scaled(len(mix)) + Tally(syncs=sim["checks"] + 3 * sim["collections"])
    frames = [sentence(x)["frames"] for x in mix]
    order = sorted(range(len(mix)), key=lambda n: frames[n])
    flow = flow_account(folder, half, mix, budget_batches(order, frames, 64, 65536, 64 * 1024 ** 2, WASTE))
    mels = [sentence(x)["mel"] for x in mix]
    hift = hift_account(folder, mix, budget_batches(sorted(range(len(mix)), key=lambda n: mels[n]), mels, len(mix),
                                                     32768, max_waste=WASTE))
    return {name: {card: per_audio_s(t, audio).predict(card, name == "llm", host_us) for card in CARDS}
            for name, t in (("llm", lm), ("flow", flow), ("hift", hift))}


def compare(log: Path, host_us: float) -> int:
    """Predicted vs measured per stage for a gpu_cost.py run (its JSON line in `log`): the GPU session's check of
    the account. gpu_cost's sentences are 8 s (100 text tokens; here 6 per second: the cache differs, not the work)."""
    lines = [ln for ln in log.read_text(encoding="utf-8").splitlines() if ln.startswith("{")]
    if not lines:
        print(f"{log}: no JSON line from gpu_cost.py (did it finish?)")
        return 2
    measured = json.loads(lines[-1])
    card = "h200" if "H200" in str(measured.get("device", "")) else "h100"
    print(f"predicted ({card}, this account) vs measured ({measured.get('device')}), GPU-s per audio-s")
    print(f"{'stage':<8}{'batch':>6}{'predicted':>12}{'measured':>11}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = model_folder(Path(tmp))
        for b, parts in measured.get("tts", {}).items():
            predicted = predict_group(folder, [8.0] * int(b), host_us)
            for stage in ("llm", "flow", "hift"):
                p, m = predicted[stage][card], parts[stage]
                print(f"{stage:<8}{b:>6}{p:>12.5f}{m:>11.5f}{p / m:>8.2f}")
    for name, by_batch in measured.get("ear", {}).items():
        for b, m in by_batch.items():
            enc, step = ear_account(32 if name == "whisper-large-v3" else 4, int(b))
            p = per_audio_s(enc + step.scaled(50), 8.0 * int(b)).predict(card, False, host_us)
            print(f"{'ear':<8}{b:>6}{p:>12.5f}{m:>11.5f}{p / m:>8.2f}  {name}")
    return 0


def report(out: dict) -> None:
    print(f"sentence mix: {out['mix']}; H100/H200 predictions by a per-op roofline (PREDICTED, not measured)")
    print(f"constants: {json.dumps(out['constants']['cards'])}; {EFFICIENCY:.0%} of peak reached; graph "
          f"{GRAPH_US} us/kernel, sync {SYNC_US} us, eager host {out['constants']['host_us']} us/launch")
    print(f"\n{'stage (per audio-second)':<50}{'GFLOP':>8}{'GB':>7}{'launches':>9}{'syncs':>7}"
          f"{'H100 pred':>10}{'H200 pred':>10}{'peak GiB':>9}  note")
    for r in out["rows"]:
        print(f"{r['stage']:<50}{r['flops'] / 1e9:>8.1f}{r['bytes'] / 1e9:>7.2f}{r['launches']:>9.0f}"
              f"{r['syncs']:>7.2f}{r['predicted_h100']:>10.5f}{r['predicted_h200']:>10.5f}{r['peak_gib']:>9.1f}"
              f"  {r['note']}")
    print(f"\nLM decode step: {out['decode_step_launches']} launches, {out['decode_step_syncs']} host syncs; "
          f"simulated decode: {json.dumps(out['lm_sim'])}")
    print(f"flow batches: {json.dumps(out['flow_batches'])}")
    h = out["host"]
    print(f"host time per decode step, 24 layers, tiny width, this CPU: ours {1e3 * h['ours_step_s']:.2f} ms "
          f"({h['ours_launches']} launches, {h['ours_us_per_launch']:.1f} us each); transformers Qwen2 "
          f"{1e3 * h['hf_step_s']:.2f} ms ({h['hf_launches']} launches, {h['hf_us_per_launch']:.1f} us each)")
    print(f"\ncalibration against the 2026-11-27 H200 log (eager paths; GPU-s per audio-s, 8 s sentences)")
    print(f"{'stage':<8}{'batch':>6}{'predicted':>12}{'measured':>11}{'ratio':>8}  trusted (within 2x)")
    for c in out["calibration"]:
        print(f"{c['stage']:<8}{c['batch']:>6}{c['predicted_h200']:>12.5f}{c['measured_h200']:>11.5f}"
              f"{c['ratio']:>8.2f}  {'yes' if c['trusted'] else 'NO'}")
    t = out["total"]
    print(f"\nchosen: llm + flow + hift + {out['chosen_ear']}: TTS {t['tts_h100']:.5f}, job {t['job_h100']:.5f}"
          f" GPU-h per audio-h on the H100 (PREDICTED; targets TTS <= 0.002, job <= 0.003)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--json", action="store_true", help="print one JSON line last")
    ap.add_argument("--quick", action="store_true", help="a fifth of the mix, batch 16 ears only (a quick check)")
    ap.add_argument("--host-us", type=float, default=HOST_US, help=f"eager host cost per launch (default {HOST_US})")
    ap.add_argument("--compare", type=Path, metavar="LOG",
                    help="print predicted vs measured per stage for a gpu_cost.py log (benchmarks/gpu_session.sh)")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(args.compare, args.host_us)
    out = run(args.quick, args.host_us)
    report(out)
    if args.json:
        print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
