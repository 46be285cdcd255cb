"""How the runtime runs its modules on a device: batches by a size budget, shape buckets, and CUDA graphs
kept per shape for the life of the process.

The modules (llm.py, flow.py, hift.py) only compute; this module decides how they run (the split of
FlashCosyVoice's `model_runner`): `budget_batches` cuts a length-sorted group into batches whose padded size
fits a budget (the flow's `[2B, heads, T, T]` attention and `[B, heads, T, 2T-1]` relative-position scores
grow with T², so a row count is no bound: 64 rows of 2,500 frames would need ~13 GB per score tensor);
`bucket` rounds a length up so that shapes repeat between calls; `GraphCache` keeps one captured CUDA graph
per key, so the LM's decode step is captured once per (slots, cache bucket) per process, not per call or
retry round. Nothing here runs on CPU but the batching arithmetic: the capture path is exercised only on a
GPU (benchmarks/gpu_session.sh, `gpu_cost.py --check` compares graph and eager tokens).
"""
from __future__ import annotations

from typing import Callable, Hashable

import torch


def to_device(values, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A host list on `device` without making the host wait: pinned memory and a non-blocking copy on CUDA
    (a pageable copy waits for every queued kernel first)."""
    t = torch.tensor(values, dtype=dtype)
    if device.type == "cpu":
        return t
    return (t.pin_memory() if device.type == "cuda" else t).to(device, non_blocking=True)


def bucket(n: int, step: int) -> int:
    """n rounded up to a multiple of step (at least one step)."""
    return max(step, -(-n // step) * step)


def budget_batches(order: list[int], sizes: list[int], max_rows: int, max_padded: int,
                   max_quadratic: int | None = None, max_waste: float | None = None) -> list[list[int]]:
    """Cut `order` (indices, sorted by size ascending) into consecutive batches such that each batch has at most
    `max_rows` rows, rows x its longest size <= `max_padded` (padded frames), and, if given,
    rows x longest² <= `max_quadratic` (the attention's score elements per head) and a padded share of at most
    `max_waste` (compute spent on padding; a batch of one row never has any). A row too long for the budget
    alone gets a batch of its own (it must run; the caller sizes the budget so that a real sentence fits)."""
    batches: list[list[int]] = []
    current: list[int] = []
    for n in order:
        longest = max([sizes[n]] + [sizes[m] for m in current])
        rows = len(current) + 1
        real = sizes[n] + sum(sizes[m] for m in current)
        fits = rows <= max_rows and rows * longest <= max_padded and (
            max_quadratic is None or rows * longest * longest <= max_quadratic) and (
            max_waste is None or 1 - real / max(1, rows * longest) <= max_waste)
        if current and not fits:
            batches.append(current)
            current = []
        current.append(n)
    if current:
        batches.append(current)
    return batches


def padding_waste(batches: list[list[int]], sizes: list[int]) -> float:
    """The share of padded positions in `batches` (0 = none): what the budget batching costs in compute."""
    padded = sum(len(b) * max(sizes[n] for n in b) for b in batches)
    real = sum(sizes[n] for b in batches for n in b)
    return 1 - real / padded if padded else 0.0


class GraphCache:
    """CUDA graphs by shape key, captured on first use and replayed after (with their static buffers, owned by
    whoever built them). One memory pool for all graphs of the cache, as torch.cuda.graphs recommends for
    graphs that never run concurrently."""

    def __init__(self) -> None:
        self.graphs: dict[Hashable, "torch.cuda.CUDAGraph"] = {}
        self.pool = None
        self.captures = 0

    def get(self, key: Hashable, step: Callable[[], None], warmup: int = 3) -> Callable[[], None]:
        """The replay function for `key`, capturing `step` (after `warmup` runs on a side stream) the first
        time. `step` must only touch tensors that stay alive with the graph (static buffers)."""
        if key not in self.graphs:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(warmup):
                    step()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            if self.pool is None:
                self.pool = torch.cuda.graph_pool_handle()
            with torch.cuda.graph(graph, pool=self.pool):
                step()
            self.graphs[key] = graph
            self.captures += 1
        return self.graphs[key].replay


class FlowODE:
    """The flow's 10-step Euler ODE (flow.py `CausalConditionalCFM`) run on padded static buffers per
    (rows, frames) bucket: rows rounded up to a power of two, frames to a multiple of `frame_step`. With
    `capture` (CUDA), each bucket's ODE is one CUDA graph, captured on first use and replayed after: ~10 x 2
    estimator calls' thousands of launches become one. Padding changes no row: the estimator is masked per row
    (flow.py), each row's noise is its own prefix of the fixed noise, and a padded row (mask all ones over
    zeros, so no all-masked attention) is dropped. Without `capture` the same padding runs eagerly (the CPU
    test of exactly what the graph replays)."""

    def __init__(self, cfm: torch.nn.Module, capture: bool, frame_step: int = 128, max_rows: int = 64) -> None:
        self.cfm, self.capture, self.frame_step, self.max_rows = cfm, capture, frame_step, max_rows
        self.graphs = GraphCache()
        self.buffers: dict[tuple[int, int, int], tuple[torch.Tensor, ...]] = {}

    def key(self, rows: int, frames: int) -> tuple[int, int]:
        power = 1 << (rows - 1).bit_length()
        return (power if power <= self.max_rows else rows), bucket(frames, self.frame_step)

    def __call__(self, mu: torch.Tensor, mask: torch.Tensor, spks: torch.Tensor, cond: torch.Tensor,
                 n_timesteps: int = 10) -> torch.Tensor:
        b, channels, t = mu.shape
        rows, frames = self.key(b, t)
        key = (rows, frames, n_timesteps)
        if key not in self.buffers:
            def zeros(*shape):
                return torch.zeros(*shape, dtype=mu.dtype, device=mu.device)

            self.buffers[key] = (zeros(rows, channels, frames), zeros(rows, 1, frames), zeros(rows, spks.shape[1]),
                                 zeros(rows, cond.shape[1], frames), None)
        mu_s, mask_s, spks_s, cond_s, _ = self.buffers[key]
        mu_s.zero_()
        cond_s.zero_()
        mask_s.fill_(1)  # padded rows: all frames "real" (zeros in), so no row attends to nothing
        mask_s[:b].zero_()
        mu_s[:b, :, :t] = mu
        cond_s[:b, :, :t] = cond
        mask_s[:b, :, :t] = mask
        spks_s.zero_()
        spks_s[:b] = spks
        if not self.capture:
            return self.cfm(mu_s, mask_s, spks_s, cond_s, n_timesteps=n_timesteps)[:b, :, :t]
        out = self.buffers[key][4]
        if out is None:
            out = self.cfm(mu_s, mask_s, spks_s, cond_s, n_timesteps=n_timesteps)  # its dtype and shape
            self.buffers[key] = (mu_s, mask_s, spks_s, cond_s, out)
        self.graphs.get(key, lambda: out.copy_(self.cfm(mu_s, mask_s, spks_s, cond_s, n_timesteps=n_timesteps)))()
        return out[:b, :, :t].clone()
