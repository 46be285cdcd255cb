"""CosyVoice2's flow-matching decoder (speech tokens -> 80-bin mel), batched with right padding.

Follows, at FunAudioLLM/CosyVoice 6385656 (Apache-2.0, Copyright Alibaba Inc): cosyvoice/flow/flow.py
(`CausalMaskedDiffWithXvec.inference`), cosyvoice/flow/flow_matching.py (`CausalConditionalCFM`),
cosyvoice/flow/decoder.py (`CausalConditionalDecoder`), cosyvoice/transformer/ (upsample_encoder.py,
encoder_layer.py, attention.py, embedding.py, subsampling.py, positionwise_feed_forward.py) and the matcha
blocks those use (matcha/models/components/decoder.py, transformer.py; diffusers' `Attention`, `GELU`).
Module and parameter names are upstream's, so `flow.pt` loads with `strict=True`. Only upstream's
non-streaming inference is here (full attention, key-padding masks only; upstream builds chunk masks
from `static_chunk_size` only when `streaming=True`), and no training or dropout code.

Batching: rows are right-padded to the longest prompt + tokens and every op keeps padding out of real
frames, so a row's mel does not depend on its batch-mates:
- attention masks padded keys (real queries never see padding);
- the decoder's convolutions are causal (left padding), and every LayerNorm / linear is per frame;
- the encoder's `Upsample1D` conv is causal too;
- the one leak in upstream's batch path is the pre-lookahead conv, which reads 3 frames ahead: upstream
  leaves `embed`'s output (LayerNorm bias, nonzero) in the padded frames, so a short row's last 3 tokens
  see it. We zero padded frames right after `embed` (alone, a row sees zeros there: the conv's own padding).
Each row's noise is the prefix of upstream's fixed noise (`rand_noise[:, :, :T]`, seed 0), its prompt mel
is sliced by its own length, and the CFG pair of every row runs in one estimator call per Euler step.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from jaspeech.synthesis.tts.cosyvoice2_runtime.config import read_config
from jaspeech.synthesis.tts.cosyvoice2_runtime.graphs import to_device

NOISE_FRAMES = 50 * 300  # upstream's fixed noise covers 300 s of mel at 50 Hz


def _activation(name: str) -> nn.Module:
    return {"swish": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}[name]()


def _pad_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """[B, 1, width] bool, True on each row's real frames."""
    return (torch.arange(width, device=lengths.device)[None, :] < lengths[:, None])[:, None, :]


# ------------------------------------------------------------------------------------------------ encoder


