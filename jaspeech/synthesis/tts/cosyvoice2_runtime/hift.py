"""CosyVoice2's HiFT vocoder (80-bin mel at 50 Hz -> 24 kHz waveform), one row at a time, seeded per row.

Follows cosyvoice/hifigan/generator.py (`HiFTGenerator`, `SourceModuleHnNSF2`, `SineGen2`, `ResBlock`),
cosyvoice/hifigan/f0_predictor.py (`ConvRNNF0Predictor`) and cosyvoice/transformer/activation.py (`Snake`)
of FunAudioLLM/CosyVoice 6385656 (Apache-2.0, Copyright Alibaba Inc). Module names are upstream's; the
weight-normed convs of hift.pt (`<conv>.parametrizations.weight.original0/1`, or the older
`<conv>.weight_g/_v`) are folded into plain `<conv>.weight` at load (w = g * v / ||v||, the norm over all
dims but 0, as torch's weight_norm computes), so inference runs plain convs; every key of the file must be
consumed and none may be missing.

Randomness: upstream draws, in this order, from the device's global generator: `rand(B, 9)` (initial
harmonic phases), `randn_like(sine_waves)` (the source's additive noise) and `randn_like(uv)` (a noise
output inference discards). We draw the first two, in that order, shapes and dtypes, from a per-row
`torch.Generator` seeded with the row's seed, so a row equals upstream after `torch.manual_seed(seed)`;
the third draw is skipped (its value is never used and nothing is drawn after it).

Two paths: `inference` runs rows one at a time (the reference, upstream's module op for op);
`inference_batch` runs a group in one right-padded forward (the runtime's path). Every conv here is centred
(kernel 3 to 16, dilations up to 5), the source STFT reflect-pads each row's own end and the iSTFT's
overlap-add normalises by each row's own window envelope, so the batched path re-masks after every conv and
handles the STFT/iSTFT edges per row with index and mask tensors (no host sync, no per-row kernels beyond
the random draws); it equals the per-row path to float rounding (tests/synthesis/cosyvoice2_runtime/test_hift.py).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from jaspeech.synthesis.tts.cosyvoice2_runtime.config import kwargs, read_config


def _generator(device: torch.device) -> torch.Generator:
    """A row's generator on the device (a CPU one for meta tensors: benchmarks/device_account.py runs the
    vocoder on shapes only, and meta has no generator)."""
    return torch.Generator(device="cpu" if device.type == "meta" else device)


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return int((kernel_size * dilation - dilation) / 2)


class Snake(nn.Module):
    """x + 1/alpha * sin^2(alpha x), alpha per channel (linear scale, as CosyVoice2's ResBlocks use it)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.unsqueeze(0).unsqueeze(-1)
        return x + (1.0 / (alpha + 1e-9)) * torch.pow(torch.sin(x * alpha), 2)


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList([nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                               padding=_padding(kernel_size, d)) for d in dilations])
        self.convs2 = nn.ModuleList([nn.Conv1d(channels, channels, kernel_size, 1, dilation=1,
                                               padding=_padding(kernel_size)) for _ in dilations])
        self.activations1 = nn.ModuleList([Snake(channels) for _ in dilations])
        self.activations2 = nn.ModuleList([Snake(channels) for _ in dilations])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2, act1, act2 in zip(self.convs1, self.convs2, self.activations1, self.activations2):
            x = conv2(act2(conv1(act1(x)))) + x
        return x


class ConvRNNF0Predictor(nn.Module):
    """Mel [B, 80, T] -> F0 [B, T] (Hz, non-negative): five conv + ELU, then a linear per frame."""

    def __init__(self, num_class: int = 1, in_channels: int = 80, cond_channels: int = 512):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(5):
            layers += [nn.Conv1d(in_channels if i == 0 else cond_channels, cond_channels, kernel_size=3, padding=1),
                       nn.ELU()]
        self.condnet = nn.Sequential(*layers)
        self.classifier = nn.Linear(cond_channels, num_class)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.abs(self.classifier(self.condnet(x).transpose(1, 2)).squeeze(-1))


