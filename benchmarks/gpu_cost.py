"""GPU cost of the synthetic-speech corpora: GPU-seconds per audio-second for CosyVoice2 and the round trip.

What one spoken turn costs on one GPU, measured with random weights of the real shapes (the cost of a
forward pass does not depend on what the weights are; no download, no upstream package needed):

  llm      CosyVoice2-0.5B's LM: transformers' Qwen2ForCausalLM with Qwen2-0.5B's shape (upstream's
           Qwen2Encoder wraps exactly this class), plus its speech-token embedding and decoder. A prefill of
           [sos, prompt text + text, task, prompt speech tokens], then autoregressive decoding with the KV
           cache, 25 speech tokens per second of audio, full lm_head every step as upstream computes it.
  flow     CausalMaskedDiffWithXvec with upstream cosyvoice2.yaml's sizes, rebuilt here in plain torch (same
           layers, widths and counts: 512-d rel-pos conformer encoder 6 + 4 blocks with the x2 upsampling,
           a 1-down/12-mid/1-up U-Net of 4 transformer blocks each, 256 channels) over prompt + target mel
           frames, 10 Euler steps with classifier-free guidance (batch doubled), as upstream runs it.
  hift     HiFTGenerator (NSF source + iSTFT vocoder: 512 channels, upsampling 8*5*3, resblocks 3/7/11 with
           dilations 1/3/5, weight-normed convs), rebuilt in plain torch, fp32 as upstream keeps it.
  whisper  Whisper-large-v3 (transformers WhisperConfig: 128 mels, 32+32 layers, d_model 1280), fp16,
           `generate` on 30 s windows, batch 16, a fixed number of transcript tokens: the round trip.

LLM and flow run in fp16 (our backend's default, `fp16=True`). Batch 1 is what the backend does today
(upstream's plain API decodes one sentence at a time, its flow asserts batch 1); batch 4 and 16 are the cost
when sentences are batched (a batched decoder such as vLLM/TensorRT-LLM, not wired into our backend). The LLM
at batch 1 is also timed with upstream's sampler (a Python loop over the top-25 candidates, with GPU->CPU
syncs), which is what runs today. tests/benchmarks/test_gpu_cost.py checks on CPU that the rebuilt flow and
HiFT match upstream's modules (from the pinned upstream wheel) in parameters and FLOPs.

    python benchmarks/gpu_cost.py                       # on one GPU (planned for < 4 minutes on an H100)
    python benchmarks/gpu_cost.py --dry-run             # the plan, no GPU, no model built
    python benchmarks/gpu_cost.py --device cpu --tiny   # the same code on tiny shapes and 1 s sentences
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass

ORIGINAL_GPU_H_PER_AUDIO_H = 0.56  # the original corpora (H200-hours per audio-hour)
TARGET_GPU_H_PER_AUDIO_H = 0.05
TOKENS_PER_SECOND = 25  # CosyVoice2's speech tokens per second of audio
MEL_PER_TOKEN = 2  # 50 Hz mel frames, hop 480 at 24 kHz


@dataclass(frozen=True)
class Shapes:
    """Model sizes: CosyVoice2-0.5B's cosyvoice2.yaml and Qwen2-0.5B; Whisper-large-v3."""

    llm_hidden: int = 896
    llm_layers: int = 24
    llm_heads: int = 14
    llm_kv_heads: int = 2
    llm_ffn: int = 4864
    llm_vocab: int = 151936
    speech_tokens: int = 6561
    flow_dim: int = 512
    flow_heads: int = 8
    flow_ffn: int = 2048
    flow_blocks: int = 6
    flow_up_blocks: int = 4  # fixed in upstream's UpsampleConformerEncoder
    mel: int = 80
    spk_dim: int = 192
    dec_channels: int = 256
    dec_heads: int = 8
    dec_head_dim: int = 64
    dec_blocks: int = 4
    dec_mid_blocks: int = 12
    n_timesteps: int = 10
    hift_channels: int = 512
    upsample_rates: tuple = (8, 5, 3)
    upsample_kernels: tuple = (16, 11, 7)
    res_kernels: tuple = (3, 7, 11)
    res_dilations: tuple = (1, 3, 5)
    source_kernels: tuple = (7, 7, 11)
    harmonics: int = 8
    f0_channels: int = 512
    n_fft: int = 16
    hop: int = 4
    sample_rate: int = 24000
    whisper_layers: int = 32
    whisper_d: int = 1280
    whisper_heads: int = 20
    whisper_ffn: int = 5120
    whisper_mels: int = 128
    whisper_vocab: int = 51866


