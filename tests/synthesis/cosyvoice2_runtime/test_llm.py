"""llm.py against upstream's Qwen2LM (cosyvoice/llm/llm.py) on the tiny folders, float64.

Two things about the oracle, both patched only where a test says so:
- newer transformers changed what upstream's `forward_one_step` mask means. Upstream passes a 2-D mask as
  long as the new input (length 1 on a decode step). transformers 4.51 (upstream's pin) ignored an all-ones
  mask for SDPA, so the step attended to the whole cache; masking_utils (transformers 5.25 here) pads the
  short mask with False up to the cache length, so every decode step after the prefill attends to the first
  key (sos) alone (`test_upstream_decode_mask_under_new_transformers`). Our forward attends to the whole
  cache (what the model was trained and released with); the oracle gets a full-length mask.
- we mask EOS below min_len and the two unused ids always (upstream HEAD); 6385656 redraws EOS and skips
  the unused ids with `continue`. The end-to-end oracle is upstream's `inference` with `sampling_ids`
  patched to mask the same ids, and its multinomial draws replayed from our uniforms.
"""
from __future__ import annotations

import math
import shutil
from functools import partial

import pytest
import torch

from jaspeech.synthesis.tts.cosyvoice2_runtime.llm import CosyVoice2LM, LMPrompt
from jaspeech.synthesis.tts.cosyvoice2_runtime.sampler import uniforms
from tests.synthesis.cosyvoice2_runtime.test_sampler import Replay
from tests.synthesis.tiny_cosyvoice2 import SPEECH_TOKENS, build_tiny_cosyvoice2

EOS = SPEECH_TOKENS

PROMPTS = [  # (different prompt / text / prompt-speech lengths, one prompt without speech)
    LMPrompt(text=[50, 51, 52], prompt_text=[60, 61], prompt_speech=[1, 2, 3, 4]),
    LMPrompt(text=[70], prompt_text=[], prompt_speech=[]),
    LMPrompt(text=[80, 81, 82, 83, 84, 85], prompt_text=[90, 91, 92, 93], prompt_speech=[5] * 9),
    LMPrompt(text=[100, 101], prompt_text=[110], prompt_speech=[7, 8, 9, 10, 11, 12, 13]),
]
SPEECH = [[3, 4, 5, 6], [7], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], []]


@pytest.fixture(scope="module")
def ours(tiny_folder):
    return CosyVoice2LM.from_folder(tiny_folder, dtype=torch.float64)


@pytest.fixture(scope="module")
def deep(upstream, tiny_folder, tmp_path_factory):
    """The tiny folder with a 3-layer Qwen2 (4 query heads on 2 kv heads, rope_theta 1e6): layer
    indexing, GQA groups > 1 and the config's RoPE base. llm.pt from upstream's Qwen2LM built on it."""
    from cosyvoice.llm.llm import Qwen2Encoder, Qwen2LM
    from cosyvoice.utils.common import ras_sampling
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("deep") / "CosyVoice2-deep"
    shutil.copytree(tiny_folder, folder)
    blank = folder / "CosyVoice-BlankEN"
    vocab = Qwen2Config.from_pretrained(blank).vocab_size
    torch.manual_seed(3)
    Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                 num_attention_heads=4, num_key_value_heads=2, rope_theta=1e6,
                                 max_position_embeddings=4096, tie_word_embeddings=True)).save_pretrained(blank)
    llm = Qwen2LM(32, 32, SPEECH_TOKENS, Qwen2Encoder(str(blank)),
                  partial(ras_sampling, top_p=0.8, top_k=25, win_size=10, tau_r=0.1))
    torch.save(llm.state_dict(), folder / "llm.pt")
    return CosyVoice2LM.from_folder(folder, dtype=torch.float64), llm.double().eval()


def _upstream_prefix(llm, prompt: LMPrompt) -> torch.Tensor:
    """lm_input as upstream's Qwen2LM.inference builds it (from upstream's modules)."""
    text = llm.llm.model.model.embed_tokens(torch.tensor([prompt.prompt_text + prompt.text]))
    speech = llm.speech_embedding(torch.tensor([prompt.prompt_speech], dtype=torch.long))
    return torch.cat([llm.llm_embedding.weight[0].reshape(1, 1, -1), text,
                      llm.llm_embedding.weight[1].reshape(1, 1, -1), speech], dim=1)