def rel_position_table(size: int, d_model: int) -> torch.Tensor:
    """ESPnet's relative sinusoids for positions size-1 .. -(size-1): [1, 2 * size - 1, d_model], float32.

    Computed exactly as upstream's `EspnetRelPositionalEncoding.extend_pe` (float32, the same tensor shapes,
    so the same rounding) and cast to the model dtype only when used, as upstream does."""
    position = torch.arange(0, size, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    positive, negative = torch.zeros(size, d_model), torch.zeros(size, d_model)
    positive[:, 0::2] = torch.sin(position * div_term)
    positive[:, 1::2] = torch.cos(position * div_term)
    negative[:, 0::2] = torch.sin(-1 * position * div_term)
    negative[:, 1::2] = torch.cos(-1 * position * div_term)
    return torch.cat([torch.flip(positive, [0]), negative[1:]], dim=0).unsqueeze(0)


class LinearNoSubsampling(nn.Module):
    """Linear + LayerNorm, then the x sqrt(d) scaling of `EspnetRelPositionalEncoding`; also returns the
    relative position embeddings [1, 2T - 1, d] for the rel-pos attention."""

    def __init__(self, idim: int, odim: int, max_len: int = 5000):
        super().__init__()
        self.out = nn.Sequential(nn.Linear(idim, odim), nn.LayerNorm(odim, eps=1e-5))
        self.xscale = math.sqrt(odim)
        self.register_buffer("pe", rel_position_table(max_len, odim), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = x.size(1)
        pe = self.pe
        if pe.size(1) < 2 * size - 1:  # longer than upstream's 5000 positions: upstream recomputes, so do we
            pe = rel_position_table(size, pe.size(2)).to(x.device)
        center = pe.size(1) // 2
        return self.out(x) * self.xscale, pe[:, center - size + 1: center + size].to(x.dtype)


class RelPositionMultiHeadedAttention(nn.Module):
    """Transformer-XL style self-attention with ESPnet's relative positions (pos_bias_u / pos_bias_v)."""

    def __init__(self, n_head: int, n_feat: int, key_bias: bool = True):
        super().__init__()
        self.h, self.d_k = n_head, n_feat // n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat, bias=key_bias)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(self.h, self.d_k))

    @staticmethod
    def rel_shift(x: torch.Tensor) -> torch.Tensor:
        """[B, H, T, 2T - 1] scores against positions T-1 .. -(T-1) -> [B, H, T, T] with [i, j] at i - j
        (upstream's zero-pad-and-reshape trick)."""
        b, h, t, p = x.shape
        padded = torch.cat([x.new_zeros(b, h, t, 1), x], dim=-1).view(b, h, p + 1, t)
        return padded[:, :, 1:].view_as(x)[:, :, :, : p // 2 + 1]

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        """x [B, T, D]; mask [B, 1, T] bool (real keys); pos_emb [1, 2T - 1, D]."""
        b, t, _ = x.shape
        q = self.linear_q(x).view(b, t, self.h, self.d_k)
        k = self.linear_k(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        p = self.linear_pos(pos_emb).view(1, -1, self.h, self.d_k).transpose(1, 2)
        matrix_ac = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        matrix_bd = self.rel_shift(torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1)))
        scores = (matrix_ac + matrix_bd) / math.sqrt(self.d_k)
        scores = scores.masked_fill(~mask[:, None], -float("inf"))  # every row has a real key: no NaN
        out = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.linear_out(out.transpose(1, 2).reshape(b, t, self.h * self.d_k))


class PositionwiseFeedForward(nn.Module):
    def __init__(self, idim: int, hidden_units: int, activation: str):
        super().__init__()
        self.w_1 = nn.Linear(idim, hidden_units)
        self.activation = _activation(activation)
        self.w_2 = nn.Linear(hidden_units, idim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.activation(self.w_1(x)))


class ConformerEncoderLayer(nn.Module):
    """Pre-norm self-attention + feed-forward (CosyVoice2 uses neither the macaron FFN nor the conv module)."""

    def __init__(self, size: int, heads: int, linear_units: int, activation: str, key_bias: bool):
        super().__init__()
        self.self_attn = RelPositionMultiHeadedAttention(heads, size, key_bias)
        self.feed_forward = PositionwiseFeedForward(size, linear_units, activation)
        self.norm_ff = nn.LayerNorm(size, eps=1e-12)
        self.norm_mha = nn.LayerNorm(size, eps=1e-12)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm_mha(x), mask, pos_emb)
        return x + self.feed_forward(self.norm_ff(x))


class PreLookaheadLayer(nn.Module):
    """Each token sees `pre_lookahead_len` tokens ahead (zero-padded at the end), then a causal conv."""

    def __init__(self, channels: int, pre_lookahead_len: int):
        super().__init__()
        self.pre_lookahead_len = pre_lookahead_len
        self.conv1 = nn.Conv1d(channels, channels, kernel_size=pre_lookahead_len + 1)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.pad(x.transpose(1, 2), (0, self.pre_lookahead_len))
        out = F.leaky_relu(self.conv1(out))
        out = self.conv2(F.pad(out, (self.conv2.kernel_size[0] - 1, 0)))
        return out.transpose(1, 2) + x


class Upsample1D(nn.Module):
    """Nearest x stride, then a causal conv (left padding only: padded frames never reach real ones)."""

    def __init__(self, channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(channels, out_channels, stride * 2 + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=float(self.stride), mode="nearest")
        return self.conv(F.pad(out, (self.stride * 2, 0)))


class UpsampleConformerEncoder(nn.Module):
    """Tokens (25 Hz) -> pre-lookahead -> conformer -> x2 upsample -> conformer -> frames (50 Hz)."""

    def __init__(self, input_size: int, output_size: int = 512, attention_heads: int = 8,
                 linear_units: int = 2048, num_blocks: int = 6, pre_lookahead_len: int = 3,
                 activation_type: str = "swish", key_bias: bool = True, up_blocks: int = 4):
        super().__init__()
        self.embed = LinearNoSubsampling(input_size, output_size)
        self.pre_lookahead_layer = PreLookaheadLayer(output_size, pre_lookahead_len)
        def layer() -> ConformerEncoderLayer:
            return ConformerEncoderLayer(output_size, attention_heads, linear_units, activation_type, key_bias)

        self.encoders = nn.ModuleList([layer() for _ in range(num_blocks)])
        self.up_layer = Upsample1D(output_size, output_size, stride=2)
        self.up_embed = LinearNoSubsampling(input_size, output_size)
        self.up_encoders = nn.ModuleList([layer() for _ in range(up_blocks)])
        self.after_norm = nn.LayerNorm(output_size, eps=1e-5)

    def forward(self, xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """xs [B, T, D] (padded frames zero), lengths [B] -> [B, 2T, D] (frames past 2 * length: garbage)."""
        mask = _pad_mask(lengths, xs.size(1))
        xs, pos_emb = self.embed(xs)
        xs = xs * mask.transpose(1, 2)  # the fix: padding must look like the lookahead conv's zero padding
        xs = self.pre_lookahead_layer(xs)
        for layer in self.encoders:
            xs = layer(xs, mask, pos_emb)
        xs = self.up_layer(xs.transpose(1, 2)).transpose(1, 2)
        lengths = lengths * self.up_layer.stride
        mask = _pad_mask(lengths, xs.size(1))
        xs, pos_emb = self.up_embed(xs)
        for layer in self.up_encoders:
            xs = layer(xs, mask, pos_emb)
        return self.after_norm(xs)


# ------------------------------------------------------------------------------------------------ decoder


class CausalConv1d(nn.Conv1d):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(in_channels, out_channels, kernel_size)
        self.causal_padding = kernel_size - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.causal_padding, 0)))


