"""A tiny, randomly initialised CosyVoice2 model folder in upstream's layout (no download).

    cosyvoice2.yaml            upstream's CosyVoice2-0.5B config (same classes and wiring), tiny sizes
    llm.pt, flow.pt, hift.pt   state dicts of the modules that YAML builds, random weights
    campplus.onnx              speaker embedding: fbank [1, T, 80] -> [1, 192]
    speech_tokenizer_v2.onnx   speech tokens: whisper log-mel [1, 128, T] + length -> [1, T/4] (25 Hz)
    CosyVoice-BlankEN/         the Qwen2 the LLM starts from: config, weights, byte-level BPE tokenizer

The modules are built by upstream's own classes through hyperpyyaml, so the state dicts have exactly the
keys `CosyVoice2Model.load` expects. The ONNX graphs are tiny deterministic functions with the input and
output names, dtypes and shapes upstream's frontend feeds and reads.

One deliberate non-random weight: the LLM's logit for end-of-speech is raised (`eos_bias`), as training
would, so generation stops soon after upstream's minimum length (2 speech tokens per text token)
instead of always running to its maximum (20 per text token). Pass `eos_bias=0` for a model that runs
away.
"""
from __future__ import annotations

import importlib
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from jaspeech.synthesis.tts.cosyvoice2_runtime.config import ModelSizes, model_yaml

STANDINS = Path(__file__).resolve().parent / "standins"

SPEECH_TOKENS = 64  # upstream: 6561
HIDDEN = 32  # Qwen2 hidden size = llm_input_size = llm_output_size (upstream: 896)

# upstream's CosyVoice2-0.5B cosyvoice2.yaml (same classes and wiring), tiny sizes
TINY_SIZES = ModelSizes(hidden=HIDDEN, speech_tokens=SPEECH_TOKENS, flow_heads=2, flow_ffn=64, flow_blocks=1,
                        dec_channels=32, dec_head_dim=16, dec_blocks=1, dec_mid_blocks=1, dec_heads=2, hift_channels=16,
                        hift_res_kernels=(3,), hift_dilations=((1, 3),), source_dilations=((1, 3), (1, 3), (1, 3)),
                        f0_channels=16)


def _kana() -> str:
    hiragana = "".join(chr(c) for c in range(0x3041, 0x3097))
    katakana = "".join(chr(c) for c in range(0x30A1, 0x30FB)) + "ー"
    return hiragana + katakana


def write_tokenizer(folder: Path, extra_text: str = "") -> int:
    """A byte-level BPE in Qwen2's file layout (vocab.json, merges.txt, tokenizer_config.json).

    Trained here on every kana (so a kana reading is about one token per character) and `extra_text`;
    any other text still encodes, byte by byte. Returns the vocabulary size.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=1, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    lines = [_kana() * 3, "。、！？「」", *extra_text.splitlines()]
    tok.train_from_iterator(lines, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = model["vocab"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "Qwen2Tokenizer", "model_max_length": 32768, "unk_token": None,
        "bos_token": None, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "added_tokens_decoder": {str(vocab["<|endoftext|>"]): {
            "content": "<|endoftext|>", "special": True, "lstrip": False, "rstrip": False,
            "normalized": False, "single_word": False}},
    }), encoding="utf-8")
    return len(vocab)


def write_qwen(folder: Path, vocab_size: int) -> None:
    """CosyVoice-BlankEN: a 1-layer Qwen2 (upstream loads it with from_pretrained before llm.pt)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab_size + 64, hidden_size=HIDDEN, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=4096, tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(folder)


