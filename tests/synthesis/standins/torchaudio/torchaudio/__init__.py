"""STAND-IN for torchaudio, for tests only (never installed, never imported by jaspeech itself).

Why: upstream CosyVoice imports torchaudio at module import (cosyvoice/cli/frontend.py,
cosyvoice/utils/file_utils.py), and `add_zero_shot_spk` calls two of its functions:
`torchaudio.compliance.kaldi.fbank` (the 80-bin Kaldi filterbank fed to campplus.onnx) and
`torchaudio.transforms.Resample` (16 kHz prompt -> 24 kHz for the flow's prompt mel). The project's CPU
machines run torch 2.13.0, beside which no torchaudio release installs (torchaudio 2.11 pins torch 2.11
and its compiled extension does not load on 2.13). GPU nodes install the real torchaudio.

This package implements exactly those calls (plus `load`, which newer upstream versions use to read the
prompt wav), written for these tests: a Kaldi-style filterbank with Kaldi's defaults and a soxr resampler.
It is put on sys.path by tests/synthesis/test_cosyvoice2_upstream.py only when the real torchaudio does
not import.
"""
import numpy as np
import soundfile as sf
import torch

from torchaudio import compliance, transforms  # noqa: F401

__version__ = "0.0-jaspeech-test-stand-in"


def load(path, backend=None):
    """(waveform [channels, samples] float32, sample_rate), like torchaudio.load."""
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(np.ascontiguousarray(audio.T)), sr