TINY = Shapes(llm_hidden=64, llm_layers=2, llm_heads=4, llm_kv_heads=2, llm_ffn=128, llm_vocab=1000,
              speech_tokens=100, flow_dim=512, flow_heads=2, flow_ffn=64, flow_blocks=1, dec_channels=32,
              dec_heads=2, dec_head_dim=16, dec_blocks=1, dec_mid_blocks=1, hift_channels=32,
              res_kernels=(3,), f0_channels=32, whisper_layers=2, whisper_d=64, whisper_heads=2,
              whisper_ffn=128)


@dataclass(frozen=True)
class Plan:
    audio_seconds: float = 8.0  # one spoken sentence
    prompt_seconds: float = 5.0  # the reference clip (its tokens and mel prefix every call)
    text_tokens: int = 80  # prompt transcript + sentence (its kana reading), Qwen tokens
    clip_seconds: float = 8.0  # one round-trip clip (padded to Whisper's 30 s window)
    transcript_tokens: int = 50
    batches: tuple = (1, 4, 16)
    whisper_batch: int = 16
    repeats: int = 2

    @property
    def speech_tokens(self) -> int:
        return round(TOKENS_PER_SECOND * self.audio_seconds)

    @property
    def prompt_tokens(self) -> int:
        return round(TOKENS_PER_SECOND * self.prompt_seconds)

    @property
    def prefill(self) -> int:
        return 1 + self.text_tokens + 1 + self.prompt_tokens


TINY_PLAN = Plan(audio_seconds=1.0, prompt_seconds=1.0, text_tokens=8, clip_seconds=1.0, transcript_tokens=4,
                 batches=(1, 2), whisper_batch=2, repeats=1)


# --- models: rebuilt at upstream's shapes -----------------------------------------------------------------


def build_llm(s: Shapes, device, dtype):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=s.llm_vocab, hidden_size=s.llm_hidden, intermediate_size=s.llm_ffn,
                         num_hidden_layers=s.llm_layers, num_attention_heads=s.llm_heads,
                         num_key_value_heads=s.llm_kv_heads, max_position_embeddings=32768, rope_theta=1e6,
                         tie_word_embeddings=True)
    with torch.device(device):
        lm = torch.nn.ModuleDict({
            "qwen": Qwen2ForCausalLM(config),
            "speech_embedding": torch.nn.Embedding(s.speech_tokens + 3, s.llm_hidden),
            "llm_decoder": torch.nn.Linear(s.llm_hidden, s.speech_tokens + 3),
        })
    return lm.to(dtype).eval()


def upstream_sampler(logp, top_p: float = 0.8, top_k: int = 25):
    """One row, the way upstream's nucleus sampling does it: a Python walk over the sorted candidates."""
    import torch

    probs, ids = logp.softmax(dim=0).sort(descending=True, stable=True)
    keep_p, keep_i, cum = [], [], 0.0
    for i in range(len(ids)):
        if cum < top_p and len(keep_p) < top_k:  # `cum` is a GPU scalar: one sync per candidate
            cum += probs[i]
            keep_p.append(probs[i])
            keep_i.append(ids[i])
        else:
            break
    pick = torch.stack(keep_p).multinomial(1, replacement=True)
    return torch.stack(keep_i)[pick]


def batched_sampler(logp, top_p: float = 0.8, top_k: int = 25):
    """All rows at once: top-k, then top-p inside it (what a batched decoder does)."""
    import torch

    probs, ids = logp.softmax(dim=-1).topk(top_k, dim=-1)
    drop = probs.cumsum(dim=-1) - probs >= top_p
    probs = probs.masked_fill(drop, 0.0)
    return ids.gather(-1, torch.multinomial(probs, 1))