def _onnx_models(folder: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def save(graph, name):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(folder / name))

    # campplus: mean fbank over time, then a random projection to a 192-d embedding
    proj = numpy_helper.from_array(rng.standard_normal((80, 192)).astype(np.float32) * 0.1, "proj")
    axis1 = numpy_helper.from_array(np.array([1], np.int64), "axis1")
    save(helper.make_graph(
        [helper.make_node("ReduceMean", ["input", "axis1"], ["pooled"], keepdims=0),
         helper.make_node("MatMul", ["pooled", "proj"], ["embedding"])],
        "campplus_tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, "T", 80])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 192])],
        [proj, axis1]), "campplus.onnx")

    # speech tokenizer: every 4th log-mel frame (100 Hz -> 25 Hz), bucketed into SPEECH_TOKENS ids
    inits = [numpy_helper.from_array(np.array(v, dtype), n) for n, v, dtype in [
        ("axis1", [1], np.int64), ("start", [0], np.int64), ("end", [1 << 30], np.int64),
        ("axis2", [2], np.int64), ("step", [4], np.int64), ("scale", 97.0, np.float32),
        ("vocab", SPEECH_TOKENS, np.int64)]]
    save(helper.make_graph(
        [helper.make_node("Slice", ["feats", "start", "end", "axis2", "step"], ["frames"]),
         helper.make_node("ReduceSum", ["frames", "axis1"], ["energy"], keepdims=0),
         helper.make_node("Mul", ["energy", "scale"], ["scaled"]),
         helper.make_node("Abs", ["scaled"], ["positive"]),
         helper.make_node("Cast", ["positive"], ["ids"], to=TensorProto.INT64),
         helper.make_node("Mod", ["ids", "vocab"], ["indices"]),
         helper.make_node("Identity", ["feats_length"], ["unused_length"])],
        "speech_tokenizer_tiny",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, 128, "T"]),
         helper.make_tensor_value_info("feats_length", TensorProto.INT32, [1])],
        [helper.make_tensor_value_info("indices", TensorProto.INT64, [1, "T4"]),
         helper.make_tensor_value_info("unused_length", TensorProto.INT32, [1])],
        inits), "speech_tokenizer_v2.onnx")


def build_tiny_cosyvoice2(folder: Path, eos_bias: float = 3.5, extra_text: str = "") -> Path:
    """Write the whole folder; the state dicts come from upstream's classes built from the YAML."""
    import torch
    from hyperpyyaml import load_hyperpyyaml

    folder.mkdir(parents=True, exist_ok=True)
    blank = folder / "CosyVoice-BlankEN"
    write_qwen(blank, write_tokenizer(blank, extra_text))
    yaml_text = model_yaml(TINY_SIZES)
    (folder / "cosyvoice2.yaml").write_text(yaml_text, encoding="utf-8")
    configs = load_hyperpyyaml(yaml_text, overrides={"qwen_pretrain_path": str(blank)})
    with torch.no_grad():
        configs["llm"].llm_decoder.bias[SPEECH_TOKENS] += eos_bias
    torch.save(configs["llm"].state_dict(), folder / "llm.pt")
    torch.save(configs["flow"].state_dict(), folder / "flow.pt")
    torch.save(configs["hift"].state_dict(), folder / "hift.pt")
    _onnx_models(folder)
    return folder


def write_speakers(folder: Path, assistants: bool = False) -> Path:
    """A speakers folder: 3 s harmonic tones at 24 kHz (one pitch per voice) and their transcripts, for
    spk00..spk19 (and the assistant voices asst00/asst01 with `assistants`)."""
    import soundfile as sf

    from jaspeech.synthesis.speakers import ASSISTANT_PROFILES, PROFILES

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(3 * 24000) / 24000
    for i, p in enumerate([*PROFILES, *(ASSISTANT_PROFILES if assistants else ())]):
        f0 = 110.0 + 12.0 * i
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3)) * 0.2 * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
        sf.write(folder / f"{p.name}.wav", tone.astype(np.float32), 24000)
        (folder / f"{p.name}.txt").write_text("こんにちは、今日はよろしくお願いします。", encoding="utf-8")
    return folder


def _imports(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except Exception:  # torchaudio's compiled extension raises OSError on a mismatched torch
        sys.modules.pop(name, None)
        return False


@contextmanager
def upstream_importable():
    """Upstream CosyVoice importable: the stand-ins in tests/synthesis/standins/ go on sys.path only for
    the packages that do not import here (torchaudio beside CPU torch 2.13; WeTextProcessing's `tn`), and
    leave it, and sys.modules, afterwards. Yields the names of the stand-ins used."""
    import transformers  # noqa: F401  (imported first, so it records the real torchaudio's absence)

    used = [name for name in ("torchaudio", "tn") if not _imports(name)]
    paths = [str(STANDINS / name) for name in used]
    sys.path[:0] = paths
    try:
        yield used
    finally:
        for path in paths:
            sys.path.remove(path)
        for name in [m for m in sys.modules if m.split(".")[0] in used]:
            del sys.modules[name]
