"""benchmarks/device_account.py: its op account (FLOPs, bytes, launches, host syncs) on ops whose counts are known,
the runtime's LM decode step at CosyVoice2-0.5B's real shapes (meta tensors) without a host sync, HiFT's per-row
vs batched syncs, and the continuous-batching simulation it divides by."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "device_account.py"


@pytest.fixture(scope="module")
def da():
    spec = importlib.util.spec_from_file_location("device_account", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["device_account"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def folder(da, tmp_path_factory):
    return da.model_folder(tmp_path_factory.mktemp("shapes"))


def test_the_account_of_known_ops(da):
    w = torch.zeros(32, 16, device="meta", dtype=torch.float16)
    x = torch.zeros(4, 16, device="meta", dtype=torch.float16)

    def work():
        y = torch.nn.functional.linear(x, w)  # 2 * 4 * 32 * 16 FLOPs, one launch
        y.view(128)  # a view: nothing
        torch.ops.aten._local_scalar_dense(y.sum())  # .item()'s op (meta refuses .item() itself): a host sync
        torch.tensor([1, 2]).to("meta")  # a blocking host-to-device copy: a sync
        torch.tensor([1, 2]).to("meta", non_blocking=True)  # non-blocking: none
        y.cpu()  # a device-to-host copy: a sync

    t = da.account(work)
    assert t.ops["linear"] == 1 and "view" not in t.ops
    assert t.flops >= 2 * 4 * 32 * 16 and t.bytes >= (32 * 16 + 4 * 16 + 4 * 32) * 2
    assert t.syncs == 3 and t.h2d == 2 and t.ops["d2h"] == 1


def test_the_lm_decode_step_at_real_shapes_has_no_host_sync(da, folder):
    step, prefill = da.lm_account(folder, torch.float16, 8, 256, 512)
    assert step.syncs == 0 and step.launches > 24 * 20  # every layer's kernels, and not one host wait
    assert 0.3e9 * 8 < step.flops < 2e9 * 8  # ~0.73 GFLOP per token of CosyVoice2-0.5B's LM
    assert prefill.syncs == 0  # admission copies are non-blocking


def test_hift_per_row_syncs_twice_a_row_batched_once_a_batch(da, folder):
    mix = [1.0, 2.0, 1.0]
    rows = da.hift_account(folder, mix, None)
    batched = da.hift_account(folder, mix, [[0, 2, 1]])
    assert rows.syncs == 2 * len(mix)  # istft's envelope check and the .cpu() of each row
    assert batched.syncs == 1 and batched.launches < rows.launches / 2


def test_simulated_decode_counts_every_token_and_its_checks(da):
    sim = da.simulate_decode([1.0, 2.0, 3.0], slots=2, check_every=8)
    tokens = sum(25 * s + 1 for s in (1, 2, 3))
    assert sim["steps"] % 8 == 0 and sim["checks"] == sim["steps"] // 8
    assert sim["steps"] * 2 >= tokens and 0 < sim["occupancy"] <= 1
    assert sim["collections"] >= 2 and sim["live_mean"] <= sim["cache_len"]


def test_compare_prints_predicted_beside_measured_for_a_gpu_cost_log(da, tmp_path, capsys):
    """What gpu_session.sh runs after gpu_cost.py: its JSON line read back, each stage predicted for the same
    shapes (8 s sentences) beside the measured figure (here a made-up log of one batch of 2)."""
    log = tmp_path / "gpu_cost.log"
    log.write_text('  tts batch 2: ...\n{"device": "NVIDIA H100 80GB HBM3", "tts": {"2": {"llm": 0.01, '
                   '"flow": 0.002, "hift": 0.001, "total": 0.013}}, "ear": {}}\n', encoding="utf-8")
    assert da.compare(log, da.HOST_US) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("predicted (h100")
    rows = {ln.split()[0]: ln.split() for ln in lines[2:]}
    assert set(rows) == {"llm", "flow", "hift"} and all(float(r[2]) > 0 for r in rows.values())
    assert float(rows["hift"][3]) == 0.001
    (tmp_path / "empty.log").write_text("no json here\n", encoding="utf-8")
    assert da.compare(tmp_path / "empty.log", da.HOST_US) == 2