def decode_llm(lm, s: Shapes, plan: Plan, batch: int, tokens: int, sampler: str) -> int:
    """Prefill, then `tokens` decode steps with the KV cache; one host sync per step, as upstream yields."""
    import torch

    device = next(lm.parameters()).device
    dtype = next(lm.parameters()).dtype
    x = torch.randn(batch, plan.prefill, s.llm_hidden, device=device, dtype=dtype)
    mask = torch.ones(batch, plan.prefill, device=device, dtype=torch.long)
    cache, made = None, 0
    with torch.inference_mode():
        for _ in range(tokens):
            out = lm["qwen"](inputs_embeds=x, attention_mask=mask, output_hidden_states=True, use_cache=True,
                             past_key_values=cache)
            cache = out.past_key_values
            logp = lm["llm_decoder"](out.hidden_states[-1][:, -1]).float().log_softmax(dim=-1)
            if sampler == "upstream":
                ids = torch.cat([upstream_sampler(row) for row in logp]).view(batch, 1)
            else:
                ids = batched_sampler(logp)
            ids.view(-1).tolist()  # the generator hands each token to Python
            made += batch
            x = lm["speech_embedding"](ids % s.speech_tokens)
            mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
    return made


def _sinusoids(positions, dim: int, device, dtype):
    import torch

    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = positions.float()[:, None] * div[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)


