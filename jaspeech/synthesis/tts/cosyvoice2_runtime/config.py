"""Read upstream's `cosyvoice2.yaml` without hyperpyyaml or upstream's classes.

The file is a HyperPyYAML document: `!new:pkg.Class` builds an object from its mapping, `!name:pkg.fn`
is a partial, `!apply:fn [...]` runs a function at load (upstream seeds its RNGs that way), and
`!ref <key>` (optionally arithmetic: `!ref <a> * <b>`) points at another top-level value. We only need
the numbers it holds, so every tag becomes plain data:

    !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec {input_size: 512, ...}
        -> {"_class": "cosyvoice.flow.flow.CausalMaskedDiffWithXvec", "input_size": 512, ...}
    !name:cosyvoice.utils.common.ras_sampling {top_p: 0.8, ...} -> {"_name": "...ras_sampling", "top_p": 0.8}
    !apply:...                                                  -> None (never run)
    !ref <token_frame_rate> * <token_mel_ratio>                 -> 50

`omegaconf.DictConfig` nodes (`!new:omegaconf.DictConfig {content: {...}}`) become their content.
"""
from __future__ import annotations

import ast
import operator
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

_REF = re.compile(r"<([^<>]+)>")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.USub: operator.neg}


class _Ref(str):
    """A `!ref` expression, resolved once the whole document is read."""


class _Loader(yaml.SafeLoader):
    pass


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node, kind: str):
    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    if kind == "apply":
        return None
    if kind == "new" and suffix == "omegaconf.DictConfig":
        return dict(value.get("content", {})) if isinstance(value, dict) else {}
    out = {f"_{'class' if kind == 'new' else 'name'}": suffix}
    if isinstance(value, dict):
        out.update(value)
    return out


for _kind in ("new", "name", "apply"):
    _Loader.add_multi_constructor(f"!{_kind}:", lambda loader, suffix, node, k=_kind: _tagged(loader, suffix, node, k))
_Loader.add_constructor("!ref", lambda loader, node: _Ref(loader.construct_scalar(node)))


def _arith(expr: str) -> Any:
    def walk(n: ast.AST) -> Any:
        if isinstance(n, ast.Expression):
            return walk(n.body)
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](walk(n.left), walk(n.right))
        if isinstance(n, ast.UnaryOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](walk(n.operand))
        raise ValueError(f"unsupported !ref expression {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


def _resolve(value: Any, top: dict, seen: tuple = ()) -> Any:
    if isinstance(value, _Ref):
        names = _REF.findall(value)
        if not names:
            raise ValueError(f"!ref {value!r} names no <key>")
        if _REF.fullmatch(value.strip()):  # a plain reference: the value itself, whatever its type
            return _lookup(names[0], top, seen)
        values = {n: _lookup(n, top, seen) for n in names}
        return _arith(_REF.sub(lambda m: repr(values[m.group(1)]), value))
    if isinstance(value, dict):
        return {k: _resolve(v, top, seen) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, top, seen) for v in value]
    return value


def _lookup(name: str, top: dict, seen: tuple) -> Any:
    if name in seen:
        raise ValueError(f"!ref cycle through <{name}>")
    node: Any = top
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"!ref <{name}>: no such key in cosyvoice2.yaml")
        node = node[part]
    return _resolve(node, top, (*seen, name))


def read_config(folder: str | Path) -> dict:
    """The model folder's cosyvoice2.yaml as plain data (tags described in the module docstring)."""
    path = Path(folder) / "cosyvoice2.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} is not a CosyVoice2 model folder (no cosyvoice2.yaml): download FunAudioLLM/CosyVoice2-0.5B "
            "to a local folder (it holds cosyvoice2.yaml, llm.pt, flow.pt, hift.pt, campplus.onnx, "
            "speech_tokenizer_v2.onnx and CosyVoice-BlankEN/) and pass its path")
    raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    return _resolve(raw, raw)


def kwargs(node: dict) -> dict:
    """A `!new:` node's constructor arguments (its mapping without the `_class` / `_name` marker)."""
    return {k: v for k, v in node.items() if not k.startswith("_")}


@dataclass(frozen=True)
class ModelSizes:
    """The sizes of a CosyVoice2 model folder (defaults: CosyVoice2-0.5B's cosyvoice2.yaml); `model_yaml` writes
    the file for other sizes in the same layout: tests/synthesis/tiny_cosyvoice2.py builds a tiny random folder
    with upstream's classes from it, benchmarks/gpu_cost.py a random folder of the real shapes with ours."""

    hidden: int = 896  # Qwen2 hidden size = llm_input_size = llm_output_size
    speech_tokens: int = 6561
    flow_heads: int = 8
    flow_ffn: int = 2048
    flow_blocks: int = 6
    dec_channels: int = 256
    dec_head_dim: int = 64
    dec_blocks: int = 4
    dec_mid_blocks: int = 12
    dec_heads: int = 8
    hift_channels: int = 512
    hift_res_kernels: tuple = (3, 7, 11)
    hift_dilations: tuple = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    source_dilations: tuple = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    f0_channels: int = 512


