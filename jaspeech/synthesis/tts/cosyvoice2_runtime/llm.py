"""CosyVoice2's speech-token LM (upstream's unchanged llm.pt) as a batched decoder with a static KV cache.

Follows `Qwen2LM.inference` / `inference_wrapper` and `Qwen2Encoder` in cosyvoice/llm/llm.py of
FunAudioLLM/CosyVoice 6385656 (Apache-2.0, Copyright Alibaba Inc); the attention follows transformers'
Qwen2 (modeling_qwen2.py, Apache-2.0), whose weights it runs.

Per sentence upstream feeds `[sos, embed_tokens(prompt_text + text), task, speech_embedding(prompt_speech)]`
to Qwen2, takes the last hidden state, `log_softmax(llm_decoder(h))` over speech_token_size + 3 ids, samples
with repetition-aware sampling (sampler.py), stops at EOS (= speech_token_size) or after 20 tokens per text
token, and feeds each token back through `speech_embedding`. Upstream decodes one sentence at a time (HF
eager + DynamicCache, and the 151,936-wide lm_head it never reads). Here:

- the modules keep upstream's names (`llm_embedding`, `llm.model` = transformers' Qwen2ForCausalLM,
  `llm_decoder`, `speech_embedding`), so llm.pt loads with strict=True; only the weights are used: the
  forward below is our own, so it can write a static cache and never computes lm_head;
- a static KV cache [layers, 2, slots, kv_heads, cache_len, head_dim]: each new row is prefilled into its
  slot (rows admitted together share one right-padded forward), then one decode step advances every slot,
  with per-row positions, key masks, lengths, done flags, seeds and repetition history, all tensors updated
  in place; the step has fixed shapes, so on CUDA it is captured as a CUDA graph and replayed;
- the state (cache and buffers) and its graphs are kept across `decode()` calls (graphs.py `GraphCache`),
  keyed by (slots, cache length), both bucketed: a later call or retry round of the same shapes reuses them
  (captured once per shape per process); a step attends over the live part of the cache only (the longest
  position any occupied slot can have reached by the next check, rounded up to `LIVE_STEP`), one graph per
  live length, all captured when the state is made (while every slot is idle, so warm-up steps are harmless);
- admission copies host values with pinned, non-blocking transfers and does not synchronise: the host waits
  for the device only at the checks (every `check_every` steps: the done flags, then finished rows' tokens);
- log_softmax and the sampler run in float32 whatever the model dtype (float64 for a float64 model), as
  upstream's autocast runs them (fp16 logits would keep a different nucleus on 1.7-2.6 % of steps);
- semantics where we differ from 6385656 on purpose (upstream HEAD's): EOS is masked below the minimum
  length (6385656 redraws up to 100 times), and the two unused ids speech_token_size + 1, + 2 are always
  masked (6385656 skips them with `continue`, re-feeding the last input);
- randomness is per row and counter-based (sampler.uniforms keyed by (seed, tokens emitted so far)), so a
  row's tokens do not depend on its batch-mates, on its slot, or on the device's generator.

Continuous batching: a slot whose row finished takes the next waiting prompt (input order, lowest free slot
first) at the next check, every `check_every` steps. When a row finishes depends only on its own tokens,
so slot assignment is a function of the inputs, never of timing. The host looks at the done flags only at
those checks; between them, a finished row keeps stepping harmlessly (its position, token count and outputs
stop advancing) and whatever it samples is discarded.

Bitwise batch invariance: on CPU in float64 a row's log-probs agree to ~1e-15 whatever its batch-mates
(tested to 1e-9). On a GPU, kernels may change with the batch size (slots) and cache length, so pin
`max_batch` and `cache_len` where bitwise reproducibility across runs matters.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import Qwen2Config, Qwen2ForCausalLM

from .config import read_config
from .graphs import GraphCache, bucket, to_device
from .sampler import ras_sample, uniforms


@dataclass
class LMPrompt:
    """Token ids for one sentence: `text` is the sentence alone (its length sets min/max length);
    `prompt_text` and `prompt_speech` are the voice prompt's transcript and 25 Hz speech tokens."""
    text: list[int]
    prompt_text: list[int]
    prompt_speech: list[int]


@dataclass
class LMOutput:
    """A row's speech tokens (EOS excluded) and each token's log-prob under the model (before masking)."""
    tokens: list[int]
    logprobs: list[float]


