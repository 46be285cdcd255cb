"""Stand-in `torchaudio.transforms.Resample` (see the package docstring): soxr's high-quality resampler."""
import numpy as np
import soxr
import torch


class Resample(torch.nn.Module):
    def __init__(self, orig_freq: int = 16000, new_freq: int = 16000, **_):
        super().__init__()
        self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if self.orig_freq == self.new_freq:
            return waveform
        x = waveform.detach().cpu().float().numpy()
        rows = [soxr.resample(row, self.orig_freq, self.new_freq) for row in x.reshape(-1, x.shape[-1])]
        out = torch.from_numpy(np.stack(rows))
        return out.reshape(*waveform.shape[:-1], out.shape[-1]).to(waveform.dtype)
