"""Stand-in `torchaudio.compliance.kaldi.fbank` (see the package docstring).

Kaldi's compute-fbank-feats with its defaults: 25 ms frames every 10 ms that fit in the signal
(snip_edges), per-frame DC removal, pre-emphasis 0.97, the Povey window (Hann ** 0.85), FFT size rounded
up to a power of two, power spectrum, triangular filters equally spaced on Kaldi's mel scale
(1127 ln(1 + f/700)) from 20 Hz to Nyquist, natural log floored at float epsilon.
"""
import math

import torch


def _mel(f):
    return 1127.0 * torch.log1p(f / 700.0)


def _mel_banks(num_bins: int, n_fft: int, sample_rate: float, low: float, high: float) -> torch.Tensor:
    nyquist = 0.5 * sample_rate
    high = high if high > 0 else nyquist + high
    fft_freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    mel_lo, mel_hi = _mel(torch.tensor(low, dtype=torch.float64)), _mel(torch.tensor(high, dtype=torch.float64))
    edges = mel_lo + (mel_hi - mel_lo) * torch.arange(num_bins + 2, dtype=torch.float64) / (num_bins + 1)
    m = _mel(fft_freqs)[None, :]
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up, down = (m - left) / (centre - left), (right - m) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    banks[:, -1] = 0.0  # Kaldi's banks stop below Nyquist
    return banks.float()


def fbank(waveform: torch.Tensor, num_mel_bins: int = 23, dither: float = 0.0, sample_frequency: float = 16000.0,
          frame_length: float = 25.0, frame_shift: float = 10.0, low_freq: float = 20.0, high_freq: float = 0.0,
          preemphasis_coefficient: float = 0.97, energy_floor: float = 1.0, **_) -> torch.Tensor:
    """Log mel filterbank [frames, num_mel_bins] of the first channel of `waveform` [channels, samples]."""
    x = waveform[0].float()
    size = int(sample_frequency * frame_length / 1000)
    shift = int(sample_frequency * frame_shift / 1000)
    if x.numel() < size:
        return torch.empty(0, num_mel_bins)
    frames = x.unfold(0, size, shift).clone()
    if dither:
        frames = frames + dither * torch.randn_like(frames)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - preemphasis_coefficient * previous
    frames = frames * torch.hann_window(size, periodic=False).pow(0.85)
    n_fft = 1 << math.ceil(math.log2(size))
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2)
    energies = power @ _mel_banks(num_mel_bins, n_fft, sample_frequency, low_freq, high_freq).T
    return torch.clamp(energies, min=torch.finfo(torch.float32).eps).log()
