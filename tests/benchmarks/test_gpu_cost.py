"""benchmarks/gpu_cost.py without a GPU: --help, --dry-run, the tiny CPU run through the runtime a build runs, and
that the random model folder it writes (at the real shapes) is upstream's layout: upstream's own modules, built
from its cosyvoice2.yaml by hyperpyyaml, load its llm.pt / flow.pt / hift.pt strictly."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.synthesis.tiny_cosyvoice2 import upstream_importable

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_cost.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_cost"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_help_and_dry_run_need_no_gpu():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    help_text = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, env=env,
                               check=True).stdout
    assert "--dry-run" in help_text and "--tiny" in help_text and "synthesize_batch" in help_text
    out = subprocess.run([sys.executable, str(SCRIPT), "--dry-run"], capture_output=True, text=True, env=env,
                         check=True).stdout
    plan = json.loads(out.strip().splitlines()[-1])
    assert plan["dry_run"] is True and plan["plan"]["batches"] == [1, 16, 64, 256]
    assert plan["shapes"]["tts"]["hidden"] == 896 and plan["shapes"]["qwen_layers"] == 24
    assert plan["shapes"]["whisper_d"] == 1280 and plan["shapes"]["whisper_mels"] == 128
    assert "100 text tokens -> 200 speech tokens (8 s)" in out and "10 Euler steps" in out


def test_tiny_cpu_run_reports_every_part(capsys):
    gpu_cost = load_script()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: a second thread only spin-waits (5x slower on a busy machine)
    try:
        assert gpu_cost.main(["--device", "cpu", "--tiny", "--batches", "1", "2"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["device"] == "cpu" and summary["original"] == 0.56
    for b in ("1", "2"):
        parts = summary["tts"][b]
        assert all(parts[k] > 0 for k in ("llm", "flow", "hift"))
        assert parts["total"] >= 0.95 * (parts["llm"] + parts["flow"] + parts["hift"])  # stages inside the call
        assert parts["audio_s_per_item"] == pytest.approx(24 * 2 * 480 / 24000)  # 2 x 12 tokens, 2 mel frames each
    assert set(summary["ear"]) == {"whisper-large-v3", "whisper-large-v3-turbo"}
    best = summary["tts_gpu_h_per_audio_h"]
    assert summary["total_gpu_h_per_audio_h"]["whisper-large-v3"] == pytest.approx(
        best + min(summary["ear"]["whisper-large-v3"].values()))
    assert "TTS + whisper-large-v3-turbo" in out and "original corpora" in out


@pytest.mark.slow
def test_the_random_folder_is_upstreams_layout_at_the_real_shapes(tmp_path, monkeypatch):
    """The benchmark's folder, written from our modules, loads into upstream's classes strictly: the benchmark
    times exactly the files a build would load (real CosyVoice2-0.5B sizes; no forward pass here).

    One patch of upstream's loading path: its Qwen2Encoder first loads CosyVoice-BlankEN's own Qwen2 weights,
    which llm.pt then overwrites; the benchmark writes only BlankEN's config (our runtime reads nothing else), so
    here the Qwen2 is built from that config instead."""
    from transformers import Qwen2ForCausalLM

    gpu_cost = load_script()
    shapes = gpu_cost.Shapes(qwen_layers=2)  # every size real but the LM's depth (24 layers: 2 GB more to write)
    folder = gpu_cost.write_model_folder(tmp_path / "CosyVoice2-random", shapes, "cpu")
    monkeypatch.setattr(Qwen2ForCausalLM, "from_pretrained",
                        classmethod(lambda cls, path, **kw: cls(cls.config_class.from_pretrained(path))))
    with upstream_importable():
        from hyperpyyaml import load_hyperpyyaml

        configs = load_hyperpyyaml((folder / "cosyvoice2.yaml").read_text(encoding="utf-8"),
                                   overrides={"qwen_pretrain_path": str(folder / "CosyVoice-BlankEN")})
        counts = {}
        for name in ("llm", "flow", "hift"):
            state = torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True)
            configs[name].load_state_dict(state, strict=True)
            counts[name] = sum(p.numel() for p in configs[name].parameters())
    # CosyVoice2-0.5B's sizes: the flow and HiFT as upstream's yaml builds them, the LM as our runtime loads it
    from jaspeech.synthesis.tts.cosyvoice2_runtime.llm import CosyVoice2LM

    assert counts["flow"] == 112_549_360 and counts["hift"] == 20_821_295
    assert counts["llm"] == sum(p.numel() for p in CosyVoice2LM.from_folder(folder).parameters()) > 1.5e8


def test_check_fails_on_a_planted_mismatch_with_a_verdict_last(capsys):
    """The CPU rehearsal of `gpu_cost.py --check`: HiFT's batched waveform perturbed (--plant hift) makes that one
    check fail, the run exit 1 and its last line a FAIL verdict; the unplanted checks pass in the same run."""
    gpu_cost = load_script()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = gpu_cost.main(["--device", "cpu", "--tiny", "--check", "--plant", "hift", "--ear", "none",
                            "--batches", "1"])
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 1 and lines[-1] == "verdict: FAIL (hift_rel_l2_batched_vs_row)"
    checks = json.loads(lines[-2])["checks"]
    assert checks["failed"] == ["hift_rel_l2_batched_vs_row"] and checks["graph_equals_eager"] is True
    assert checks["flow_rel_l2_alone_vs_batched"] < gpu_cost.FLOW_REL_L2_MAX
    assert gpu_cost.verdict({**checks, "failed": []}).startswith("verdict: PASS")