class SourceModuleHnNSF2(nn.Module):
    """Harmonic-plus-noise excitation from F0 (upstream's SineGen2 + a linear merge of the harmonics)."""

    def __init__(self, sampling_rate: int, upsample_scale: int, harmonic_num: int = 0, sine_amp: float = 0.1,
                 add_noise_std: float = 0.003, voiced_threshod: float = 0):
        super().__init__()
        self.sampling_rate, self.upsample_scale = sampling_rate, upsample_scale
        self.harmonic_num, self.sine_amp = harmonic_num, sine_amp
        self.noise_std, self.voiced_threshold = add_noise_std, voiced_threshod
        self.l_linear = nn.Linear(harmonic_num + 1, 1)

    def forward(self, f0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """f0 [B, L, 1] at the sample rate (Hz) -> excitation [B, L, 1]."""
        harmonics = torch.arange(1, self.harmonic_num + 2, dtype=torch.float32, device=f0.device)
        rad = (f0 * harmonics[None, None, :] / self.sampling_rate) % 1  # [B, L, H]: cycles per sample
        initial = torch.rand(f0.size(0), rad.size(2), device=f0.device, generator=generator)
        initial[:, 0] = 0  # no random phase for the fundamental
        rad[:, 0, :] = rad[:, 0, :] + initial
        # the phase is integrated at frame rate and interpolated back (upstream's SineGen2, to avoid drift)
        rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / self.upsample_scale, mode="linear").transpose(1, 2)
        phase = torch.cumsum(rad, dim=1) * 2 * math.pi
        phase = F.interpolate(phase.transpose(1, 2) * self.upsample_scale, scale_factor=float(self.upsample_scale),
                              mode="linear").transpose(1, 2)
        sines = torch.sin(phase) * self.sine_amp
        uv = (f0 > self.voiced_threshold).type(torch.float32)
        noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
        # upstream's randn_like(sine_waves): the same strides matter, the CPU kernel fills a strided tensor
        # in a different order (and with a different algorithm) than a contiguous one
        noise = noise_amp * torch.empty_like(sines).normal_(generator=generator)
        return torch.tanh(self.l_linear(sines * uv + noise))


