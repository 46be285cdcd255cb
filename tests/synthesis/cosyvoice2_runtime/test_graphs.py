"""graphs.py: budget batching (the flow's and HiFT's batches) and its equality with row-at-a-time runs."""
from __future__ import annotations

import torch

from jaspeech.synthesis.tts.cosyvoice2_runtime.flow import CosyVoice2Flow
from jaspeech.synthesis.tts.cosyvoice2_runtime.graphs import bucket, budget_batches, padding_waste


def test_budget_batches_keep_every_row_once_in_order_within_the_budget():
    sizes = [10, 12, 40, 41, 100, 500, 30]
    order = sorted(range(len(sizes)), key=lambda n: sizes[n])
    batches = budget_batches(order, sizes, max_rows=3, max_padded=130, max_quadratic=10_000)
    assert [n for b in batches for n in b] == order
    for b in batches:
        longest = max(sizes[n] for n in b)
        assert len(b) <= 3 and (len(b) == 1 or (len(b) * longest <= 130 and len(b) * longest ** 2 <= 10_000))
    assert [5] in batches  # too long for the budget alone: a batch of its own, never dropped
    assert 0 <= padding_waste(batches, sizes) < 0.2
    capped = budget_batches(order, sizes, max_rows=10, max_padded=10_000, max_waste=0.25)
    assert [n for b in capped for n in b] == order
    assert all(padding_waste([b], sizes) <= 0.25 for b in capped) and len(capped) > 1
    assert bucket(1, 64) == 64 and bucket(64, 64) == 64 and bucket(65, 64) == 128


def test_flow_by_frame_budget_equals_row_at_a_time(tiny_folder, one_thread):
    """The runtime's flow batches (budget_batches over mel frames) give each row what it gives alone, float64."""
    flow = CosyVoice2Flow.from_folder(tiny_folder, dtype=torch.float64)
    g = torch.Generator().manual_seed(7)
    spec = [(5, 6), (20, 60), (8, 30), (12, 17), (6, 9)]
    tokens = [torch.randint(0, 64, (n,), generator=g) for _, n in spec]
    prompts = [torch.randint(0, 64, (n,), generator=g) for n, _ in spec]
    feats = [torch.randn(2 * n, 80, generator=g, dtype=torch.float64) for n, _ in spec]
    emb = torch.randn(len(spec), 192, generator=g, dtype=torch.float64)
    frames = [2 * (p + t) for p, t in spec]
    order = sorted(range(len(spec)), key=lambda n: frames[n])
    batches = budget_batches(order, frames, max_rows=8, max_padded=200)
    assert len(batches) > 1 and max(len(b) for b in batches) > 1  # the budget cuts, and batches several rows
    got = {}
    for b in batches:
        for n, mel in zip(b, flow.inference([tokens[n] for n in b], [prompts[n] for n in b], [feats[n] for n in b],
                                            emb[b], n_timesteps=3)):
            got[n] = mel
    for n in range(len(spec)):
        alone = flow.inference([tokens[n]], [prompts[n]], [feats[n]], emb[n:n + 1], n_timesteps=3)[0]
        assert (got[n] - alone).abs().max().item() < 1e-9, f"row {n}"


def test_flow_ode_on_bucketed_buffers_equals_the_plain_ode(tiny_folder, one_thread):
    """What the flow's CUDA graph replays, run eagerly: the ODE on buffers padded to a (rows, frames) bucket (3 rows
    -> 4, frames -> a multiple of 128, a padded row) gives each row what the plain ODE gives, float64."""
    from jaspeech.synthesis.tts.cosyvoice2_runtime.graphs import FlowODE

    flow = CosyVoice2Flow.from_folder(tiny_folder, dtype=torch.float64)
    g = torch.Generator().manual_seed(8)
    spec = [(5, 6), (9, 30), (4, 11)]
    args = ([torch.randint(0, 64, (n,), generator=g) for _, n in spec],
            [torch.randint(0, 64, (n,), generator=g) for n, _ in spec],
            [torch.randn(2 * n, 80, generator=g, dtype=torch.float64) for n, _ in spec],
            torch.randn(len(spec), 192, generator=g, dtype=torch.float64))
    ode = FlowODE(flow.decoder, capture=False)
    assert ode.key(3, 78) == (4, 128) and ode.key(100, 300) == (100, 384)
    plain = flow.inference(*args, n_timesteps=3)
    padded = flow.inference(*args, n_timesteps=3, ode=ode)
    for p, q in zip(plain, padded):
        assert p.shape == q.shape and (p - q).abs().max().item() < 1e-9