@dataclass
class _Slots:
    """Every per-row decode state, as fixed-shape tensors the step updates in place (CUDA-graph safe)."""
    cache: torch.Tensor  # [layers, 2 (k, v), slots, kv_heads, cache_len, head_dim]
    x: torch.Tensor  # [slots, hidden] the next input embedding (not yet in the cache)
    pos: torch.Tensor  # [slots] int64: cache position x goes to (= tokens already in the cache)
    n_out: torch.Tensor  # [slots] int64: speech tokens emitted (upstream's step index i)
    min_len: torch.Tensor  # [slots] int64
    max_len: torch.Tensor  # [slots] int64
    seed: torch.Tensor  # [slots] int64
    done: torch.Tensor  # [slots] bool
    history: torch.Tensor  # [slots, win_size] int64 ring of the last tokens (-1 = empty)
    tokens: torch.Tensor  # [slots, cache_len] int64 emitted tokens
    logprobs: torch.Tensor  # [slots, cache_len] their log-probs
    cos: torch.Tensor  # [cache_len, head_dim] RoPE table
    sin: torch.Tensor


def _rms_norm(x: torch.Tensor, norm: torch.nn.Module) -> torch.Tensor:
    """transformers' Qwen2RMSNorm, op for op: statistics in float32 whatever the model dtype."""
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * h.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_half(x) * sin