class HiFTGenerator(nn.Module):
    """Neural source filter + iSTFTNet: mel -> F0 -> excitation; mel + excitation STFT -> magnitude/phase."""

    def __init__(self, in_channels: int = 80, base_channels: int = 512, nb_harmonics: int = 8,
                 sampling_rate: int = 24000, nsf_alpha: float = 0.1, nsf_sigma: float = 0.003,
                 nsf_voiced_threshold: float = 10, upsample_rates: list[int] = (8, 5, 3),
                 upsample_kernel_sizes: list[int] = (16, 11, 7), istft_params: dict | None = None,
                 resblock_kernel_sizes: list[int] = (3, 7, 11),
                 resblock_dilation_sizes: list[list[int]] = ((1, 3, 5),) * 3,
                 source_resblock_kernel_sizes: list[int] = (7, 7, 11),
                 source_resblock_dilation_sizes: list[list[int]] = ((1, 3, 5),) * 3,
                 lrelu_slope: float = 0.1, audio_limit: float = 0.99, f0_predictor: dict | None = None):
        super().__init__()
        if sampling_rate == 22050:
            raise NotImplementedError("sampling_rate 22050 is CosyVoice 1's HiFT (SineGen); CosyVoice2 uses 24000")
        istft_params = dict(istft_params or {"n_fft": 16, "hop_len": 4})
        self.n_fft, self.hop_len = istft_params["n_fft"], istft_params["hop_len"]
        self.lrelu_slope, self.audio_limit = lrelu_slope, audio_limit
        self.num_kernels = len(resblock_kernel_sizes)
        self.upsample_scale = math.prod(upsample_rates) * self.hop_len  # waveform samples per mel frame
        self.m_source = SourceModuleHnNSF2(sampling_rate, self.upsample_scale, nb_harmonics, nsf_alpha, nsf_sigma,
                                           nsf_voiced_threshold)
        self.conv_pre = nn.Conv1d(in_channels, base_channels, 7, 1, padding=3)
        self.ups = nn.ModuleList([
            nn.ConvTranspose1d(base_channels // 2 ** i, base_channels // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes))])
        down_rates = [1, *list(upsample_rates)[::-1][:-1]]
        cum_rates = [math.prod(down_rates[: i + 1]) for i in range(len(down_rates))][::-1]
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        for i, (u, k, d) in enumerate(zip(cum_rates, source_resblock_kernel_sizes, source_resblock_dilation_sizes)):
            ch = base_channels // 2 ** (i + 1)
            self.source_downs.append(nn.Conv1d(self.n_fft + 2, ch, 1, 1) if u == 1
                                     else nn.Conv1d(self.n_fft + 2, ch, u * 2, u, padding=u // 2))
            self.source_resblocks.append(ResBlock(ch, k, list(d)))
        self.resblocks = nn.ModuleList([
            ResBlock(base_channels // 2 ** (i + 1), k, list(d))
            for i in range(len(self.ups)) for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes)])
        self.conv_post = nn.Conv1d(base_channels // 2 ** len(self.ups), self.n_fft + 2, 7, 1, padding=3)
        self.f0_predictor = ConvRNNF0Predictor(**(f0_predictor or {}))
        # scipy's get_window("hann", n_fft, fftbins=True) in float32, as upstream keeps it
        self.stft_window = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float64).float()

    def decode(self, mel: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """mel [1, 80, T], excitation [1, 1, L] -> waveform [1, L]."""
        window = self.stft_window.to(mel.device)  # float32 even for a float64 model, as upstream (iSTFT's
        # window envelope is then computed in float32: casting the window would change the result)
        spec = torch.view_as_real(torch.stft(source.squeeze(1), self.n_fft, self.hop_len, self.n_fft, window=window,
                                             return_complex=True))
        s_stft = torch.cat([spec[..., 0], spec[..., 1]], dim=1)
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, self.lrelu_slope))
            if i == len(self.ups) - 1:
                x = F.pad(x, (1, 0), mode="reflect")
            x = x + self.source_resblocks[i](self.source_downs[i](s_stft))
            xs = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))
        bins = self.n_fft // 2 + 1
        magnitude = torch.clip(torch.exp(x[:, :bins, :]), max=1e2)
        phase = torch.sin(x[:, bins:, :])  # upstream's sin (redundant, but part of the trained model)
        spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        wav = torch.istft(spec, self.n_fft, self.hop_len, self.n_fft, window=window)
        return torch.clamp(wav, -self.audio_limit, self.audio_limit)

    def forward(self, mel: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """mel [1, 80, T] -> waveform [1, T * upsample_scale]; upstream's `inference` without a source cache."""
        f0 = self.f0_predictor(mel)
        f0 = F.interpolate(f0[:, None], scale_factor=float(self.upsample_scale), mode="nearest").transpose(1, 2)
        source = self.m_source(f0, generator).transpose(1, 2)
        return self.decode(mel, source)


def fold_weight_norm(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """hift.pt's keys with each weight-norm pair folded into `<conv>.weight`, in `dtype` (fold after the cast:
    upstream computes g * v / ||v|| in the model's dtype at every call). Raises on an unpaired g or v."""
    pairs = {".parametrizations.weight.original0": ("g", ".parametrizations.weight.original"),
             ".parametrizations.weight.original1": ("v", ".parametrizations.weight.original"),
             ".weight_g": ("g", ".weight_"), ".weight_v": ("v", ".weight_")}
    out: dict[str, torch.Tensor] = {}
    halves: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        key = key.replace("generator.", "")  # upstream's CosyVoice2Model.load does the same
        suffix = next((s for s in pairs if key.endswith(s)), None)
        if suffix is None:
            out[key] = value.to(dtype)
            continue
        halves.setdefault(key[: -len(suffix)], {})[pairs[suffix][0]] = value.to(dtype)
    for conv, half in halves.items():
        if set(half) != {"g", "v"}:
            raise KeyError(f"hift.pt: weight norm of {conv} has only {sorted(half)}")
        g, v = half["g"], half["v"]
        out[f"{conv}.weight"] = v * (g / v.norm(dim=tuple(range(1, v.dim())), keepdim=True))
    return out


# the convs upstream wraps in weight_norm (hifigan/generator.py, f0_predictor.py): hift.pt stores them as g and v
WEIGHT_NORMED = re.compile(r"(conv_pre|conv_post|ups\.\d+|(source_)?resblocks\.\d+\.convs[12]\.\d+|"
                           r"f0_predictor\.condnet\.\d+)\.weight")


def unfold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our folded state dict in hift.pt's layout (the inverse of `fold_weight_norm`): each weight-normed conv's
    weight as `original0` (g, its norm over all but dim 0) and `original1` (v, the weight), as torch's
    parametrizations.weight_norm stores them. For writing a random model folder in upstream's layout."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if WEIGHT_NORMED.fullmatch(key):
            conv = key[: -len(".weight")]
            out[f"{conv}.parametrizations.weight.original0"] = value.norm(dim=tuple(range(1, value.dim())), keepdim=True)
            out[f"{conv}.parametrizations.weight.original1"] = value
        else:
            out[key] = value
    return out


class CosyVoice2HiFT(HiFTGenerator):
    """hift.pt as a per-row vocoder with a per-row random seed."""

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32) -> "CosyVoice2HiFT":
        """Build from cosyvoice2.yaml, load hift.pt strictly with the weight norm folded. fp32 as upstream
        runs it (float64 only for equivalence tests)."""
        hift = cls.build(folder).to(dtype)  # first: load_state_dict copies into the parameters' own dtype
        state = torch.load(Path(folder) / "hift.pt", map_location="cpu", weights_only=True)
        hift.load_state_dict(fold_weight_norm(state, dtype), strict=True)
        return hift.to(device=device).eval()

    @classmethod
    def build(cls, folder: str | Path) -> "CosyVoice2HiFT":
        """The module cosyvoice2.yaml describes, with fresh (random) weights (see `CosyVoice2Flow.build`)."""
        config = kwargs(read_config(folder)["hift"])
        config["f0_predictor"] = kwargs(config.get("f0_predictor") or {})
        return cls(**config)

    @property
    def device(self) -> torch.device:
        return self.conv_pre.weight.device

    @torch.inference_mode()
    def inference(self, mels: list[torch.Tensor], seeds: list[int]) -> list[torch.Tensor]:
        """Mels [80, T_i] -> 1-D waveforms of T_i * 480 samples (24 kHz), each from its own seed."""
        if len(mels) != len(seeds):
            raise ValueError(f"{len(mels)} mels but {len(seeds)} seeds")
        dtype, out = self.conv_pre.weight.dtype, []
        for mel, seed in zip(mels, seeds):
            generator = _generator(self.device).manual_seed(int(seed))
            out.append(self(mel.to(device=self.device, dtype=dtype)[None], generator)[0])
        return out

    # ----- batched: every sentence of a group in one padded forward ---------------------------------------

    @torch.inference_mode()
    def inference_batch(self, mels: list[torch.Tensor], seeds: list[int]) -> torch.Tensor:
        """Mels [80, T_i] -> waveforms [B, max T_i * 480] on the device, row i valid up to T_i * 480 samples
        (the rest zero): `inference` for a whole group in one right-padded forward, each row with its own seed.

        Why it equals the per-row path: every conv's output is re-masked to its row's length (so the next
        centred conv sees zeros past a row's end, as per-row zero padding does; Snake, ELU and leaky ReLU
        keep zeros zero); the phase is edge-padded before its linear upsampling (so the row's last half
        frame interpolates towards its own last frame, as the per-row clamp does); the source is
        reflect-padded at each row's own end before the STFT; the iSTFT's overlap-add and window envelope
        count only a row's own frames. The random draws are per row, in upstream's shapes and strides.
        Measured on CPU in float64 (tests/synthesis/cosyvoice2_runtime/test_hift.py): within 1e-12 of per
        row, the padding boundary included. No host sync: the window-envelope check torch.istft makes on
        every call (an `.item()`) is done once, for the whole window, in `_envelope_ok`.
        """
        if len(mels) != len(seeds):
            raise ValueError(f"{len(mels)} mels but {len(seeds)} seeds")
        device, dtype = self.device, self.conv_pre.weight.dtype
        up = self.upsample_scale
        frames = [m.shape[-1] for m in mels]
        lengths = torch.tensor(frames, dtype=torch.long).to(device, non_blocking=True)
        mel = torch.nn.utils.rnn.pad_sequence([m.to(device=device, dtype=dtype).transpose(0, 1) for m in mels],
                                              batch_first=True).transpose(1, 2)  # [B, 80, T]
        t = mel.shape[-1]

        def mask(n: int, scale: int, extra: int = 0) -> torch.Tensor:  # [B, 1, n]: 1 inside each row
            return (torch.arange(n, device=device)[None] < (lengths * scale + extra)[:, None]).to(dtype)[:, None]

        f0 = self._f0_masked(mel, mask(t, 1))
        f0 = F.interpolate(f0[:, None], scale_factor=float(up), mode="nearest").transpose(1, 2)  # [B, L, 1]
        source = self._source_batch(f0, lengths, frames, seeds).transpose(1, 2)  # [B, 1, L]
        wav = self._decode_batch(mel, source, lengths, mask)
        return wav * mask(wav.shape[-1], up)[:, 0]

    def _f0_masked(self, mel: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        x = mel * m
        for layer in self.f0_predictor.condnet:
            x = layer(x) * m if isinstance(layer, nn.Conv1d) else layer(x)
        return torch.abs(self.f0_predictor.classifier(x.transpose(1, 2)).squeeze(-1))

    def _source_batch(self, f0: torch.Tensor, lengths: torch.Tensor, frames: list[int],
                      seeds: list[int]) -> torch.Tensor:
        """SourceModuleHnNSF2.forward over a padded batch: [B, L, 1] -> [B, L, 1], row i's draws from its seed."""
        src, device = self.m_source, f0.device
        b, n = f0.shape[0], f0.shape[1]
        generators = [_generator(device).manual_seed(int(s)) for s in seeds]
        harmonics = torch.arange(1, src.harmonic_num + 2, dtype=torch.float32, device=device)
        rad = (f0 * harmonics[None, None, :] / src.sampling_rate) % 1
        h = rad.size(2)
        initial = torch.cat([torch.rand(1, h, device=device, generator=g) for g in generators])
        initial[:, 0] = 0
        rad[:, 0, :] = rad[:, 0, :] + initial
        rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / src.upsample_scale, mode="linear").transpose(1, 2)
        phase = torch.cumsum(rad, dim=1) * 2 * math.pi  # [B, T, H]
        # edge padding: past a row's last frame, that frame again (per row, linear interpolation clamps there)
        last = torch.minimum(torch.arange(phase.shape[1], device=device)[None], (lengths - 1)[:, None])
        phase = phase.gather(1, last[:, :, None].expand(-1, -1, h))
        phase = F.interpolate(phase.transpose(1, 2) * src.upsample_scale, scale_factor=float(src.upsample_scale),
                              mode="linear").transpose(1, 2)
        sines = torch.sin(phase) * src.sine_amp
        uv = (f0 > src.voiced_threshold).type(torch.float32)
        noise_amp = uv * src.noise_std + (1 - uv) * src.sine_amp / 3
        # each row's randn_like(sines) as upstream draws it alone: shape [1, L_i, H], strides of a transposed
        # [1, H, L_i] (the CPU kernel fills strided tensors in their own order), then padded into the batch
        noise = torch.zeros_like(sines)
        for row, (g, t) in enumerate(zip(generators, frames)):
            length = t * src.upsample_scale
            draw = torch.empty_strided((1, length, h), (h * length, 1, length), dtype=sines.dtype, device=device)
            noise[row, :length] = draw.normal_(generator=g)[0]
        return torch.tanh(src.l_linear(sines * uv + noise_amp * noise))

    def _decode_batch(self, mel: torch.Tensor, source: torch.Tensor, lengths: torch.Tensor, mask) -> torch.Tensor:
        """`decode` over a padded batch -> [B, L] (row i valid up to its own length)."""
        device, dtype = mel.device, mel.dtype
        window = self.stft_window.to(device)
        b, n = source.shape[0], source.shape[-1]
        half = self.n_fft // 2
        # the STFT's centre padding, reflected at each row's own end (torch.stft would reflect at the batch's)
        j = torch.arange(n + 2 * half, device=device)[None] - half
        end = (lengths * self.upsample_scale - 1)[:, None]
        idx = torch.where(j < 0, -j, torch.where(j > end, 2 * end - j, j)).clamp(0, n - 1)
        padded = source[:, 0].gather(1, idx)
        spec = torch.view_as_real(torch.stft(padded, self.n_fft, self.hop_len, self.n_fft, window=window,
                                             center=False, return_complex=True))
        stft_frames = spec.shape[-2]
        m_frames = mask(stft_frames, self.upsample_scale // self.hop_len, 1)  # a row: L_i / hop + 1 frames
        s_stft = torch.cat([spec[..., 0], spec[..., 1]], dim=1) * m_frames
        scale = 1
        x = self.conv_pre(mel) * mask(mel.shape[-1], 1)
        for i, upsample in enumerate(self.ups):
            scale *= upsample.stride[0]
            last = i == len(self.ups) - 1
            x = upsample(F.leaky_relu(x, self.lrelu_slope))
            if last:
                x = F.pad(x, (1, 0), mode="reflect")
            m = mask(x.shape[-1], scale, 1 if last else 0)
            x = x * m
            source_part = self.source_downs[i](s_stft) * m
            x = x + self._resblock_masked(self.source_resblocks[i], source_part, m)
            xs = self._resblock_masked(self.resblocks[i * self.num_kernels], x, m)
            for k in range(1, self.num_kernels):
                xs = xs + self._resblock_masked(self.resblocks[i * self.num_kernels + k], x, m)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))
        bins = self.n_fft // 2 + 1
        magnitude = torch.clip(torch.exp(x[:, :bins, :]), max=1e2)
        phase = torch.sin(x[:, bins:, :])
        spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        return self._istft_masked(spec, m_frames[:, 0], window)

    @staticmethod
    def _resblock_masked(block: ResBlock, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """ResBlock.forward with each conv's output re-masked (x comes in masked)."""
        for conv1, conv2, act1, act2 in zip(block.convs1, block.convs2, block.activations1, block.activations2):
            x = conv2(act2(conv1(act1(x)) * m)) * m + x
        return x

    def _istft_masked(self, spec: torch.Tensor, frame_mask: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        """torch.istft (center, onesided, no length) op for op, with row i's overlap-add and window envelope
        over its own frames only (frame_mask [B, F]), and without its per-call envelope check (a host sync)."""
        n_fft, hop = self.n_fft, self.hop_len
        frames = spec.shape[-1]
        total = n_fft + hop * (frames - 1)
        y = torch.fft.irfft(spec.transpose(1, 2), n_fft, dim=-1) * window.view(1, 1, n_fft)  # [B, F, n_fft]
        y = y * frame_mask[:, :, None].to(y.dtype)
        y = torch.ops.aten.unfold_backward(y, [y.shape[0], total], 1, n_fft, hop)
        envelope = window.pow(2)[None, None, :] * frame_mask[:, :, None].to(window.dtype)
        envelope = torch.ops.aten.unfold_backward(envelope, [y.shape[0], total], 1, n_fft, hop)
        start = n_fft // 2
        y, envelope = y[:, start:total - start], envelope[:, start:total - start]
        # where a row has no frame left, its envelope is 0: those samples are past its end (masked by the caller)
        return torch.clamp(y / torch.where(envelope > 0, envelope, torch.ones_like(envelope)),
                           -self.audio_limit, self.audio_limit)
