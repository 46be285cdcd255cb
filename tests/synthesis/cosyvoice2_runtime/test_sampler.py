"""sampler.py against upstream's own ras_sampling (cosyvoice/utils/common.py), with its multinomial draws
replayed from our uniforms, and the counter-based random numbers against a plain-Python splitmix64."""
from __future__ import annotations

import math

import pytest
import torch

from jaspeech.synthesis.tts.cosyvoice2_runtime.sampler import DRAWS_PER_STEP, ras_sample, uniforms

V = 67  # the tiny model's speech_token_size + 3
EOS = V - 3
M64 = (1 << 64) - 1


def splitmix64_uniform(seed: int, counter: int) -> float:
    """The reference: splitmix64 in unbounded Python ints, masked to 64 bits by hand."""
    def mix(z: int) -> int:
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    key = mix((seed + 0x9E3779B97F4A7C15) & M64)
    z = mix((key + (counter + 1) * 0x9E3779B97F4A7C15) & M64)
    return (z >> 11) * 2.0 ** -53


def test_uniforms_are_splitmix64_of_seed_and_step():
    seeds = [0, 1, 7, -1, -(1 << 63), (1 << 63) - 1, 123456789012345]
    steps = [0, 1, 9, 1000, 5, 2, (1 << 40)]
    u = uniforms(torch.tensor(seeds), torch.tensor(steps))
    assert u.dtype == torch.float64 and u.shape == (len(seeds), DRAWS_PER_STEP)
    for row, (seed, step) in enumerate(zip(seeds, steps)):
        for d in range(DRAWS_PER_STEP):
            assert u[row, d].item() == splitmix64_uniform(seed & M64, step * DRAWS_PER_STEP + d)
    # a row's numbers are its own: alone, or among others in another order
    alone = uniforms(torch.tensor(seeds[3:4]), torch.tensor(steps[3:4]))
    assert torch.equal(alone[0], u[3])


def test_uniforms_look_uniform():
    u = uniforms(torch.arange(4096), torch.zeros(4096, dtype=torch.long)).flatten()
    assert 0.0 <= u.min().item() and u.max().item() < 1.0
    assert abs(u.mean().item() - 0.5) < 0.01 and abs(u.var().item() - 1 / 12) < 0.005
    steps = uniforms(torch.full((4096,), 5), torch.arange(4096))[:, 0]
    assert torch.unique(steps).numel() == 4096  # one seed's stream does not repeat over its steps


class Replay:
    """Tensor.multinomial(1) replaced by the inverse CDF over given uniforms, in upstream's draw order
    (nucleus draw first, the repetition fallback second): the rule sampler.inverse_cdf implements."""

    def __init__(self):
        self.queue: list[float] = []
        self.calls = 0

    def __call__(self, probs: torch.Tensor, num_samples: int, replacement: bool = False) -> torch.Tensor:
        assert probs.dim() == 1 and num_samples == 1
        self.calls += 1
        u = self.queue.pop(0)
        cdf = probs.to(torch.float64).cumsum(0)
        last = int(torch.nonzero(probs > 0).max())
        return torch.clamp((cdf <= u * cdf[-1]).sum(), max=last).reshape(1)


@pytest.fixture
def upstream_ras(upstream, monkeypatch):
    from cosyvoice.utils.common import ras_sampling

    replay = Replay()
    monkeypatch.setattr(torch.Tensor, "multinomial", lambda probs, n, replacement=False: replay(probs, n, replacement))

    def pick(logp: torch.Tensor, history: list[int], u: tuple[float, float]) -> tuple[int, bool]:
        replay.queue, replay.calls = list(u), 0
        top = ras_sampling(logp, history, 25, top_p=0.8, top_k=25, win_size=10, tau_r=0.1)
        return int(top), replay.calls == 2

    return pick


def _history_ring(history: list[int]) -> list[int]:
    last = history[-10:]
    return last + [-1] * (10 - len(last))


