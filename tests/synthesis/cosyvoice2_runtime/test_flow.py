"""Our batched flow (cosyvoice2_runtime/flow.py) against upstream's CausalMaskedDiffWithXvec, float64.

Upstream at float64 needs two test-only patches (inside `_upstream_float64`, undone after each call):
`mask_to_bias` asserts a float32/16 dtype (we give it float64, same formula), and upstream casts its result
to float32 at the end (`solve_euler`'s `sol[-1].float()`, `inference`'s `feat.float()`): those casts keep
float64 tensors as they are, so the comparison is at float64 precision, not float32's.
"""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from jaspeech.synthesis.tts.cosyvoice2_runtime.flow import CosyVoice2Flow

TOL = 1e-9
# (prompt tokens, tokens) per row; row 0 is heavily padded beside row 1 (11 vs 80 tokens)
ROWS = [(5, 6), (20, 60), (8, 30), (12, 17)]


@contextmanager
def _upstream_float64():
    import cosyvoice.flow.decoder as upstream_decoder

    to_float, to_bias = torch.Tensor.float, upstream_decoder.mask_to_bias
    torch.Tensor.float = lambda self, *a, **k: self if self.dtype == torch.float64 else to_float(self, *a, **k)
    upstream_decoder.mask_to_bias = lambda mask, dtype: (1.0 - mask.to(dtype)) * -1.0e10
    try:
        yield
    finally:
        torch.Tensor.float, upstream_decoder.mask_to_bias = to_float, to_bias


def _rows(spec, seed):
    g = torch.Generator().manual_seed(seed)
    tokens = [torch.randint(0, 64, (n,), generator=g) for _, n in spec]
    prompts = [torch.randint(0, 64, (n,), generator=g) for n, _ in spec]
    feats = [torch.randn(2 * n, 80, generator=g, dtype=torch.float64) for n, _ in spec]
    return tokens, prompts, feats, torch.randn(len(spec), 192, generator=g, dtype=torch.float64)


def _upstream_row(flow, token, prompt, feat, embedding):
    with _upstream_float64():
        mel, _ = flow.inference(token[None], torch.tensor([len(token)]), prompt[None], torch.tensor([len(prompt)]),
                                feat[None], torch.tensor([len(feat)]), embedding[None], streaming=False, finalize=True)
    return mel[0]


@pytest.fixture(scope="module")
def ours(tiny_folder, one_thread):
    return CosyVoice2Flow.from_folder(tiny_folder, dtype=torch.float64)


@pytest.fixture(scope="module")
def batch(ours):
    tokens, prompts, feats, embeddings = _rows(ROWS, seed=1)
    return tokens, prompts, feats, embeddings, ours.inference(tokens, prompts, feats, embeddings)


def test_loads_strictly_with_upstreams_names_and_noise(tiny_folder, upstream_modules, ours):
    state = torch.load(tiny_folder / "flow.pt", map_location="cpu", weights_only=True)
    assert set(ours.state_dict()) == set(state) == set(upstream_modules.flow.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in upstream_modules.flow.parameters())
    assert ours.dtype == torch.float64
    assert torch.equal(ours.decoder.rand_noise, upstream_modules.flow.decoder.rand_noise)  # seed 0, [1, 80, 15000]


def test_batch_of_mixed_lengths_equals_upstream_row_by_row(upstream_modules, batch):
    tokens, prompts, feats, embeddings, mels = batch
    for row, (token, prompt, feat) in enumerate(zip(tokens, prompts, feats)):
        want = _upstream_row(upstream_modules.flow, token, prompt, feat, embeddings[row])
        assert mels[row].shape == want.shape == (80, 2 * len(token))
        assert mels[row].dtype == torch.float64
        assert (mels[row] - want).abs().max().item() < TOL, f"row {row}"


def test_rows_do_not_depend_on_batch_mates(ours, batch):
    tokens, prompts, feats, embeddings, mels = batch
    alone = ours.inference(tokens[:1], prompts[:1], feats[:1], embeddings[:1])[0]
    assert (alone - mels[0]).abs().max().item() < TOL
    extra = _rows([(9, 70)], seed=2)  # a new, longest batch-mate; the others permuted
    order = [2, 0, 3]
    mixed = ours.inference([extra[0][0]] + [tokens[i] for i in order], [extra[1][0]] + [prompts[i] for i in order],
                           [extra[2][0]] + [feats[i] for i in order],
                           torch.cat([extra[3], embeddings[order]]))
    for got, row in zip(mixed[1:], order):
        assert (got - mels[row]).abs().max().item() < TOL, f"row {row}"


def test_upstreams_batch_path_leaks_into_a_short_row_and_ours_does_not(upstream_modules, ours):
    """Upstream's encoder on a padded batch changes the short row (padding reaches its last 3 tokens through
    the lookahead conv, then every frame through attention); ours, which zeroes padding after `embed`, gives
    the row as upstream alone."""
    g = torch.Generator().manual_seed(3)
    short, long = torch.randint(0, 64, (7,), generator=g), torch.randint(0, 64, (40,), generator=g)
    ids = torch.zeros(2, 40, dtype=torch.long)
    ids[0, :7], ids[1] = short, long
    lengths = torch.tensor([7, 40])

    def encode(flow, ids, lengths):
        mask = (torch.arange(ids.size(1))[None] < lengths[:, None]).unsqueeze(-1).double()
        x = flow.input_embedding(ids) * mask
        h = flow.encoder(x, lengths)
        return h[0] if isinstance(h, tuple) else h

    with torch.inference_mode():
        upstream_alone = encode(upstream_modules.flow, ids[:1, :7], lengths[:1])[0]
        upstream_batched = encode(upstream_modules.flow, ids, lengths)[0, :14]
        ours_batched = encode(ours, ids, lengths)[0, :14]
    assert (upstream_batched - upstream_alone).abs().max().item() > 1e-3  # upstream's leak
    assert (ours_batched - upstream_alone).abs().max().item() < TOL


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 5e-3), (torch.bfloat16, 3e-2)])
def test_half_precision_runs_and_stays_close(tiny_folder, dtype, tol):
    """fp16 / bf16 (what a GPU runs): finite, float32 out, near the float32 result (measured here: relative
    L2 8e-4 for fp16, 7e-3 for bf16)."""
    tokens, prompts, feats, embeddings = _rows([(4, 5), (6, 12)], seed=4)
    want = CosyVoice2Flow.from_folder(tiny_folder).inference(tokens, prompts, feats, embeddings, n_timesteps=4)
    got = CosyVoice2Flow.from_folder(tiny_folder, dtype=dtype).inference(
        tokens, prompts, feats, embeddings, n_timesteps=4)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == torch.float32 and torch.isfinite(g).all()
        assert ((g - w).norm() / w.norm()).item() < tol
