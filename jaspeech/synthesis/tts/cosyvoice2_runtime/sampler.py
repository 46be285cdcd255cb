"""Upstream's repetition-aware sampling for a whole batch, with per-row counter-based random numbers.

Follows `ras_sampling`, `nucleus_sampling` and `random_sampling` in cosyvoice/utils/common.py of
FunAudioLLM/CosyVoice 6385656 (Apache-2.0, Copyright Alibaba Inc), rewritten as tensor ops over [B, V]:

    nucleus   softmax, stable sort descending, keep rank i while (sum of the kept before i) < top_p and
              i < top_k (upstream's loop, which stops at the first rank that fails), draw one by inverse CDF
    fallback  if the pick occurs >= win_size * tau_r times among the row's last win_size decoded tokens,
              draw again from the full softmax (at 6385656 the repeated token is not excluded)

Why not `torch.multinomial`: it draws from a device's global generator, so a row's tokens would depend on
how many draws its batch-mates (and its own repetition fallbacks) consumed before it, and the stream differs
between CPU and GPU. Here every row owns its random numbers: `uniforms(seed, step)` is a splitmix64 hash of
(row seed, step, draw) in int64 tensor ops, so the same (seed, step) gives the same numbers on any device,
in any batch, in a CUDA graph. Each step consumes exactly two (nucleus, fallback), used or not.

Draws are by inverse CDF: with kept probabilities p (unnormalised, as multinomial accepts them), the pick is
the first index whose cumulative sum (float64) exceeds u * sum(p). The tests replay upstream's own
`ras_sampling` with `Tensor.multinomial` replaced by that same rule over the same uniforms.
"""
from __future__ import annotations

import torch

DRAWS_PER_STEP = 2  # u[:, 0] nucleus, u[:, 1] repetition fallback

_GAMMA = 0x9E3779B97F4A7C15  # splitmix64's increment (the golden ratio in 64 bits)
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _int64(value: int) -> int:
    """A 64-bit constant as the signed int64 torch stores (the same bits)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _shr(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's `>>` is arithmetic: it would copy the sign bit in)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _mix(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser. int64 multiplication wraps modulo 2**64, which is what the hash wants."""
    z = (z ^ _shr(z, 30)) * _int64(_MIX1)
    z = (z ^ _shr(z, 27)) * _int64(_MIX2)
    return z ^ _shr(z, 31)


def uniforms(seeds: torch.Tensor, steps: torch.Tensor, draws: int = DRAWS_PER_STEP) -> torch.Tensor:
    """[B] int64 seeds and [B] int64 steps -> [B, draws] float64 uniforms in [0, 1) (53 random bits each).

    Row b's numbers are splitmix64's output stream for the state mix(seed_b + gamma), at counter
    step_b * draws + d: a pure function of (seed, step, d), never of the batch or the device.
    """
    key = _mix(seeds.to(torch.int64) + _int64(_GAMMA))
    counter = steps.to(torch.int64)[:, None] * draws + torch.arange(draws, device=seeds.device)
    z = _mix(key[:, None] + (counter + 1) * _int64(_GAMMA))
    return _shr(z, 11).to(torch.float64) * (2.0 ** -53)


def inverse_cdf(probs: torch.Tensor, u: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Per row, the first index whose float64 cumulative probability exceeds u * total.

    `last` [B] is the highest index that may come out (the last kept / last non-zero entry): a product
    u * total that rounds up to the total would otherwise land on a zero-probability tail entry.
    """
    cdf = probs.to(torch.float64).cumsum(dim=-1)
    picked = (cdf <= u[:, None] * cdf[:, -1:]).sum(dim=-1)
    return torch.minimum(picked, last)


def _running_sums_before(top: torch.Tensor) -> torch.Tensor:
    """[B, k] -> [B, k]: at rank i, the sum of ranks < i, added one by one in the tensor's dtype.

    Upstream accumulates `cum_prob += sorted_value[i]` in the probabilities' dtype. `torch.cumsum` does
    not reproduce that: on CPU it accumulates float32 in double, on CUDA it scans in another order, so a
    running sum next to top_p could fall on the other side. k is 25: 25 small adds per step.
    """
    running = torch.zeros_like(top[:, 0])
    sums = []
    for i in range(top.shape[-1]):
        sums.append(running)
        running = running + top[:, i]
    return torch.stack(sums, dim=-1)


def ras_sample(logp: torch.Tensor, history: torch.Tensor, u: torch.Tensor, top_p: float = 0.8,
               top_k: int = 25, tau_r: float = 0.1) -> torch.Tensor:
    """One token id per row: [B, V] log-probs (banned ids already -inf), [B, win] history (-1 = empty),
    [B, 2] uniforms -> [B] int64. Both draws are always computed, so the cost and the randomness consumed
    never depend on whether a row's fallback fires."""
    probs = logp.softmax(dim=-1)  # upstream: weighted_scores.softmax(dim=0) of the log-probs
    k = min(top_k, probs.shape[-1])
    top, top_ids = probs.sort(dim=-1, descending=True, stable=True)
    top, top_ids = top[:, :k], top_ids[:, :k]
    before = _running_sums_before(top)
    keep = before < top_p  # a prefix (the running sum only grows); rank 0 is always kept
    kept = torch.where(keep, top, torch.zeros_like(top))
    nucleus = top_ids.gather(1, inverse_cdf(kept, u[:, 0], keep.sum(dim=-1) - 1)[:, None])[:, 0]

    repeats = (history == nucleus[:, None]).sum(dim=-1)
    ids = torch.arange(probs.shape[-1], device=probs.device)
    last_positive = torch.where(probs > 0, ids, torch.zeros_like(ids)).amax(dim=-1)
    full = inverse_cdf(probs, u[:, 1], last_positive)
    return torch.where(repeats >= history.shape[-1] * tau_r, full, nucleus)
