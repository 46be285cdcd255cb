"""benchmarks/gpu_cost.py without a GPU: --help, --dry-run, the tiny CPU run, and that its rebuilt flow and
HiFT are the same computation as upstream's modules (parameters and FLOPs, counted by torch)."""
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
    assert "--dry-run" in help_text and "--tiny" in help_text and "Whisper-large-v3" in help_text
    out = subprocess.run([sys.executable, str(SCRIPT), "--dry-run"], capture_output=True, text=True, env=env,
                         check=True).stdout
    plan = json.loads(out.strip().splitlines()[-1])
    assert plan["dry_run"] is True and plan["plan"]["batches"] == [1, 4, 16] and plan["plan"]["whisper_batch"] == 16
    assert plan["shapes"]["llm_hidden"] == 896 and plan["shapes"]["llm_layers"] == 24
    assert plan["shapes"]["whisper_d"] == 1280 and plan["shapes"]["whisper_mels"] == 128
    assert "200 decode steps" in out and "10 Euler steps" in out  # 8 s at 25 tokens/s; upstream's n_timesteps


def test_tiny_cpu_run_reports_every_part(capsys):
    gpu_cost = load_script()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: a second thread only spin-waits (5x slower on a busy machine)
    try:
        assert gpu_cost.main(["--device", "cpu", "--tiny"]) == 0  # tiny shapes, 1 s sentences, batches 1 and 2
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["device"] == "cpu" and summary["original"] == 0.56 and summary["target"] == 0.05
    for b in ("1", "2"):
        parts = summary["tts"][b]
        assert all(parts[k] > 0 for k in ("llm", "flow", "hift"))
        assert parts["total"] == pytest.approx(parts["llm"] + parts["flow"] + parts["hift"])
        assert summary["total_gpu_h_per_audio_h"][b] == pytest.approx(parts["total"] + summary["whisper_per_tts_audio_s"])
    assert "total GPU-h per audio-h" in out and "our backend today" in out


@pytest.mark.slow
def test_rebuilt_flow_and_hift_are_upstreams_computation():
    """Upstream's modules at CosyVoice2-0.5B's sizes (from the pinned wheel) against the benchmark's."""
    from torch.nn.utils import parametrize
    from torch.utils.flop_counter import FlopCounterMode

    gpu_cost = load_script()
    s = gpu_cost.Shapes()
    with upstream_importable():
        from omegaconf import DictConfig

        from cosyvoice.flow.decoder import CausalConditionalDecoder
        from cosyvoice.flow.flow import CausalMaskedDiffWithXvec
        from cosyvoice.flow.flow_matching import CausalConditionalCFM
        from cosyvoice.hifigan.f0_predictor import ConvRNNF0Predictor
        from cosyvoice.hifigan.generator import HiFTGenerator
        from cosyvoice.transformer.upsample_encoder import UpsampleConformerEncoder

        torch.manual_seed(0)
        # the arguments of upstream's cosyvoice2.yaml (CosyVoice2-0.5B)
        theirs_flow = CausalMaskedDiffWithXvec(
            input_size=512, output_size=80, spk_embed_dim=192, output_type="mel", vocab_size=6561,
            input_frame_rate=25, only_mask_loss=True, token_mel_ratio=2, pre_lookahead_len=3,
            encoder=UpsampleConformerEncoder(
                output_size=512, attention_heads=8, linear_units=2048, num_blocks=6, dropout_rate=0.1,
                positional_dropout_rate=0.1, attention_dropout_rate=0.1, normalize_before=True,
                input_layer="linear", pos_enc_layer_type="rel_pos_espnet", selfattention_layer_type="rel_selfattn",
                input_size=512, use_cnn_module=False, macaron_style=False, static_chunk_size=25),
            decoder=CausalConditionalCFM(
                in_channels=240, n_spks=1, spk_emb_dim=80, cfm_params=DictConfig(dict(
                    sigma_min=1e-6, solver="euler", t_scheduler="cosine", training_cfg_rate=0.2,
                    inference_cfg_rate=0.7, reg_loss_type="l1")),
                estimator=CausalConditionalDecoder(
                    in_channels=320, out_channels=80, channels=[256], dropout=0.0, attention_head_dim=64,
                    n_blocks=4, num_mid_blocks=12, num_heads=8, act_fn="gelu", static_chunk_size=50,
                    num_decoding_left_chunks=-1))).eval()
        theirs_hift = HiFTGenerator(
            in_channels=80, base_channels=512, nb_harmonics=8, sampling_rate=24000, nsf_alpha=0.1, nsf_sigma=0.003,
            nsf_voiced_threshold=10, upsample_rates=[8, 5, 3], upsample_kernel_sizes=[16, 11, 7],
            istft_params={"n_fft": 16, "hop_len": 4}, resblock_kernel_sizes=[3, 7, 11],
            resblock_dilation_sizes=[[1, 3, 5]] * 3, source_resblock_kernel_sizes=[7, 7, 11],
            source_resblock_dilation_sizes=[[1, 3, 5]] * 3, lrelu_slope=0.1, audio_limit=0.99,
            f0_predictor=ConvRNNF0Predictor(num_class=1, in_channels=80, cond_channels=512)).eval()
    ours_flow, ours_hift = gpu_cost.build_flow(s, "cpu", torch.float32), gpu_cost.build_hift(s, "cpu")

    def params(m):
        return sum(p.numel() for p in m.parameters())

    def flops(fn):
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            out = fn()
        return counter.get_total_flops(), out

    assert params(ours_flow) == params(theirs_flow) == 112_549_360
    assert params(ours_hift) == params(theirs_hift) == 20_821_295
    prompt, target = torch.randint(0, 6561, (1, 2)), torch.randint(0, 6561, (1, 4))
    prompt_feat, emb = torch.randn(1, 4, 80), torch.randn(1, 192)
    theirs, feat = flops(lambda: theirs_flow.inference(
        target, torch.tensor([4]), prompt, torch.tensor([2]), prompt_feat, torch.tensor([4]), emb,
        streaming=False, finalize=True)[0])
    ours, ours_feat = flops(lambda: ours_flow(torch.cat([prompt, target], dim=1), prompt_feat, emb))
    assert ours == theirs > 0 and ours_feat.shape == feat.shape == (1, 80, 8)
    for m in (*theirs_hift.modules(), *ours_hift.modules()):  # FLOP counting cannot see through weight norm
        if parametrize.is_parametrized(m):
            parametrize.remove_parametrizations(m, "weight")
    mel = torch.randn(1, 80, 8)
    theirs, wav = flops(lambda: theirs_hift.inference(speech_feat=mel)[0])
    ours, ours_wav = flops(lambda: ours_hift(mel))
    assert ours == theirs > 0 and ours_wav.shape == wav.shape == (1, 8 * 480)