def build_flow(s: Shapes, device, dtype):
    """CausalMaskedDiffWithXvec at upstream's sizes (plain torch; see tests/benchmarks/test_gpu_cost.py)."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class RelPosAttention(nn.Module):
        """ESPnet relative-position self-attention (Transformer-XL style u/v biases, shifted pos scores)."""

        def __init__(self, d, heads):
            super().__init__()
            self.h, self.dk = heads, d // heads
            self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))
            self.pos = nn.Linear(d, d, bias=False)
            self.u = nn.Parameter(torch.zeros(heads, self.dk))
            self.w = nn.Parameter(torch.zeros(heads, self.dk))

        def forward(self, x, pos):
            b, t, _ = x.shape
            q = self.q(x).view(b, t, self.h, self.dk)
            k = self.k(x).view(b, t, self.h, self.dk).transpose(1, 2)
            v = self.v(x).view(b, t, self.h, self.dk).transpose(1, 2)
            p = self.pos(pos).view(1, -1, self.h, self.dk).transpose(1, 2)
            ac = (q + self.u).transpose(1, 2) @ k.transpose(-2, -1)
            bd = (q + self.w).transpose(1, 2) @ p.transpose(-2, -1)  # [b, h, t, 2t-1]
            bd = torch.cat([bd.new_zeros(b, self.h, t, 1), bd], dim=-1).view(b, self.h, -1, t)
            bd = bd[:, :, 1:].reshape(b, self.h, t, -1)[..., : t]
            attn = ((ac + bd) / math.sqrt(self.dk)).softmax(dim=-1)
            return self.out((attn @ v).transpose(1, 2).reshape(b, t, -1))

    class ConformerLayer(nn.Module):  # normalize_before, no macaron, no conv module (upstream's settings)
        def __init__(self, d, heads, ffn):
            super().__init__()
            self.norm_mha, self.norm_ff = nn.LayerNorm(d), nn.LayerNorm(d)
            self.attn = RelPosAttention(d, heads)
            self.ff = nn.Sequential(nn.Linear(d, ffn), nn.SiLU(), nn.Linear(ffn, d))

        def forward(self, x, pos):
            x = x + self.attn(self.norm_mha(x), pos)
            return x + self.ff(self.norm_ff(x))

    class Encoder(nn.Module):  # UpsampleConformerEncoder
        def __init__(self, d, heads, ffn, blocks, up_blocks):
            super().__init__()
            self.d = d
            self.embed = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d))
            self.lookahead1, self.lookahead2 = nn.Conv1d(d, d, 4), nn.Conv1d(d, d, 3)
            self.layers = nn.ModuleList(ConformerLayer(d, heads, ffn) for _ in range(blocks))
            self.up = nn.Conv1d(d, d, 5)
            self.up_embed = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d))
            self.up_layers = nn.ModuleList(ConformerLayer(d, heads, ffn) for _ in range(up_blocks))
            self.after_norm = nn.LayerNorm(d)

        def _pos(self, t, x):
            return _sinusoids(torch.arange(t - 1, -t, -1, device=x.device), self.d, x.device, x.dtype)[None]

        def forward(self, x):
            x = self.embed(x) * math.sqrt(self.d)
            y = F.leaky_relu(self.lookahead1(F.pad(x.transpose(1, 2), (0, 3))))
            x = x + self.lookahead2(F.pad(y, (2, 0))).transpose(1, 2)
            pos = self._pos(x.shape[1], x)
            for layer in self.layers:
                x = layer(x, pos)
            y = F.interpolate(x.transpose(1, 2), scale_factor=2.0, mode="nearest")
            x = self.up(F.pad(y, (4, 0))).transpose(1, 2)
            x = self.up_embed(x) * math.sqrt(self.d)
            pos = self._pos(x.shape[1], x)
            for layer in self.up_layers:
                x = layer(x, pos)
            return self.after_norm(x)

    class CausalConv(nn.Conv1d):
        def forward(self, x):
            return super().forward(F.pad(x, (self.kernel_size[0] - 1, 0)))

    class CausalBlock(nn.Module):  # conv, LayerNorm over channels, Mish
        def __init__(self, i, o):
            super().__init__()
            self.conv, self.norm = CausalConv(i, o, 3), nn.LayerNorm(o)

        def forward(self, x, mask):
            y = self.conv(x * mask)
            return F.mish(self.norm(y.transpose(1, 2)).transpose(1, 2)) * mask

    class Resnet(nn.Module):
        def __init__(self, i, o, temb):
            super().__init__()
            self.mlp = nn.Sequential(nn.Mish(), nn.Linear(temb, o))
            self.block1, self.block2 = CausalBlock(i, o), CausalBlock(o, o)
            self.res = nn.Conv1d(i, o, 1)

        def forward(self, x, mask, t):
            h = self.block1(x, mask) + self.mlp(t)[..., None]
            return self.block2(h, mask) + self.res(x * mask)

    class TransformerBlock(nn.Module):  # diffusers BasicTransformerBlock: self-attention + GELU feed-forward
        def __init__(self, d, heads, head_dim):
            super().__init__()
            inner = heads * head_dim
            self.h, self.hd = heads, head_dim
            self.norm1, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.q, self.k, self.v = (nn.Linear(d, inner, bias=False) for _ in range(3))
            self.o = nn.Linear(inner, d)
            self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x, bias):
            b, t, _ = x.shape
            y = self.norm1(x)
            q, k, v = (f(y).view(b, t, self.h, self.hd).transpose(1, 2) for f in (self.q, self.k, self.v))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            x = x + self.o(a.transpose(1, 2).reshape(b, t, -1))
            return x + self.ff(self.norm3(x))

    class Estimator(nn.Module):  # CausalConditionalDecoder with channels=[C]
        def __init__(self, s):
            super().__init__()
            c, temb, cin = s.dec_channels, 4 * s.dec_channels, 4 * s.mel
            self.cin = cin
            self.time_mlp = nn.Sequential(nn.Linear(cin, temb), nn.SiLU(), nn.Linear(temb, temb))

            def stage(i):
                return nn.ModuleList([Resnet(i, c, temb), nn.ModuleList(
                    TransformerBlock(c, s.dec_heads, s.dec_head_dim) for _ in range(s.dec_blocks))])

            self.down, self.down_conv = stage(cin), CausalConv(c, c, 3)
            self.mid = nn.ModuleList(stage(c) for _ in range(s.dec_mid_blocks))
            self.up, self.up_conv = stage(2 * c), CausalConv(c, c, 3)
            self.final, self.proj = CausalBlock(c, c), nn.Conv1d(c, s.mel, 1)

        @staticmethod
        def _run(stage, x, mask, t, bias):
            resnet, blocks = stage
            x = resnet(x, mask, t).transpose(1, 2)
            for block in blocks:
                x = block(x, bias)
            return x.transpose(1, 2)

        def forward(self, x, mask, mu, t, spks, cond):
            t = self.time_mlp(_sinusoids(t * 1000, self.cin, x.device, x.dtype))
            x = torch.cat([x, mu, spks[..., None].expand(-1, -1, x.shape[-1]), cond], dim=1)
            bias = torch.zeros(x.shape[0], 1, x.shape[-1], x.shape[-1], device=x.device, dtype=x.dtype)
            skip = self._run(self.down, x, mask, t, bias)
            x = self.down_conv(skip * mask)
            for stage in self.mid:
                x = self._run(stage, x, mask, t, bias)
            x = self._run(self.up, torch.cat([x, skip], dim=1), mask, t, bias)
            x = self.up_conv(x * mask)
            return self.proj(self.final(x, mask) * mask) * mask

    class Flow(nn.Module):
        def __init__(self, s):
            super().__init__()
            self.s = s
            self.input_embedding = nn.Embedding(s.speech_tokens, s.flow_dim)
            self.spk_affine = nn.Linear(s.spk_dim, s.mel)
            self.encoder = Encoder(s.flow_dim, s.flow_heads, s.flow_ffn, s.flow_blocks, s.flow_up_blocks)
            self.encoder_proj = nn.Linear(s.flow_dim, s.mel)
            self.estimator = Estimator(s)

        def forward(self, tokens, prompt_feat, embedding):
            """tokens [B, prompt + target], prompt_feat [B, 2 * prompt, mel] -> target mel [B, mel, 2 * target]."""
            b, n_prompt = tokens.shape[0], prompt_feat.shape[1]
            spks = self.spk_affine(F.normalize(embedding, dim=1))
            mu = self.encoder_proj(self.encoder(self.input_embedding(tokens))).transpose(1, 2)
            frames = mu.shape[-1]
            cond = torch.zeros_like(mu)
            cond[:, :, :n_prompt] = prompt_feat.transpose(1, 2)
            mask = torch.ones(2 * b, 1, frames, device=mu.device, dtype=mu.dtype)
            x = torch.randn_like(mu)
            t_span = 1 - torch.cos(torch.linspace(0, 1, self.s.n_timesteps + 1, device=mu.device) * 0.5 * math.pi)
            zeros = torch.zeros_like
            for step in range(self.s.n_timesteps):  # Euler, classifier-free guidance 0.7 (batch doubled)
                t = t_span[step].expand(2 * b).to(mu.dtype)
                out = self.estimator(torch.cat([x, x]), mask, torch.cat([mu, zeros(mu)]), t,
                                     torch.cat([spks, zeros(spks)]), torch.cat([cond, zeros(cond)]))
                guided, free = out.split(b)
                x = x + (t_span[step + 1] - t_span[step]).to(mu.dtype) * (1.7 * guided - 0.7 * free)
            return x[:, :, n_prompt:].float()

    with torch.device(device):
        return Flow(s).to(dtype).eval()


def build_hift(s: Shapes, device):
    """HiFTGenerator at upstream's sizes (plain torch), fp32 as upstream keeps it."""
    import torch
    from torch import nn
    import torch.nn.functional as F
    from torch.nn.utils.parametrizations import weight_norm

    def conv(i, o, k, stride=1, dilation=1, padding=None):
        pad = (k * dilation - dilation) // 2 if padding is None else padding
        return weight_norm(nn.Conv1d(i, o, k, stride, dilation=dilation, padding=pad))

    class Snake(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.alpha = nn.Parameter(torch.ones(1, c, 1))

        def forward(self, x):
            return x + (1.0 / (self.alpha + 1e-9)) * torch.sin(self.alpha * x).pow(2)

    class ResBlock(nn.Module):
        def __init__(self, c, k, dilations):
            super().__init__()
            self.c1 = nn.ModuleList(conv(c, c, k, dilation=d) for d in dilations)
            self.c2 = nn.ModuleList(conv(c, c, k) for _ in dilations)
            self.a1 = nn.ModuleList(Snake(c) for _ in dilations)
            self.a2 = nn.ModuleList(Snake(c) for _ in dilations)

        def forward(self, x):
            for c1, c2, a1, a2 in zip(self.c1, self.c2, self.a1, self.a2):
                x = x + c2(a2(c1(a1(x))))
            return x

    class HiFT(nn.Module):
        def __init__(self, s):
            super().__init__()
            self.s = s
            self.scale = math.prod(s.upsample_rates) * s.hop
            fc = s.f0_channels
            self.f0 = nn.Sequential(conv(s.mel, fc, 3), nn.ELU(), *[m for _ in range(4) for m in (conv(fc, fc, 3), nn.ELU())])
            self.f0_out = nn.Linear(fc, 1)
            self.source_linear = nn.Linear(s.harmonics + 1, 1)
            c = s.hift_channels
            self.conv_pre = conv(s.mel, c, 7)
            self.ups = nn.ModuleList(
                weight_norm(nn.ConvTranspose1d(c // 2**i, c // 2 ** (i + 1), k, u, padding=(k - u) // 2))
                for i, (u, k) in enumerate(zip(s.upsample_rates, s.upsample_kernels)))
            down = [1, *s.upsample_rates[::-1][:-1]]
            cum = [math.prod(down[: i + 1]) for i in range(len(down))][::-1]
            self.source_downs = nn.ModuleList(
                nn.Conv1d(s.n_fft + 2, c // 2 ** (i + 1), 1) if u == 1 else
                nn.Conv1d(s.n_fft + 2, c // 2 ** (i + 1), u * 2, u, padding=u // 2) for i, u in enumerate(cum))
            self.source_blocks = nn.ModuleList(
                ResBlock(c // 2 ** (i + 1), k, s.res_dilations) for i, k in enumerate(s.source_kernels))
            self.blocks = nn.ModuleList(
                ResBlock(c // 2 ** (i + 1), k, s.res_dilations) for i in range(len(self.ups)) for k in s.res_kernels)
            self.conv_post = conv(c // 2 ** len(self.ups), s.n_fft + 2, 7)
            self.register_buffer("window", torch.hann_window(s.n_fft))

        def forward(self, mel):
            s = self.s
            f0 = self.f0_out(self.f0(mel).transpose(1, 2)).abs()  # [b, frames, 1]
            f0 = F.interpolate(f0.transpose(1, 2), scale_factor=self.scale, mode="nearest")  # [b, 1, samples]
            harmonics = f0 * torch.arange(1, s.harmonics + 2, device=mel.device)[None, :, None]
            phase = torch.cumsum(harmonics / s.sample_rate, dim=-1) * 2 * math.pi
            sines = 0.1 * torch.sin(phase) * (f0 > 10)
            source = torch.tanh(self.source_linear(sines.transpose(1, 2))).squeeze(-1)
            spec = torch.stft(source, s.n_fft, s.hop, s.n_fft, window=self.window, return_complex=True)
            spec = torch.cat([spec.real, spec.imag], dim=1)
            x = self.conv_pre(mel)
            k = len(s.res_kernels)
            for i, up in enumerate(self.ups):
                x = up(F.leaky_relu(x, 0.1))
                if i == len(self.ups) - 1:
                    x = F.pad(x, (1, 0), mode="reflect")
                x = x + self.source_blocks[i](self.source_downs[i](spec))
                x = sum(self.blocks[i * k + j](x) for j in range(k)) / k
            x = self.conv_post(F.leaky_relu(x))
            half = s.n_fft // 2 + 1
            mag, ph = torch.exp(x[:, :half]).clamp(max=1e2), torch.sin(x[:, half:])
            audio = torch.istft(torch.complex(mag * torch.cos(ph), mag * torch.sin(ph)), s.n_fft, s.hop, s.n_fft,
                                window=self.window)
            return audio.clamp(-0.99, 0.99)

    with torch.device(device):
        return HiFT(s).eval()


def build_whisper(s: Shapes, device, dtype):
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(vocab_size=s.whisper_vocab, num_mel_bins=s.whisper_mels, encoder_layers=s.whisper_layers,
                           decoder_layers=s.whisper_layers, encoder_attention_heads=s.whisper_heads,
                           decoder_attention_heads=s.whisper_heads, d_model=s.whisper_d,
                           encoder_ffn_dim=s.whisper_ffn, decoder_ffn_dim=s.whisper_ffn, max_source_positions=1500,
                           max_target_positions=448, decoder_start_token_id=50258, eos_token_id=50257,
                           pad_token_id=50257, bos_token_id=50257)
    with torch.device(device):
        model = WhisperForConditionalGeneration(config).to(dtype).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50258, eos_token_id=50257, pad_token_id=50257, max_length=448,
        is_multilingual=True, lang_to_id={"<|ja|>": 50266}, task_to_id={"translate": 50359, "transcribe": 50360},
        no_timestamps_token_id=50364, begin_suppress_tokens=[220, 50257])
    return model


def transcribe(model, s: Shapes, plan: Plan) -> None:
    """Our `--asr transformers` call: generate(language='ja', task='transcribe') on a batch of 30 s windows."""
    import torch

    p = next(model.parameters())
    features = torch.randn(plan.whisper_batch, s.whisper_mels, 3000, device=p.device, dtype=p.dtype)
    with torch.inference_mode():
        out = model.generate(features, language="ja", task="transcribe", max_new_tokens=plan.transcript_tokens,
                             min_new_tokens=plan.transcript_tokens)
    out.tolist()


# --- timing -----------------------------------------------------------------------------------------------


def timed(fn, device: str, repeats: int) -> float:
    """Median wall seconds of `fn()` after one warm-up call, synchronising the device around each call."""
    import torch

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(shapes: Shapes, plan: Plan, device: str) -> dict:
    import torch

    torch.manual_seed(0)
    half = torch.float16 if device.startswith("cuda") else torch.float32
    audio = plan.audio_seconds
    results: dict = {"device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
                     "tts": {}, "whisper": None}

    lm = build_llm(shapes, device, half)
    for b in plan.batches:
        results["tts"][b] = {"llm": timed(lambda: decode_llm(lm, shapes, plan, b, plan.speech_tokens, "batched"),
                                          device, plan.repeats) / (b * audio)}
    results["llm_upstream_sampler_b1"] = timed(
        lambda: decode_llm(lm, shapes, plan, 1, plan.speech_tokens, "upstream"), device, plan.repeats) / audio
    del lm

    flow = build_flow(shapes, device, half)
    hift = build_hift(shapes, device)
    n_prompt, n_target = plan.prompt_tokens, plan.speech_tokens
    for b in plan.batches:
        tokens = torch.randint(0, shapes.speech_tokens, (b, n_prompt + n_target), device=device)
        prompt_feat = torch.randn(b, MEL_PER_TOKEN * n_prompt, shapes.mel, device=device, dtype=half)
        emb = torch.randn(b, shapes.spk_dim, device=device, dtype=half)
        mel = torch.randn(b, shapes.mel, MEL_PER_TOKEN * n_target, device=device)
        with torch.inference_mode():
            results["tts"][b]["flow"] = timed(lambda: flow(tokens, prompt_feat, emb), device, plan.repeats) / (b * audio)
            results["tts"][b]["hift"] = timed(lambda: hift(mel), device, plan.repeats) / (b * audio)
        results["tts"][b]["total"] = sum(results["tts"][b].values())
    del flow, hift

    whisper = build_whisper(shapes, device, half)
    results["whisper"] = timed(lambda: transcribe(whisper, shapes, plan), device, plan.repeats) / (
        plan.whisper_batch * plan.clip_seconds)
    return results


def report(results: dict, plan: Plan) -> dict:
    """Print the table; return the machine-readable summary."""
    w = results["whisper"] * plan.clip_seconds / plan.audio_seconds  # one round-trip clip per spoken sentence
    print(f"device: {results['device']}; {plan.audio_seconds:g} s sentences ({plan.speech_tokens} speech tokens), "
          f"{plan.prompt_seconds:g} s prompt, Whisper batch {plan.whisper_batch} of {plan.clip_seconds:g} s clips")
    print("GPU-seconds per audio-second (= GPU-hours per audio-hour)")
    print(f"{'part':<34}" + "".join(f"{'batch ' + str(b):>12}" for b in plan.batches))
    for part in ("llm", "flow", "hift", "total"):
        print(f"{'TTS ' + part:<34}" + "".join(f"{results['tts'][b][part]:>12.4f}" for b in plan.batches))
    print(f"{'TTS llm, upstream sampler':<34}{results['llm_upstream_sampler_b1']:>12.4f}   (batch 1, what runs today)")
    print(f"{'Whisper-large-v3 round trip':<34}{w:>12.4f}   (batch {plan.whisper_batch}, every column)")
    totals = {b: results["tts"][b]["total"] + w for b in plan.batches}
    today = results["tts"][1]["total"] - results["tts"][1]["llm"] + results["llm_upstream_sampler_b1"] + w
    print(f"{'total GPU-h per audio-h':<34}" + "".join(f"{totals[b]:>12.4f}" for b in plan.batches))
    print(f"{'  our backend today (batch 1)':<34}{today:>12.4f}")
    print(f"{'  original corpora':<34}{ORIGINAL_GPU_H_PER_AUDIO_H:>12.4f}")
    print(f"{'  target':<34}{TARGET_GPU_H_PER_AUDIO_H:>12.4f}")
    return {"device": results["device"], "plan": asdict(plan), "tts": {str(b): v for b, v in results["tts"].items()},
            "llm_upstream_sampler_b1": results["llm_upstream_sampler_b1"], "whisper_per_tts_audio_s": w,
            "total_gpu_h_per_audio_h": {str(b): v for b, v in totals.items()}, "today_batch1_upstream_sampler": today,
            "original": ORIGINAL_GPU_H_PER_AUDIO_H, "target": TARGET_GPU_H_PER_AUDIO_H}


def describe(shapes: Shapes, plan: Plan, device: str) -> None:
    print(f"plan on {device}: shapes {'tiny' if shapes == TINY else 'CosyVoice2-0.5B + Whisper-large-v3'}")
    print(f"  llm: Qwen2 {shapes.llm_layers} layers x {shapes.llm_hidden}, prefill {plan.prefill} embeddings, "
          f"{plan.speech_tokens} decode steps per sentence, batches {list(plan.batches)} (+ batch 1 with upstream's sampler)")
    print(f"  flow: {plan.prompt_tokens}+{plan.speech_tokens} tokens -> {MEL_PER_TOKEN * (plan.prompt_tokens + plan.speech_tokens)} "
          f"mel frames, {shapes.n_timesteps} Euler steps x CFG 2, batches {list(plan.batches)}")
    print(f"  hift: {MEL_PER_TOKEN * plan.speech_tokens} mel frames -> {plan.audio_seconds:g} s at {shapes.sample_rate} Hz")
    print(f"  whisper: {shapes.whisper_layers}+{shapes.whisper_layers} layers x {shapes.whisper_d}, "
          f"batch {plan.whisper_batch} x 30 s windows, {plan.transcript_tokens} tokens each")
    print(f"  each timing: 1 warm-up + median of {plan.repeats}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes and a 1 s plan (the code path on CPU too)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and exit: no model, no GPU")
    ap.add_argument("--audio-seconds", type=float, help=f"one sentence's audio (default {Plan.audio_seconds})")
    ap.add_argument("--prompt-seconds", type=float, help=f"the reference clip (default {Plan.prompt_seconds})")
    ap.add_argument("--text-tokens", type=int, help=f"prompt transcript + sentence (default {Plan.text_tokens})")
    ap.add_argument("--clip-seconds", type=float, help=f"one round-trip clip (default {Plan.clip_seconds})")
    ap.add_argument("--transcript-tokens", type=int, help=f"tokens per transcript (default {Plan.transcript_tokens})")
    ap.add_argument("--batches", type=int, nargs="+", help=f"TTS batch sizes (default {' '.join(map(str, Plan.batches))})")
    ap.add_argument("--whisper-batch", type=int, help=f"round-trip batch (default {Plan.whisper_batch})")
    ap.add_argument("--repeats", type=int, help=f"timed runs after the warm-up (default {Plan.repeats})")
    args = ap.parse_args(argv)
    base = TINY_PLAN if args.tiny else Plan()
    given = {k: v for k, v in vars(args).items() if k in Plan.__dataclass_fields__ and v is not None}
    plan = Plan(**{**asdict(base), **given, "batches": tuple(given.get("batches", base.batches))})
    if 1 not in plan.batches:
        ap.error("--batches must include 1 (the batch our backend runs today)")
    shapes = TINY if args.tiny else Shapes()
    describe(shapes, plan, args.device)
    if args.dry_run:
        print(json.dumps({"dry_run": True, "device": args.device, "plan": asdict(plan), "shapes": asdict(shapes)}))
        return 0
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run on a GPU, or use --device cpu --tiny to exercise the code path")
        return 2
    t0 = time.perf_counter()
    summary = report(run(shapes, plan, args.device), plan)
    summary["wall_seconds"] = time.perf_counter() - t0
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
