"""Our HiFT (cosyvoice2_runtime/hift.py) against upstream's HiFTGenerator, float64.

Seeds: upstream draws from the global generator, ours from a per-row `torch.Generator`. Ours draws the
same tensors in upstream's order (rand(1, 9), then the noise into a tensor with upstream's strides), so
`torch.manual_seed(s)` before upstream's call and `Generator().manual_seed(s)` in ours give the same draws.
"""
from __future__ import annotations

import pytest
import torch

from jaspeech.synthesis.tts.cosyvoice2_runtime.hift import CosyVoice2HiFT, fold_weight_norm

TOL = 1e-9


@pytest.fixture(scope="module")
def ours(tiny_folder, one_thread):
    return CosyVoice2HiFT.from_folder(tiny_folder, dtype=torch.float64)


def _mels(frames, seed):
    g = torch.Generator().manual_seed(seed)
    # upstream's mels are log-mel-like (about -10 .. 2); any values exercise the same code
    return [torch.randn(80, n, generator=g, dtype=torch.float64) * 2 - 4 for n in frames]


def test_loads_strictly_with_weight_norm_folded(tiny_folder, upstream_modules, ours):
    state = torch.load(tiny_folder / "hift.pt", map_location="cpu", weights_only=True)
    g_keys = [k for k in state if k.endswith(".parametrizations.weight.original0")]
    assert g_keys, "hift.pt stores weight-normed convs"
    # every stored key consumed: plain keys as they are, each g/v pair as one `.weight`
    want = {k for k in state if ".parametrizations." not in k} | {
        k.replace(".parametrizations.weight.original0", ".weight") for k in g_keys}
    assert set(ours.state_dict()) == want
    assert not any("parametrizations" in name for name, _ in ours.named_parameters())
    upstream_count = sum(p.numel() for p in upstream_modules.hift.parameters())
    assert sum(p.numel() for p in ours.parameters()) == upstream_count - sum(state[k].numel() for k in g_keys)
    for name, module in upstream_modules.hift.named_modules():  # the folded weight is upstream's weight
        if hasattr(module, "parametrizations"):
            assert (dict(ours.named_modules())[name].weight - module.weight).abs().max().item() < 1e-15, name


def test_older_weight_g_v_keys_and_unpaired_halves(tiny_folder):
    state = torch.load(tiny_folder / "hift.pt", map_location="cpu", weights_only=True)
    legacy = {"generator." + k.replace(".parametrizations.weight.original0", ".weight_g")
              .replace(".parametrizations.weight.original1", ".weight_v"): v for k, v in state.items()}
    new, old = fold_weight_norm(state, torch.float64), fold_weight_norm(legacy, torch.float64)
    assert new.keys() == old.keys() and all(torch.equal(new[k], old[k]) for k in new)
    del state["conv_pre.parametrizations.weight.original1"]
    with pytest.raises(KeyError, match="conv_pre"):
        fold_weight_norm(state, torch.float64)


def test_each_row_equals_upstream_under_the_same_seed(upstream_modules, ours):
    mels, seeds = _mels([7, 50, 23], seed=1), [11, 12, 2**40 + 3]
    rng = torch.random.get_rng_state()
    wavs = ours.inference(mels, seeds)
    assert torch.equal(torch.random.get_rng_state(), rng)  # ours never touches the global generator
    for mel, seed, wav in zip(mels, seeds, wavs):
        torch.manual_seed(seed)
        with torch.inference_mode():
            want, _ = upstream_modules.hift.inference(speech_feat=mel[None], cache_source=torch.zeros(1, 1, 0))
        assert wav.shape == (480 * mel.size(1),) == want[0].shape
        assert (wav - want[0]).abs().max().item() < TOL
    again = ours.inference(mels[:1], [seeds[0] + 1])[0]
    assert (again - wavs[0]).abs().max().item() > 1e-6  # the seed matters (the source noise)


def test_rows_do_not_depend_on_batch_mates(ours):
    mels, seeds = _mels([9, 30, 16], seed=2), [5, 6, 7]
    wavs = ours.inference(mels, seeds)
    extra = _mels([40], seed=3)[0]
    mixed = ours.inference([mels[2], extra, mels[0], mels[1]], [seeds[2], 99, seeds[0], seeds[1]])
    for got, row in zip([mixed[0], mixed[2], mixed[3]], [2, 0, 1]):
        assert (got - wavs[row]).abs().max().item() < TOL