@torch.inference_mode()
def _upstream_teacher_forced(llm, prompt: LMPrompt, speech: list[int], full_mask: bool = True) -> torch.Tensor:
    """Upstream's inference_wrapper loop (forward_one_step, llm_decoder, log_softmax) with given tokens.
    full_mask=False passes the mask exactly as inference_wrapper does."""
    x, cache, seen, out = _upstream_prefix(llm, prompt), None, 0, []
    for t in range(len(speech) + 1):
        seen += x.shape[1]
        n = seen if full_mask else x.shape[1]
        y, cache = llm.llm.forward_one_step(x, masks=torch.tril(torch.ones((1, n, n))).to(torch.bool), cache=cache)
        out.append(llm.llm_decoder(y[:, -1]).log_softmax(dim=-1)[0])
        if t < len(speech):
            x = llm.speech_embedding.weight[speech[t]].reshape(1, 1, -1)
    return torch.stack(out)


def test_strict_load_and_parameter_count(tiny_folder, upstream_modules, ours):
    from transformers import Qwen2Config

    upstream_state = upstream_modules.llm.state_dict()
    assert list(ours.state_dict()) == list(upstream_state)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in upstream_modules.llm.parameters())
    for name, value in ours.state_dict().items():
        assert torch.equal(value, upstream_state[name]), name
    assert ours.llm.model.lm_head.weight is ours.llm.model.model.embed_tokens.weight  # tied, as upstream's
    # the plain constructor (real tensors, not meta) takes llm.pt through load_state_dict unchanged
    plain = CosyVoice2LM(Qwen2Config.from_pretrained(tiny_folder / "CosyVoice-BlankEN"), SPEECH_TOKENS, 32, 32)
    plain.load_state_dict(torch.load(tiny_folder / "llm.pt", weights_only=True), strict=True)
    assert torch.equal(plain.llm_decoder.bias, ours.llm_decoder.bias.float())


@pytest.mark.parametrize("model", ["tiny", "deep"])
def test_teacher_forced_padded_batch_equals_upstream(model, ours, upstream_modules, deep):
    """Rows of different lengths prefilled as one right-padded batch and decoded together (per-row
    positions and key masks) give upstream's per-row log-probs."""
    mine, llm = (ours, upstream_modules.llm) if model == "tiny" else deep
    got = mine.teacher_forced(PROMPTS, SPEECH)
    for prompt, speech, logp in zip(PROMPTS, SPEECH, got):
        expected = _upstream_teacher_forced(llm, prompt, speech)
        assert logp.shape == expected.shape == (len(speech) + 1, SPEECH_TOKENS + 3)
        assert (logp - expected).abs().max().item() <= 1e-9


def test_upstream_decode_mask_under_new_transformers(ours, upstream_modules):
    """Why the oracle gets a full-length mask: with the mask inference_wrapper passes, the prefill agrees
    with us and every later step either agrees too (transformers 4.51) or is attention to the first key
    alone (masking_utils pads the short mask with False)."""
    llm = upstream_modules.llm
    prompt, speech = PROMPTS[0], SPEECH[0]
    as_called = _upstream_teacher_forced(llm, prompt, speech, full_mask=False)
    mine = ours.teacher_forced([prompt], [speech])[0]
    assert (as_called[0] - mine[0]).abs().max().item() <= 1e-9
    if (as_called - mine).abs().max().item() > 1e-9:
        with torch.inference_mode():
            x, cache, seen = _upstream_prefix(llm, prompt), None, 0
            for t in range(len(speech) + 1):
                seen += x.shape[1]
                first_key_only = torch.zeros(1, seen, dtype=torch.bool)
                first_key_only[0, 0] = True
                mask = torch.ones(1, seen, dtype=torch.bool) if t == 0 else first_key_only
                outs = llm.llm.model(inputs_embeds=x, attention_mask=mask, output_hidden_states=True,
                                     use_cache=True, past_key_values=cache)
                cache = outs.past_key_values
                logp = llm.llm_decoder(outs.hidden_states[-1][:, -1]).log_softmax(dim=-1)[0]
                assert (logp - as_called[t]).abs().max().item() <= 1e-12
                if t < len(speech):
                    x = llm.speech_embedding.weight[speech[t]].reshape(1, 1, -1)


@pytest.fixture(scope="module")
def runaway_folder(upstream, tmp_path_factory):
    """eos_bias=0: EOS is no likelier than any id, so rows run long (repetition fallbacks, max_len)."""
    return build_tiny_cosyvoice2(tmp_path_factory.mktemp("runaway") / "CosyVoice2-tiny", eos_bias=0)


