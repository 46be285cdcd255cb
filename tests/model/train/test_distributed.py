"""Two CPU processes (gloo): DPO under DDP and SFT under FSDP2, through the recipe's code (see workers.py)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.model.train import originals

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(free_port()), "-m", "tests.model.train.workers", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.mark.slow
def test_dpo_under_ddp_keeps_the_ranks_identical(tmp_path):
    """Each rank sees other pairs; identical weights after the steps mean the gradients were all-reduced,
    i.e. the policy's forward went through the DDP wrapper (it used to bypass it via unwrap_model)."""
    data = originals.dpo(tmp_path / "dpo", n=4)
    torchrun("ddp-dpo", tmp_path, data)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert torch.equal(r0["before"], r1["before"])
    assert not torch.equal(r0["after"], r0["before"])
    assert torch.equal(r0["after"], r1["after"])
    assert r0["losses"] == r1["losses"] and len(r0["losses"]) == 2  # the logged loss is the mean over ranks


@pytest.mark.slow
def test_sft_under_fsdp2_evaluates_saves_and_reloads(sample_corpora, tmp_path):
    torchrun("fsdp-sft", tmp_path, sample_corpora / "sft")
    result = json.loads((tmp_path / "result.json").read_text())
    # parameters really were sharded across the two ranks (half of each q_proj's rows per rank)
    assert len(result["rows"]) == 4 and all(2 * local == full for local, full in result["rows"].values())
    assert result["keys_equal"] and result["same"]  # final/ loads with from_pretrained and equals the trained weights
    assert any(k.startswith("adapter.") for k in result["changed"])
    assert any(k.startswith("language_model.") for k in result["changed"])
    assert not any(k.startswith("encoder.") for k in result["changed"])  # frozen
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["cer_after"] == r1["cer_after"] and r0["hyps"] == r1["hyps"]  # both ranks generated, in lockstep
    assert (tmp_path / "run" / "final" / "train_result.json").exists()