def test_ras_sample_equals_upstream(upstream_ras):
    gen = torch.Generator().manual_seed(0)
    rows, histories = [], []
    for b in range(240):
        kind = b % 6
        if kind == 0:  # peaked: a few ids hold 80 %, the nucleus is cut by top_p
            logits = torch.randn(V, generator=gen, dtype=torch.float64) * 4
        elif kind == 1:  # flat: cut by top_k
            logits = torch.randn(V, generator=gen, dtype=torch.float64) * 0.1
        elif kind == 2:  # exact ties everywhere: the stable sort decides, lowest ids first
            logits = torch.zeros(V, dtype=torch.float64)
        elif kind == 3:  # a dominant EOS that is banned (below min_len) and the unused specials banned
            logits = torch.randn(V, generator=gen, dtype=torch.float64)
            logits[EOS] = 20.0
        else:
            logits = torch.randn(V, generator=gen, dtype=torch.float64) * float(1 + b % 4)
        logp = logits.log_softmax(-1)
        if kind == 3 or b % 2:
            logp[EOS + 1:] = -math.inf
            if kind == 3:
                logp[EOS] = -math.inf
        rows.append(logp)
        # histories: empty, short, the favourite ids (so the fallback fires), or random
        top_ids = logp.argsort(descending=True)[:10].tolist()
        h = [[], top_ids[:3], top_ids, torch.randint(0, EOS, (14,), generator=gen).tolist()][b % 4]
        histories.append(h)
    logp = torch.stack(rows)
    u = uniforms(torch.arange(len(rows)) * 31 + 5, torch.arange(len(rows)) % 7)
    ours = ras_sample(logp, torch.tensor([_history_ring(h) for h in histories]), u)

    fallbacks = cut_by_k = cut_by_p = 0
    for b in range(len(rows)):
        expected, fell_back = upstream_ras(rows[b], histories[b], (u[b, 0].item(), u[b, 1].item()))
        assert ours[b].item() == expected, b
        fallbacks += fell_back
        probs = rows[b].softmax(-1).sort(descending=True).values
        kept = int(((probs.cumsum(0) - probs) < 0.8).sum())
        cut_by_k += kept > 25
        cut_by_p += kept < 25
    banned_rows = [i for i in range(len(rows)) if i % 6 == 3]
    assert not torch.isin(ours[banned_rows], torch.tensor([EOS, EOS + 1, EOS + 2])).any()
    # the cases were all exercised
    assert fallbacks >= 30 and fallbacks <= len(rows) - 30
    assert cut_by_k >= 30 and cut_by_p >= 30


def test_both_draws_always_consumed_and_row_independent():
    """A row's pick depends on its own logp, history and uniforms only, not on its batch-mates."""
    gen = torch.Generator().manual_seed(1)
    logp = (torch.randn(32, V, generator=gen, dtype=torch.float64) * 2).log_softmax(-1)
    history = torch.randint(-1, EOS, (32, 10), generator=gen)
    u = uniforms(torch.arange(32), torch.full((32,), 3))
    together = ras_sample(logp, history, u)
    perm = torch.randperm(32, generator=gen)
    assert torch.equal(ras_sample(logp[perm], history[perm], u[perm]), together[perm])
    for b in (0, 17, 31):
        assert ras_sample(logp[b:b + 1], history[b:b + 1], u[b:b + 1]).item() == together[b].item()


def test_float32_sampler_equals_upstream_on_half_logits(upstream_ras):
    """The GPU path: fp16 logits, log_softmax in float32 (upstream's autocast), then ras_sample in float32 (the
    running sums next to top_p accumulate in float32 as upstream's loop does) equals upstream given the same
    draws."""
    gen = torch.Generator().manual_seed(5)
    logits = (torch.randn(200, V, generator=gen) * torch.linspace(0.1, 6, 200)[:, None]).half()
    logp = logits.float().log_softmax(-1)
    logp[::2, EOS + 1:] = -math.inf
    histories = [[] if b % 2 else logp[b].argsort(descending=True)[:10].tolist() for b in range(200)]
    u = uniforms(torch.arange(200) + 77, torch.arange(200) % 5)
    ours = ras_sample(logp, torch.tensor([_history_ring(h) for h in histories]), u)
    assert logp.dtype == torch.float32
    for b in range(200):
        expected, _ = upstream_ras(logp[b], histories[b], (u[b, 0].item(), u[b, 1].item()))
        assert ours[b].item() == expected, b
