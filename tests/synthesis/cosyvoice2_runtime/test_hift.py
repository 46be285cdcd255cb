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


# the batched path against the per-row one, float64: measured here at <= 4e-16 everywhere, the last 480 samples
# before each row's end (where padding would leak through the centred convs, the source's interpolation and the
# STFT/iSTFT edges) included; stated tolerance 1e-12
BATCH_TOL = 1e-12


class HostSyncs(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the aten ops that make a host wait for a device (a scalar read, a data-dependent shape)."""

    SYNCS = {"aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::unique_consecutive",
             "aten::_unique2", "aten::item", "aten::equal", "aten::is_nonzero",
             "aten::istft"}  # under inference_mode istft dispatches whole; its envelope check is an aten::equal

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name in self.SYNCS:
            self.seen.append(func._schema.name)
        return func(*args, **(kwargs or {}))


def test_batched_equals_per_row_at_the_padding_boundary_without_host_syncs(ours):
    frames = [7, 50, 23, 1, 2]  # a one-frame row padded to 50: the boundary is nearly all of it
    mels, seeds = _mels(frames, seed=4), [11, 12, 2**40 + 3, 14, 15]
    with HostSyncs() as per_row:
        rows = ours.inference(mels, seeds)
    assert len(per_row.seen) >= len(frames)  # the detector sees istft's per-call check
    with HostSyncs() as syncs:
        batch = ours.inference_batch(mels, seeds)
    assert syncs.seen == []  # torch.istft's per-call envelope check (an .item()) is gone
    assert batch.shape == (5, 480 * max(frames))
    for row, (n, want) in enumerate(zip(frames, rows)):
        got = batch[row, : 480 * n]
        assert (got - want).abs().max().item() < BATCH_TOL, f"row {row}"
        assert (got[-480:] - want[-480:]).abs().max().item() < BATCH_TOL  # the boundary itself
        assert torch.all(batch[row, 480 * n:] == 0)  # nothing past a row's end
    alone = ours.inference_batch(mels[2:3], seeds[2:3])[0]
    assert (alone - batch[2, : alone.numel()]).abs().max().item() < BATCH_TOL


def test_batched_float32_stays_near_per_row(tiny_folder):
    """fp32 (how the runtime runs HiFT): batch vs rows within float rounding (measured ~1e-6)."""
    hift = CosyVoice2HiFT.from_folder(tiny_folder)
    mels = [m.float() for m in _mels([5, 31], seed=5)]
    rows, batch = hift.inference(mels, [1, 2]), hift.inference_batch(mels, [1, 2])
    for row, want in enumerate(rows):
        assert (batch[row, : want.numel()] - want).abs().max().item() < 1e-4