def _patched_upstream_inference(llm, monkeypatch):
    """upstream's Qwen2LM.inference with (1) forward_one_step given the full-length mask, (2) sampling_ids
    masking EOS below min_len and the unused ids (HEAD semantics, one draw per step), (3) multinomial
    replayed from our uniforms for (seed, step). Returns run(prompt, seed) -> (tokens, fallbacks)."""
    replay = Replay()
    monkeypatch.setattr(torch.Tensor, "multinomial", lambda probs, n, replacement=False: replay(probs, n, replacement))
    real_step = llm.llm.forward_one_step

    def forward_one_step(xs, masks, cache=None):
        n = (cache.get_seq_length() if cache is not None else 0) + xs.shape[1]
        return real_step(xs, torch.ones(1, n, n, dtype=torch.bool), cache=cache)

    state = {"seed": 0, "fallbacks": 0}

    def sampling_ids(weighted_scores, decoded_tokens, sampling, ignore_eos=True):
        scores = weighted_scores.clone()
        scores[EOS + 1:] = -math.inf
        if ignore_eos:
            scores[EOS] = -math.inf
        replay.queue = uniforms(torch.tensor([state["seed"]]), torch.tensor([len(decoded_tokens)]))[0].tolist()
        replay.calls = 0
        top = llm.sampling(scores, decoded_tokens, sampling)
        state["fallbacks"] += replay.calls == 2
        return top

    monkeypatch.setattr(llm.llm, "forward_one_step", forward_one_step)
    monkeypatch.setattr(llm, "sampling_ids", sampling_ids)

    def run(prompt: LMPrompt, seed: int) -> tuple[list[int], int]:
        state["seed"], state["fallbacks"] = seed, 0
        tensor = partial(torch.tensor, dtype=torch.long)
        tokens = [int(t) for t in llm.inference(
            tensor([prompt.text]), tensor([len(prompt.text)]), tensor([prompt.prompt_text]),
            tensor([len(prompt.prompt_text)]), tensor([prompt.prompt_speech]), tensor([len(prompt.prompt_speech)]),
            torch.zeros(1, 192, dtype=torch.float64))]
        return tokens, state["fallbacks"]

    return run


@pytest.mark.parametrize("eos", ["trained", "runaway"])
def test_generate_equals_upstream_inference(eos, tiny_folder, runaway_folder, upstream_modules, ours, monkeypatch):
    """Token for token at batch 1 (and the same rows batched), upstream's draws replayed from our stream."""
    if eos == "trained":
        llm, mine = upstream_modules.llm, ours
    else:
        from hyperpyyaml import load_hyperpyyaml

        configs = load_hyperpyyaml((runaway_folder / "cosyvoice2.yaml").read_text(encoding="utf-8"),
                                   overrides={"qwen_pretrain_path": str(runaway_folder / "CosyVoice-BlankEN")})
        llm = configs["llm"]
        llm.load_state_dict(torch.load(runaway_folder / "llm.pt", weights_only=True), strict=True)
        llm, mine = llm.double().eval(), CosyVoice2LM.from_folder(runaway_folder, dtype=torch.float64)
    run = _patched_upstream_inference(llm, monkeypatch)
    prompts = PROMPTS[:3] if eos == "trained" else [PROMPTS[1], PROMPTS[3]]
    seeds = [11, 22, 33][:len(prompts)]
    batched = mine.generate(prompts, seeds)
    fallbacks = 0
    for prompt, seed, together in zip(prompts, seeds, batched):
        expected, fell_back = run(prompt, seed)
        fallbacks += fell_back
        assert mine.generate([prompt], [seed])[0] == expected == together
        assert 2 * len(prompt.text) <= len(expected) <= 20 * len(prompt.text)
    if eos == "runaway":
        assert fallbacks > 0  # the repetition fallback was exercised


def test_batch_invariance_and_continuous_batching(ours):
    """A row's tokens and log-probs do not depend on its batch-mates, their order, its slot, the cache
    length or refills of freed slots."""
    prompts = PROMPTS + [LMPrompt(text=[120, 121, 122], prompt_text=[], prompt_speech=[30, 31]),
                         LMPrompt(text=[130], prompt_text=[131, 132, 133], prompt_speech=[40] * 20)]
    seeds = [5, 6, 7, 8, 9, 10]
    ref = ours.decode(prompts, seeds)
    assert len({len(r.tokens) for r in ref}) >= 3  # rows of different lengths finish at different steps

    def same(got, rows):
        for g, i in zip(got, rows):
            assert g.tokens == ref[i].tokens
            assert max((abs(a - b) for a, b in zip(g.logprobs, ref[i].logprobs)), default=0.0) <= 1e-9

    for i in range(len(prompts)):
        same(ours.decode([prompts[i]], [seeds[i]]), [i])
    perm = [4, 1, 5, 0, 3, 2]
    same(ours.decode([prompts[i] for i in perm], [seeds[i] for i in perm]), perm)
    extra = [LMPrompt(text=[140 + k] * (k + 1), prompt_text=[150], prompt_speech=[k] * 3) for k in range(5)]
    same(ours.decode(prompts + extra, seeds + [100 + k for k in range(5)])[:len(prompts)], range(len(prompts)))
    timings: dict = {}
    same(ours.decode(prompts, seeds, max_batch=2, check_every=3, timings=timings), range(len(prompts)))
    assert timings["slots"] == 2 and timings["tokens"] == sum(len(r.tokens) for r in ref)
    same(ours.decode(prompts, seeds, cache_len=1024, prefill_rows=1), range(len(prompts)))