def _mlp(mlp: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return mlp.down_proj(F.silu(mlp.gate_proj(x)) * mlp.up_proj(x))


LIVE_STEP = 128  # attention and cache lengths are multiples of this (one graph per live length)
KEPT_STATES = 2  # decode states (cache, buffers, graphs) kept between calls, most recent first


def _wide(dtype: torch.dtype) -> torch.dtype:
    """The sampler's dtype: float32, or float64 for a float64 model (upstream's autocast keeps softmax in fp32)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class CosyVoice2LM(torch.nn.Module):
    """Upstream's Qwen2LM parameters (same names, so llm.pt loads strictly) and a batched decoder."""

    def __init__(self, qwen_config: Qwen2Config, speech_token_size: int, llm_input_size: int,
                 llm_output_size: int, top_p: float = 0.8, top_k: int = 25, win_size: int = 10,
                 tau_r: float = 0.1):
        super().__init__()
        rope = dict(getattr(qwen_config, "rope_parameters", None) or {})
        rope.setdefault("rope_theta", getattr(qwen_config, "rope_theta", 10000.0))
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"only default RoPE is implemented, config has {rope}")
        layer_types = getattr(qwen_config, "layer_types", None) or ["full_attention"]
        if qwen_config.hidden_act != "silu" or getattr(qwen_config, "use_sliding_window", False) \
                or any(t != "full_attention" for t in layer_types):
            raise ValueError("expects Qwen2 with SiLU MLPs and full attention (CosyVoice-BlankEN's config)")
        self.llm_embedding = torch.nn.Embedding(2, llm_input_size)  # row 0: sos, row 1: task id
        self.llm = torch.nn.Module()
        self.llm.model = Qwen2ForCausalLM(qwen_config)
        self.llm_decoder = torch.nn.Linear(llm_output_size, speech_token_size + 3)
        self.speech_embedding = torch.nn.Embedding(speech_token_size + 3, llm_input_size)
        self.speech_token_size = speech_token_size
        self.rope_theta = float(rope["rope_theta"])
        self.heads = qwen_config.num_attention_heads
        self.kv_heads = qwen_config.num_key_value_heads
        self.head_dim = getattr(qwen_config, "head_dim", None) or qwen_config.hidden_size // self.heads
        self.sampling = {"top_p": top_p, "top_k": top_k, "win_size": win_size, "tau_r": tau_r}
        # (slots, cache_len) -> (state, its graphs): kept across decode() calls, most recent last
        self._states: dict[tuple[int, int], tuple[_Slots, GraphCache]] = {}

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32) -> CosyVoice2LM:
        """Sizes from cosyvoice2.yaml, Qwen2's shape from CosyVoice-BlankEN/config.json, weights from llm.pt.

        Built on the meta device (no random init of 0.5 B parameters that llm.pt overwrites anyway) and
        loaded with assign=True; lm_head is re-tied to embed_tokens as transformers ties it.
        """
        folder = Path(folder)
        with torch.device("meta"):
            model = cls.build(folder)
        qwen_config = model.llm.model.config
        state = torch.load(folder / "llm.pt", map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
        if qwen_config.tie_word_embeddings:
            model.llm.model.lm_head.weight = model.llm.model.model.embed_tokens.weight
        # transformers' rotary buffers are not in the state dict: rebuild them (our forward does not use
        # them, but the module stays a working Qwen2ForCausalLM)
        model.llm.model.model.rotary_emb = type(model.llm.model.model.rotary_emb)(qwen_config)
        return model.to(device=device).eval()

    @classmethod
    def build(cls, folder: str | Path) -> "CosyVoice2LM":
        """The module cosyvoice2.yaml and CosyVoice-BlankEN/config.json describe, with fresh weights (on the
        current default device): `from_folder` builds it on the meta device and loads llm.pt into it;
        benchmarks/gpu_cost.py saves it as a random llm.pt of the real shapes."""
        folder = Path(folder)
        node = read_config(folder)["llm"]
        sampling = {k: v for k, v in (node.get("sampling") or {}).items() if not k.startswith("_")}
        qwen_config = Qwen2Config.from_pretrained(folder / "CosyVoice-BlankEN")
        return cls(qwen_config, node["speech_token_size"], node["llm_input_size"], node["llm_output_size"], **sampling)

    # ----- the forward over Qwen2's weights -------------------------------------------------------------

    @property
    def _qwen(self) -> torch.nn.Module:
        return self.llm.model.model

    def _rope_table(self, length: int, device: torch.device, dtype: torch.dtype):
        """cos/sin for positions 0..length-1, computed as transformers does (float32, on CPU here so
        every device gets the same table), then cast to the model dtype."""
        inv_freq = 1.0 / (self.rope_theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float) / self.head_dim))
        freqs = torch.arange(length, dtype=torch.float)[:, None] * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(device=device, dtype=dtype), emb.sin().to(device=device, dtype=dtype)

    def _qkv(self, attn: torch.nn.Module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """[B, T, H] (normed) -> q [B, heads, T, d], k and v [B, kv_heads, T, d], RoPE applied."""
        b, t, _ = x.shape
        q = attn.q_proj(x).view(b, t, -1, self.head_dim).transpose(1, 2)
        k = attn.k_proj(x).view(b, t, -1, self.head_dim).transpose(1, 2)
        v = attn.v_proj(x).view(b, t, -1, self.head_dim).transpose(1, 2)
        return _rope(q, cos, sin), _rope(k, cos, sin), v

    def _prefill(self, s: _Slots, slots: list[int], prefixes: list[torch.Tensor]) -> None:
        """Run each prefix but its last position, right-padded together, into the given cache slots.

        The last prefix embedding becomes the slot's pending input x, so every logit comes out of the
        decode step (one sampling code path). Right padding needs no mask beyond the causal one: a row's
        real positions never see the later, padded ones. The padded positions' keys land in the cache
        past the row's position, where decode masks them until it overwrites them.
        """
        lengths = [p.shape[0] - 1 for p in prefixes]
        t = max(lengths)
        h = torch.stack([F.pad(p[:-1], (0, 0, 0, t - n)) for p, n in zip(prefixes, lengths)])
        idx = to_device(slots, torch.long, h.device)
        cos, sin = s.cos[:t], s.sin[:t]
        groups = self.heads // self.kv_heads
        for layer_idx, layer in enumerate(self._qwen.layers):
            q, k, v = self._qkv(layer.self_attn, _rms_norm(h, layer.input_layernorm), cos, sin)
            s.cache[layer_idx, 0, idx, :, :t] = k
            s.cache[layer_idx, 1, idx, :, :t] = v
            o = F.scaled_dot_product_attention(q, k.repeat_interleave(groups, dim=1),
                                               v.repeat_interleave(groups, dim=1), is_causal=True,
                                               scale=self.head_dim ** -0.5)
            h = h + layer.self_attn.o_proj(o.transpose(1, 2).reshape(h.shape[0], t, -1))
            h = h + _mlp(layer.mlp, _rms_norm(h, layer.post_attention_layernorm))
        s.x[idx] = torch.stack([p[-1] for p in prefixes])
        s.pos[idx] = to_device(lengths, torch.long, h.device)

    def _forward_step(self, s: _Slots, live: int | None = None) -> torch.Tensor:
        """Every slot's pending x through Qwen2 at its own position, written into the cache there ->
        [slots, speech_token_size + 3] log-probs (float32; float64 for a float64 model). Attention reads the
        first `live` cache positions (default all): every occupied slot's position must be below it. Fixed
        shapes; no host sync."""
        n = s.x.shape[0]
        live = live or s.cache.shape[4]
        rows = torch.arange(n, device=s.x.device)
        h = s.x[:, None]  # [S, 1, H]
        cos, sin = s.cos[s.pos][:, None, None], s.sin[s.pos][:, None, None]  # [S, 1, 1, d]
        keys = torch.arange(live, device=s.x.device)
        mask = (keys[None, :] <= s.pos[:, None])[:, None, None]  # [S, 1, 1, L]
        for layer_idx, layer in enumerate(self._qwen.layers):
            q, k, v = self._qkv(layer.self_attn, _rms_norm(h, layer.input_layernorm), cos, sin)
            s.cache[layer_idx, 0, rows, :, s.pos] = k[:, :, 0]
            s.cache[layer_idx, 1, rows, :, s.pos] = v[:, :, 0]
            # GQA without copying the cache: head j reads kv head j // groups (transformers' repeat_kv),
            # so the query heads of one kv head go where SDPA expects query positions
            q = q.reshape(n, self.kv_heads, self.heads // self.kv_heads, self.head_dim)
            o = F.scaled_dot_product_attention(q, s.cache[layer_idx, 0, :, :, :live], s.cache[layer_idx, 1, :, :, :live],
                                               attn_mask=mask, scale=self.head_dim ** -0.5)
            h = h + layer.self_attn.o_proj(o.reshape(n, 1, -1))
            h = h + _mlp(layer.mlp, _rms_norm(h, layer.post_attention_layernorm))
        h = _rms_norm(h[:, 0], self._qwen.norm)
        return self.llm_decoder(h).to(_wide(h.dtype)).log_softmax(dim=-1)

    def _step(self, s: _Slots, live: int | None = None) -> None:
        """One decode step for all slots, in place: forward, mask, sample, record, feed back."""
        logp = self._forward_step(s, live)
        eos = self.speech_token_size
        ids = torch.arange(logp.shape[-1], device=logp.device)
        banned = (ids[None, :] > eos) | ((ids[None, :] == eos) & (s.n_out < s.min_len)[:, None])
        u = uniforms(s.seed, s.n_out)
        pick = ras_sample(logp.masked_fill(banned, -math.inf), s.history, u, self.sampling["top_p"],
                          self.sampling["top_k"], self.sampling["tau_r"])
        active = ~s.done
        emit = active & (pick != eos)
        # unconditional writes at n_out: for a finished row that index is past its output, so harmless
        s.tokens.scatter_(1, s.n_out[:, None], pick[:, None])
        s.logprobs.scatter_(1, s.n_out[:, None], logp.gather(1, pick[:, None]))
        s.history.scatter_(1, (s.n_out % s.history.shape[1])[:, None], pick[:, None])
        s.n_out += emit
        s.pos += emit
        s.done |= active & ((pick == eos) | (s.n_out >= s.max_len))
        s.x.copy_(self.speech_embedding(pick))

    # ----- host side ------------------------------------------------------------------------------------

    def _prefix(self, prompt: LMPrompt) -> torch.Tensor:
        """[sos, embed_tokens(prompt_text + text), task, speech_embedding(prompt_speech)] -> [P, H]."""
        device = self.llm_embedding.weight.device
        text = to_device(prompt.prompt_text + prompt.text, torch.long, device)
        speech = to_device(prompt.prompt_speech, torch.long, device)
        return torch.cat([self.llm_embedding.weight[:1], self._qwen.embed_tokens(text),
                          self.llm_embedding.weight[1:], self.speech_embedding(speech)])

    def _slots(self, n: int, cache_len: int) -> _Slots:
        """Fresh state: all slots done (so steps run before any admission, e.g. CUDA-graph warm-up and
        capture, change nothing that admission does not reset)."""
        w = self.llm_embedding.weight
        layers = len(self._qwen.layers)
        cos, sin = self._rope_table(cache_len, w.device, w.dtype)

        def longs(*shape, fill=0):
            return torch.full(shape, fill, dtype=torch.long, device=w.device)

        return _Slots(
            cache=torch.zeros(layers, 2, n, self.kv_heads, cache_len, self.head_dim, dtype=w.dtype, device=w.device),
            x=torch.zeros(n, w.shape[1], dtype=w.dtype, device=w.device), pos=longs(n), n_out=longs(n),
            min_len=longs(n), max_len=longs(n), seed=longs(n), done=torch.ones(n, dtype=torch.bool, device=w.device),
            history=longs(n, self.sampling["win_size"], fill=-1), tokens=longs(n, cache_len),
            logprobs=torch.zeros(n, cache_len, dtype=_wide(w.dtype), device=w.device), cos=cos, sin=sin)

    def _state(self, n: int, cache_len: int, cuda_graph: bool) -> tuple[_Slots, GraphCache | None]:
        """The decode state for (n slots, cache_len), kept from an earlier call when there is one (every slot
        is then done: a call ends when all its rows are collected; set again here in case one was
        interrupted). Stale cache entries and outputs past a slot's position are never read. On CUDA, the
        step's graphs, one per live length, are captured here, while every slot is idle."""
        key = (n, cache_len)
        if key in self._states:
            s, graphs = self._states.pop(key)
            s.done.fill_(True)
        else:
            while len(self._states) >= KEPT_STATES:
                self._states.pop(next(iter(self._states)))
            s, graphs = self._slots(n, cache_len), GraphCache()
        if cuda_graph and s.x.device.type == "cuda":
            for live in range(LIVE_STEP, cache_len + 1, LIVE_STEP):
                graphs.get(live, lambda live=live: self._step(s, live))
        self._states[key] = (s, graphs)
        return s, (graphs if cuda_graph and s.x.device.type == "cuda" else None)

    @torch.inference_mode()
    def decode(self, prompts: list[LMPrompt], seeds: list[int], max_batch: int = 256,
               cache_len: int | None = None, check_every: int = 8, prefill_rows: int = 32,
               cuda_graph: bool = True, timings: dict | None = None) -> list[LMOutput]:
        """Speech tokens for every prompt, `max_batch` slots decoded together (continuous batching).

        cache_len: the static cache length, at least prefix + 20 * n_text of every row; default: the
        longest row's need rounded up to LIVE_STEP. The slots are max_batch or, for fewer rows, the next
        power of two (so retry rounds and small calls reuse a kept state). prefill_rows: rows per padded prefill forward (admitted rows
        sorted by prefix length, so padding stays small). cuda_graph: capture the step on CUDA (eager
        elsewhere; the same function). timings: if given, filled with prefill_s, decode_s, steps,
        slot_steps (slots x steps), tokens (emitted), rows, slots, cache_len, attended (the sum over steps of
        the cache positions a step attends to: steps x cache_len without the live-length cut).
        """
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        w = self.llm_embedding.weight
        results = [LMOutput([], []) for _ in prompts]
        min_lens = [2 * len(p.text) for p in prompts]  # upstream: min/max_token_text_ratio 2 and 20
        max_lens = [20 * len(p.text) for p in prompts]
        need = [2 + len(p.prompt_text) + len(p.text) + len(p.prompt_speech) + m for p, m in zip(prompts, max_lens)]
        waiting = deque(i for i, m in enumerate(max_lens) if m > 0)  # no text: upstream's loop never runs
        if not waiting:
            return results
        cache_len = bucket(cache_len or max(need), LIVE_STEP)
        if max(need) > cache_len:
            raise ValueError(f"cache_len {cache_len} is shorter than a row needs ({max(need)})")
        n_slots = min(max_batch, 1 << (len(waiting) - 1).bit_length())
        s, graphs = self._state(n_slots, cache_len, cuda_graph)
        owner = [-1] * n_slots  # prompt index in each slot, -1 = free
        start = [0] * n_slots  # a slot's position when admitted + the step count then: bounds its position
        clock = {"prefill_s": 0.0, "decode_s": 0.0, "steps": 0, "attended": 0}

        def step(live: int):
            if graphs is not None:
                graphs.graphs[live].replay()  # captured in _state (a capture here would run warm-up steps)
            else:
                self._step(s, live)

        def admit():
            free = [i for i, o in enumerate(owner) if o < 0]
            batch = [(slot, waiting.popleft()) for slot in free[:len(waiting)]]
            if not batch:
                return
            started = time.perf_counter()
            prefixes = {i: self._prefix(prompts[i]) for _, i in batch}
            batch.sort(key=lambda si: prefixes[si[1]].shape[0])
            for c in range(0, len(batch), prefill_rows):
                chunk = batch[c:c + prefill_rows]
                self._prefill(s, [slot for slot, _ in chunk], [prefixes[i] for _, i in chunk])
            idx = to_device([slot for slot, _ in batch], torch.long, w.device)

            def put(t: torch.Tensor, values: list[int]):
                t[idx] = to_device(values, t.dtype, w.device)

            put(s.n_out, [0] * len(batch))
            put(s.min_len, [min_lens[i] for _, i in batch])
            put(s.max_len, [max_lens[i] for _, i in batch])
            put(s.seed, [seeds[i] for _, i in batch])
            s.history[idx] = -1
            s.done[idx] = False
            for slot, i in batch:
                owner[slot] = i
                start[slot] = prefixes[i].shape[0] - 1 - clock["steps"]
            clock["prefill_s"] += time.perf_counter() - started  # host time: admission does not wait

        admit()
        while any(o >= 0 for o in owner):
            started = time.perf_counter()
            # no occupied slot's position passes this before the next check (it grows by at most 1 a step)
            reach = max(start[slot] for slot, o in enumerate(owner) if o >= 0) + clock["steps"] + check_every
            live = min(cache_len, bucket(reach + 1, LIVE_STEP))
            for _ in range(check_every):
                step(live)
            clock["attended"] += live * check_every
            done = s.done.tolist()  # the host sync, once per check_every steps
            clock["decode_s"] += time.perf_counter() - started
            clock["steps"] += check_every
            finished = [slot for slot, o in enumerate(owner) if o >= 0 and done[slot]]
            if finished:
                n_out = s.n_out[finished].tolist()
                tokens, logprobs = s.tokens[finished].tolist(), s.logprobs[finished].tolist()
                for slot, n, tok, lp in zip(finished, n_out, tokens, logprobs):
                    results[owner[slot]] = LMOutput(tok[:n], lp[:n])
                    owner[slot] = -1
                admit()
        if timings is not None:
            timings.update(clock, slot_steps=clock["steps"] * n_slots, tokens=sum(len(r.tokens) for r in results),
                           rows=len(prompts), slots=n_slots, cache_len=cache_len)
        return results

    def generate(self, prompts: list[LMPrompt], seeds: list[int], max_batch: int = 256,
                 cache_len: int | None = None, check_every: int = 8, prefill_rows: int = 32,
                 cuda_graph: bool = True, timings: dict | None = None) -> list[list[int]]:
        """Each prompt's speech tokens (EOS excluded); the arguments as in `decode`."""
        return [r.tokens for r in self.decode(prompts, seeds, max_batch, cache_len, check_every, prefill_rows,
                                              cuda_graph, timings)]

    @torch.inference_mode()
    def teacher_forced(self, prompts: list[LMPrompt], speech: list[list[int]]) -> list[torch.Tensor]:
        """Log-probs [len(speech_i) + 1, speech_token_size + 3] per row, feeding the given tokens instead of
        sampled ones: all rows prefilled as one padded batch, then decoded together (the decode path's
        forward, without sampling). For tests and scoring."""
        prefixes = [self._prefix(p) for p in prompts]
        steps = max(len(t) for t in speech) + 1
        s = self._slots(len(prompts), max(p.shape[0] for p in prefixes) + steps)
        self._prefill(s, list(range(len(prompts))), prefixes)
        out: list[list[torch.Tensor]] = [[] for _ in prompts]
        for t in range(steps):
            logp = self._forward_step(s)
            for row, tokens in enumerate(speech):
                if t <= len(tokens):
                    out[row].append(logp[row])
            fed = [tokens[t] if t < len(tokens) else 0 for tokens in speech]
            s.x.copy_(self.speech_embedding(torch.tensor(fed, device=s.x.device)))
            s.pos += 1
        return [torch.stack(rows) for rows in out]
