"""Fixtures for the runtime's equivalence tests: one tiny model folder in upstream's layout, and upstream's
own modules loaded from it (the oracle), both on CPU.

The folder comes from tests/synthesis/tiny_cosyvoice2.py (upstream's classes, tiny sizes, random weights).
`upstream_modules` builds upstream's Qwen2LM, CausalMaskedDiffWithXvec and HiFTGenerator from that folder's
cosyvoice2.yaml with hyperpyyaml and loads llm.pt / flow.pt / hift.pt into them, as upstream's
CosyVoice2Model.load does: the same files our runtime reads. The runtime itself never imports upstream.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.synthesis.tiny_cosyvoice2 import build_tiny_cosyvoice2, upstream_importable


@pytest.fixture(scope="session")
def one_thread():
    """Tiny models run thousands of small ops: a second thread only spin-waits (and other tests share 2 cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def upstream(one_thread):
    """Upstream's packages importable for the session (stand-ins only for what does not import here)."""
    with upstream_importable() as standins:
        yield standins


@pytest.fixture(scope="session")
def tiny_folder(upstream, tmp_path_factory):
    return build_tiny_cosyvoice2(tmp_path_factory.mktemp("cosyvoice2_runtime") / "CosyVoice2-tiny")


@pytest.fixture(scope="session")
def upstream_modules(upstream, tiny_folder):
    """Upstream's llm, flow and hift with the folder's weights, float64, eval mode (the oracle)."""
    import torch
    from hyperpyyaml import load_hyperpyyaml

    configs = load_hyperpyyaml((tiny_folder / "cosyvoice2.yaml").read_text(encoding="utf-8"),
                               overrides={"qwen_pretrain_path": str(tiny_folder / "CosyVoice-BlankEN")})
    modules = {}
    for name in ("llm", "flow", "hift"):
        module = configs[name]
        module.load_state_dict(torch.load(tiny_folder / f"{name}.pt", map_location="cpu", weights_only=True),
                               strict=True)
        modules[name] = module.double().eval()
    return SimpleNamespace(**modules, configs=configs)