MODEL_YAML = """# cosyvoice2.yaml in CosyVoice2-0.5B's layout (jaspeech.synthesis.tts.cosyvoice2_runtime.config.model_yaml)
__set_seed1: !apply:random.seed [1986]
__set_seed2: !apply:numpy.random.seed [1986]
__set_seed3: !apply:torch.manual_seed [1986]

sample_rate: 24000
llm_input_size: {hidden}
llm_output_size: {hidden}
spk_embed_dim: 192
qwen_pretrain_path: ''
token_frame_rate: 25
token_mel_ratio: 2
chunk_size: 25
num_decoding_left_chunks: -1

llm: !new:cosyvoice.llm.llm.Qwen2LM
    llm_input_size: !ref <llm_input_size>
    llm_output_size: !ref <llm_output_size>
    speech_token_size: {speech_tokens}
    length_normalized_loss: True
    lsm_weight: 0
    mix_ratio: [5, 15]
    llm: !new:cosyvoice.llm.llm.Qwen2Encoder
        pretrain_path: !ref <qwen_pretrain_path>
    sampling: !name:cosyvoice.utils.common.ras_sampling
        top_p: 0.8
        top_k: 25
        win_size: 10
        tau_r: 0.1

flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec
    input_size: 512
    output_size: 80
    spk_embed_dim: !ref <spk_embed_dim>
    output_type: 'mel'
    vocab_size: {speech_tokens}
    input_frame_rate: !ref <token_frame_rate>
    only_mask_loss: True
    token_mel_ratio: !ref <token_mel_ratio>
    pre_lookahead_len: 3
    encoder: !new:cosyvoice.transformer.upsample_encoder.UpsampleConformerEncoder
        output_size: 512  # fixed: upstream's UpsampleConformerEncoder hard-codes 512 channels
        attention_heads: {flow_heads}
        linear_units: {flow_ffn}
        num_blocks: {flow_blocks}
        dropout_rate: 0.1
        positional_dropout_rate: 0.1
        attention_dropout_rate: 0.1
        normalize_before: True
        input_layer: 'linear'
        pos_enc_layer_type: 'rel_pos_espnet'
        selfattention_layer_type: 'rel_selfattn'
        input_size: 512
        use_cnn_module: False
        macaron_style: False
        static_chunk_size: !ref <chunk_size>
    decoder: !new:cosyvoice.flow.flow_matching.CausalConditionalCFM
        in_channels: 240
        n_spks: 1
        spk_emb_dim: 80
        cfm_params: !new:omegaconf.DictConfig
            content:
                sigma_min: 1e-06
                solver: 'euler'
                t_scheduler: 'cosine'
                training_cfg_rate: 0.2
                inference_cfg_rate: 0.7
                reg_loss_type: 'l1'
        estimator: !new:cosyvoice.flow.decoder.CausalConditionalDecoder
            in_channels: 320
            out_channels: 80
            channels: [{dec_channels}]
            dropout: 0.0
            attention_head_dim: {dec_head_dim}
            n_blocks: {dec_blocks}
            num_mid_blocks: {dec_mid_blocks}
            num_heads: {dec_heads}
            act_fn: 'gelu'
            static_chunk_size: !ref <chunk_size> * <token_mel_ratio>
            num_decoding_left_chunks: !ref <num_decoding_left_chunks>

hift: !new:cosyvoice.hifigan.generator.HiFTGenerator
    in_channels: 80
    base_channels: {hift_channels}
    nb_harmonics: 8
    sampling_rate: !ref <sample_rate>
    nsf_alpha: 0.1
    nsf_sigma: 0.003
    nsf_voiced_threshold: 10
    upsample_rates: [8, 5, 3]
    upsample_kernel_sizes: [16, 11, 7]
    istft_params:
        n_fft: 16
        hop_len: 4
    resblock_kernel_sizes: {hift_res_kernels}
    resblock_dilation_sizes: {hift_dilations}
    source_resblock_kernel_sizes: [7, 7, 11]
    source_resblock_dilation_sizes: {source_dilations}
    lrelu_slope: 0.1
    audio_limit: 0.99
    f0_predictor: !new:cosyvoice.hifigan.f0_predictor.ConvRNNF0Predictor
        num_class: 1
        in_channels: 80
        cond_channels: {f0_channels}

get_tokenizer: !name:cosyvoice.tokenizer.tokenizer.get_qwen_tokenizer
    token_path: !ref <qwen_pretrain_path>
    skip_special_tokens: True
allowed_special: 'all'
feat_extractor: !name:matcha.utils.audio.mel_spectrogram
    n_fft: 1920
    num_mels: 80
    sampling_rate: !ref <sample_rate>
    hop_size: 480
    win_size: 1920
    fmin: 0
    fmax: 8000
    center: False
"""


def model_yaml(sizes: ModelSizes = ModelSizes()) -> str:
    """cosyvoice2.yaml for a model of `sizes` (tuples written as YAML lists)."""
    def value(v):
        return [value(x) for x in v] if isinstance(v, tuple) else v

    return MODEL_YAML.format(**{k: value(v) for k, v in asdict(sizes).items()})