@pytest.mark.parametrize("bias", [50.0, -50.0])
def test_min_and_max_length(bias, tiny_folder, ours):
    """EOS made overwhelming: never before 2 tokens per text token; EOS made impossible: stop at 20."""
    state = torch.load(tiny_folder / "llm.pt", weights_only=True)
    state["llm_decoder.bias"][EOS] += bias
    model = CosyVoice2LM.from_folder(tiny_folder, dtype=torch.float64)
    model.load_state_dict(state, strict=True)
    prompts = [LMPrompt(text=[60] * n, prompt_text=[61, 62], prompt_speech=[3, 4]) for n in (1, 2, 4)]
    prompts.append(LMPrompt(text=[], prompt_text=[61], prompt_speech=[3]))
    out = model.generate(prompts, [1, 2, 3, 4])
    ratio = 2 if bias > 0 else 20
    assert [len(t) for t in out] == [ratio * n for n in (1, 2, 4)] + [0]
    assert all(0 <= t < EOS for tokens in out for t in tokens)


def test_step_is_static_and_finished_rows_stay_put(ours):
    """What CUDA-graph replay relies on (no GPU here): the step writes every state tensor in place (same
    storage, same shapes), and a finished row's position, count, history and outputs do not move, so the
    warm-up and capture steps on an all-done state, and the steps a finished row runs until the next
    check, change nothing that is read."""
    from dataclasses import fields

    s = ours._slots(3, 128)
    before = {f.name: (getattr(s, f.name).data_ptr(), getattr(s, f.name).clone()) for f in fields(s)}
    with torch.inference_mode():
        for _ in range(3):
            ours._step(s)  # all done: a fresh state
    for name in ("pos", "n_out", "done", "min_len", "max_len", "seed"):
        assert torch.equal(getattr(s, name), before[name][1]), name
    prefixes = [ours._prefix(p) for p in PROMPTS[:3]]
    with torch.inference_mode():
        ours._prefill(s, [0, 1, 2], prefixes)
        s.done[:] = torch.tensor([False, True, False])
        s.min_len[:], s.max_len[:] = 10, 40
        for _ in range(5):
            ours._step(s)
    assert s.n_out.tolist()[1] == 0 and s.pos.tolist()[1] == prefixes[1].shape[0] - 1
    assert s.n_out.tolist()[0] == 5 and s.n_out.tolist()[2] == 5
    for f in fields(s):
        value = getattr(s, f.name)
        assert value.data_ptr() == before[f.name][0] and value.shape == before[f.name][1].shape, f.name


def test_state_reused_across_calls_equals_a_fresh_one(tiny_folder, ours):
    """The cache, buffers (and, on CUDA, graphs) are kept between decode() calls of the same shapes: a call after
    another, on the kept state with the first call's stale cache entries, gives what a fresh model gives; and the
    step attends over the live part of the cache only."""
    fresh = CosyVoice2LM.from_folder(tiny_folder, dtype=torch.float64)
    first = [LMPrompt(text=[60 + k] * 5, prompt_text=[61], prompt_speech=[k] * 12) for k in range(4)]
    want = fresh.decode(PROMPTS, [1, 2, 3, 4], cache_len=512)
    ours.decode(first, [9, 8, 7, 6], cache_len=512)
    (state, _), = [v for k, v in ours._states.items() if k == (4, 512)]
    timings: dict = {}
    got = ours.decode(PROMPTS, [1, 2, 3, 4], cache_len=512, timings=timings)
    assert ours._states[(4, 512)][0] is state  # reused, not reallocated
    for g, w in zip(got, want):
        assert g.tokens == w.tokens and g.logprobs == w.logprobs  # bitwise: same shapes, same kernels
    assert timings["attended"] < timings["steps"] * 512 / 2  # the rows are short: most of the cache is skipped


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_log_softmax_and_sampler_in_float32_for_half_models(tiny_folder, dtype):
    """As upstream under autocast: the decoder's logits in the model dtype, log_softmax and sampling in float32."""
    model = CosyVoice2LM.from_folder(tiny_folder, dtype=dtype)
    s = model._slots(2, 128)
    with torch.inference_mode():
        model._prefill(s, [0, 1], [model._prefix(p) for p in PROMPTS[:2]])
        logp = model._forward_step(s)
    assert logp.dtype == torch.float32 and s.logprobs.dtype == torch.float32
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2), atol=1e-5)
    out = model.decode(PROMPTS[:2], [1, 2])
    assert all(len(r.tokens) >= 2 * len(p.text) for r, p in zip(out, PROMPTS[:2]))