class _ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over channels of a [B, C, T] tensor (upstream: Transpose, LayerNorm, Transpose)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class CausalBlock1D(nn.Module):
    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        # indices as upstream's Sequential(conv, Transpose, LayerNorm, Transpose, Mish): keys block.0 / block.2
        self.block = nn.Sequential(CausalConv1d(dim, dim_out, 3), nn.Identity(), _ChannelLayerNorm(dim_out),
                                   nn.Identity(), nn.Mish())

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.block(x * mask) * mask


class CausalResnetBlock1D(nn.Module):
    def __init__(self, dim: int, dim_out: int, time_emb_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Mish(), nn.Linear(time_emb_dim, dim_out))
        self.block1 = CausalBlock1D(dim, dim_out)
        self.block2 = CausalBlock1D(dim_out, dim_out)
        self.res_conv = nn.Conv1d(dim, dim_out, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        h = self.block1(x, mask) + self.mlp(time_emb).unsqueeze(-1)
        return self.block2(h, mask) + self.res_conv(x * mask)


class Attention(nn.Module):
    """diffusers' `Attention` as matcha's BasicTransformerBlock builds it: no q/k/v bias, to_out.0 linear."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Identity()])  # [1] is upstream's Dropout

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, C]; key_mask [B, 1, 1, T] bool (True: attend)."""
        b, t, _ = x.shape
        q, k, v = (proj(x).view(b, t, self.heads, -1).transpose(1, 2) for proj in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        return self.to_out[0](out.transpose(1, 2).reshape(b, t, -1))


class GELU(nn.Module):
    """diffusers' GELU: a projection, then exact GELU."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.ModuleList([GELU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.net:
            x = module(x)
        return x


class BasicTransformerBlock(nn.Module):
    """matcha's block as CosyVoice2 configures it: pre-norm self-attention, pre-norm GELU feed-forward."""

    def __init__(self, dim: int, num_attention_heads: int, attention_head_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, num_attention_heads, attention_head_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x), key_mask)
        return x + self.ff(self.norm3(x))


class TimestepEmbedding(nn.Module):
    def __init__(self, in_channels: int, time_embed_dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, time_embed_dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(time_embed_dim, time_embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


def sinusoidal_time_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """matcha's SinusoidalPosEmb: [B] -> [B, dim] (frequencies in float32, as upstream)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device).float() * -(math.log(10000) / (half - 1)))
    emb = scale * t.unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat((emb.sin(), emb.cos()), dim=-1)


class CausalConditionalDecoder(nn.Module):
    """The flow's velocity estimator: a 1-level causal U-Net of resnet + transformer blocks over frames.

    CosyVoice2 configures one channel level (`channels: [256]`), for which upstream's down/up samplers are
    plain causal convs at full frame rate; deeper U-Nets (strided, non-causal resampling) are not supported.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: list[int] = (256,),
                 attention_head_dim: int = 64, n_blocks: int = 4, num_mid_blocks: int = 12, num_heads: int = 8,
                 act_fn: str = "gelu"):
        super().__init__()
        if len(channels) != 1 or act_fn != "gelu":
            raise NotImplementedError(f"CausalConditionalDecoder with channels={list(channels)}, act_fn={act_fn!r}: "
                                      "only CosyVoice2's one-level U-Net with GELU blocks is implemented")
        ch = channels[0]
        self.in_channels = in_channels
        time_dim = ch * 4
        self.time_mlp = TimestepEmbedding(in_channels, time_dim)
        def blocks() -> nn.ModuleList:
            return nn.ModuleList([BasicTransformerBlock(ch, num_heads, attention_head_dim) for _ in range(n_blocks)])

        self.down_blocks = nn.ModuleList([nn.ModuleList(
            [CausalResnetBlock1D(in_channels, ch, time_dim), blocks(), CausalConv1d(ch, ch, 3)])])
        self.mid_blocks = nn.ModuleList([nn.ModuleList([CausalResnetBlock1D(ch, ch, time_dim), blocks()])
                                         for _ in range(num_mid_blocks)])
        self.up_blocks = nn.ModuleList([nn.ModuleList(
            [CausalResnetBlock1D(2 * ch, ch, time_dim), blocks(), CausalConv1d(ch, ch, 3)])])
        self.final_block = CausalBlock1D(ch, ch)
        self.final_proj = nn.Conv1d(ch, out_channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor,
                spks: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x, mu, cond [B, 80, T]; mask [B, 1, T] (1.0 real, 0.0 padding); spks [B, 80] -> [B, 80, T].

        t [B] may be wider than the model dtype (the sinusoids of 1000 t need more than fp16)."""
        temb = self.time_mlp(sinusoidal_time_embedding(t, self.in_channels).to(x.dtype))
        x = torch.cat([x, mu, spks.unsqueeze(-1).expand(-1, -1, x.size(-1)), cond], dim=1)
        key_mask = mask.bool().unsqueeze(1)  # [B, 1, 1, T]

        def transformer(x: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
            x = x.transpose(1, 2)
            for block in blocks:
                x = block(x, key_mask)
            return x.transpose(1, 2)

        (resnet, blocks, downsample), = self.down_blocks
        skip = transformer(resnet(x, mask, temb), blocks)
        x = downsample(skip * mask)
        for resnet, blocks in self.mid_blocks:
            x = transformer(resnet(x, mask, temb), blocks)
        (resnet, blocks, upsample), = self.up_blocks
        x = transformer(resnet(torch.cat([x, skip], dim=1), mask, temb), blocks)
        x = self.final_block(upsample(x * mask), mask)
        return self.final_proj(x * mask) * mask


class CausalConditionalCFM(nn.Module):
    """Conditional flow matching, solved with a fixed-step Euler ODE and classifier-free guidance."""

    def __init__(self, estimator: CausalConditionalDecoder, inference_cfg_rate: float = 0.7,
                 t_scheduler: str = "cosine"):
        super().__init__()
        self.estimator = estimator
        self.inference_cfg_rate = inference_cfg_rate
        self.t_scheduler = t_scheduler
        # upstream: set_all_random_seed(0); self.rand_noise = torch.randn([1, 80, 50 * 300]) (CPU, float32)
        self.rand_noise = torch.randn([1, 80, NOISE_FRAMES], generator=torch.Generator().manual_seed(0))

    def forward(self, mu: torch.Tensor, mask: torch.Tensor, spks: torch.Tensor, cond: torch.Tensor,
                n_timesteps: int = 10) -> torch.Tensor:
        """mu, cond [B, 80, T] (model dtype); mask [B, 1, T]; spks [B, 80] -> mel [B, 80, T].

        The ODE state and time grid stay in float32 (float64 for a float64 model), as upstream's are for
        a float32 model; only the estimator runs in the model dtype (fp16/bf16 state would lose the steps)."""
        b, _, frames = mu.shape
        if frames > NOISE_FRAMES:
            raise ValueError(f"{frames} mel frames: upstream's fixed noise covers {NOISE_FRAMES} (300 s)")
        state = torch.float64 if mu.dtype == torch.float64 else torch.float32
        x = self.rand_noise[:, :, :frames].to(mu.device, state).expand(b, -1, -1)  # each row: its own prefix
        t_span = torch.linspace(0, 1, n_timesteps + 1, device=mu.device, dtype=state)
        if self.t_scheduler == "cosine":
            t_span = 1 - torch.cos(t_span * 0.5 * torch.pi)
        # the CFG pair of every row in one call: conditional rows first, then the same rows with mu, spks
        # and cond zeroed (x, mask and t shared), as upstream's solve_euler fills its batch of 2
        mask_in = torch.cat([mask, mask])
        mu_in = torch.cat([mu, torch.zeros_like(mu)])
        spks_in = torch.cat([spks, torch.zeros_like(spks)])
        cond_in = torch.cat([cond, torch.zeros_like(cond)])
        t, dt = t_span[0:1], t_span[1] - t_span[0]
        for step in range(1, len(t_span)):
            x_in = torch.cat([x, x]).to(mu.dtype)
            dphi = self.estimator(x_in, mask_in, mu_in, t.expand(2 * b), spks_in, cond_in).to(state)
            dphi, cfg_dphi = dphi[:b], dphi[b:]
            x = x + dt * ((1.0 + self.inference_cfg_rate) * dphi - self.inference_cfg_rate * cfg_dphi)
            t = t + dt
            if step < len(t_span) - 1:
                dt = t_span[step + 1] - t
        return x


class CausalMaskedDiffWithXvec(nn.Module):
    """Token embedding, speaker projection, encoder, projection to 80 bins, and the CFM decoder."""

    def __init__(self, input_size: int, output_size: int, spk_embed_dim: int, vocab_size: int,
                 encoder: UpsampleConformerEncoder, decoder: CausalConditionalCFM):
        super().__init__()
        self.output_size = output_size
        self.input_embedding = nn.Embedding(vocab_size, input_size)
        self.spk_embed_affine_layer = nn.Linear(spk_embed_dim, output_size)
        self.encoder = encoder
        self.encoder_proj = nn.Linear(encoder.after_norm.normalized_shape[0], output_size)
        self.decoder = decoder


def _parts(flow: dict) -> dict:
    """CausalMaskedDiffWithXvec's constructor arguments from cosyvoice2.yaml's `flow` node."""
    enc, dec = flow["encoder"], flow["decoder"]
    est, cfm = dec["estimator"], dec.get("cfm_params", {})
    for key, want in (("input_layer", "linear"), ("pos_enc_layer_type", "rel_pos_espnet"),
                      ("selfattention_layer_type", "rel_selfattn"), ("normalize_before", True),
                      ("macaron_style", False), ("use_cnn_module", False)):
        if enc.get(key, want) != want:
            raise NotImplementedError(f"flow encoder {key}={enc[key]!r}: CosyVoice2 uses {want!r}")
    encoder = UpsampleConformerEncoder(
        input_size=enc["input_size"], output_size=enc.get("output_size", 256),
        attention_heads=enc.get("attention_heads", 4), linear_units=enc.get("linear_units", 2048),
        num_blocks=enc.get("num_blocks", 6), pre_lookahead_len=flow.get("pre_lookahead_len", 3),
        activation_type=enc.get("activation_type", "swish"), key_bias=enc.get("key_bias", True))
    estimator = CausalConditionalDecoder(
        in_channels=est["in_channels"], out_channels=est["out_channels"], channels=list(est.get("channels", [256])),
        attention_head_dim=est.get("attention_head_dim", 64), n_blocks=est.get("n_blocks", 1),
        num_mid_blocks=est.get("num_mid_blocks", 2), num_heads=est.get("num_heads", 4),
        act_fn=est.get("act_fn", "snake"))
    decoder = CausalConditionalCFM(estimator, inference_cfg_rate=float(cfm.get("inference_cfg_rate", 0.7)),
                                   t_scheduler=cfm.get("t_scheduler", "cosine"))
    return dict(input_size=flow["input_size"], output_size=flow["output_size"], spk_embed_dim=flow["spk_embed_dim"],
                vocab_size=flow["vocab_size"], encoder=encoder, decoder=decoder)


class CosyVoice2Flow(CausalMaskedDiffWithXvec):
    """flow.pt as a batched token -> mel module (upstream's module tree and keys, plus `inference`)."""

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32) -> "CosyVoice2Flow":
        """Build from the folder's cosyvoice2.yaml and load flow.pt strictly (upstream's keys, unchanged)."""
        flow = cls.build(folder)
        state = torch.load(Path(folder) / "flow.pt", map_location="cpu", weights_only=True)
        flow.load_state_dict(state, strict=True)
        return flow.to(device=device, dtype=dtype).eval()

    @classmethod
    def build(cls, folder: str | Path) -> "CosyVoice2Flow":
        """The module cosyvoice2.yaml describes, with fresh (random) weights: `from_folder` loads flow.pt into
        it; benchmarks/gpu_cost.py saves it as a random flow.pt of the real shapes."""
        config = read_config(folder)["flow"]
        if config.get("token_mel_ratio", 2) != 2:
            raise NotImplementedError("the encoder upsamples by 2: token_mel_ratio must be 2")
        return cls(**_parts(config))

    @property
    def dtype(self) -> torch.dtype:
        return self.input_embedding.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.input_embedding.weight.device

    @torch.inference_mode()
    def inference(self, tokens: list[torch.Tensor], prompt_tokens: list[torch.Tensor],
                  prompt_feats: list[torch.Tensor], embeddings: torch.Tensor,
                  n_timesteps: int = 10, ode=None) -> list[torch.Tensor]:
        """Each row's generated mel [80, 2 * len(tokens_i)] (prompt frames removed), float32 (float64 for a
        float64 model); upstream's non-streaming `self.inference` row by row, in one batch.

        tokens / prompt_tokens: 1-D int64 speech tokens per row; prompt_feats: [2 * len(prompt_tokens_i), 80]
        per row (upstream's frontend aligns them so); embeddings: [B, 192] speaker embeddings. ode: what runs the
        Euler ODE (default `self.decoder`, eagerly; the runtime passes graphs.FlowODE on a GPU)."""
        device, dtype = self.device, self.dtype
        rows = len(tokens)
        if not (len(prompt_tokens) == len(prompt_feats) == embeddings.size(0) == rows):
            raise ValueError("tokens, prompt_tokens, prompt_feats and embeddings need one entry per row")
        for p, f in zip(prompt_tokens, prompt_feats):
            if f.shape != (2 * len(p), self.output_size):
                raise ValueError(f"a prompt of {len(p)} tokens needs prompt_feats [{2 * len(p)}, "
                                 f"{self.output_size}], got {list(f.shape)}")
        seqs = [torch.cat([p.reshape(-1), t.reshape(-1)]).to(device=device, dtype=torch.long)
                for p, t in zip(prompt_tokens, tokens)]
        lengths = to_device([len(s) for s in seqs], torch.long, device)  # no host wait on a GPU
        ids = nn.utils.rnn.pad_sequence(seqs, batch_first=True)  # right padding with token 0
        token_mask = _pad_mask(lengths, ids.size(1)).transpose(1, 2).to(dtype)  # [B, T, 1]

        spks = self.spk_embed_affine_layer(F.normalize(embeddings.to(device=device, dtype=dtype), dim=1))
        x = self.input_embedding(torch.clamp(ids, min=0)) * token_mask
        h = self.encoder_proj(self.encoder(x, lengths))  # [B, 2T, 80]
        cond = torch.zeros_like(h)
        for row, feat in enumerate(prompt_feats):
            cond[row, : feat.size(0)] = feat.to(device=device, dtype=dtype)
        mask = _pad_mask(lengths * 2, h.size(1)).to(dtype)
        mel = (ode or self.decoder)(h.transpose(1, 2).contiguous(), mask, spks, cond.transpose(1, 2).contiguous(),
                                    n_timesteps=n_timesteps)
        # clones: a row's mel should not keep the whole batch's tensor alive
        return [mel[row, :, feat.size(0): 2 * len(seq)].clone()
                for row, (feat, seq) in enumerate(zip(prompt_feats, seqs))]
