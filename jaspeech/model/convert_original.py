"""`jaspeech convert-original SRC OUT`: an original ja-speech-llm checkpoint (`LlamaForSpeechLM`) as a JaSpeechLLM.

The original saves `encoder.*` (a Whisper encoder), `decoder.model.*` and `decoder.lm_head.weight` (the
LLM), `adapter.linear1.weight` / `adapter.linear2.weight` (the 2H-wide, bias-free adapter), and a config
with `encoder_id`, `decoder_id`, `decoder_config` and `adapter_kernel_size`. They map one to one onto
`encoder.*`, `language_model.*` and `adapter.fc{1,2}.*`; the converted model counts audio tokens the
original's way (`floor`), renders the original prompt format and hears dialogues as the original did
(`multi_turn_audio="full_window"` in `processor_config.json`: each clip of a prompt with more than one user
turn is its whole padded 30 s window, 375 embeddings, as the original's multi-turn path encoded it in
training, validation and its demo; single-turn prompts trimmed), so it computes the same logits.

Not convertible: LoRA-only runs (`adapter.pt` + `lora/`: merge the LoRA into the decoder with peft and
save the full model first) and other encoders (`encoder_type` afwhisper / qwen2-audio).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from jaspeech.model.configuration_jaspeech_llm import JaSpeechLLMConfig
from jaspeech.model.modeling_jaspeech_llm import JaSpeechLLMForConditionalGeneration
from jaspeech.model.processing_jaspeech_llm import JaSpeechLLMProcessor
from jaspeech.model.prompts import check_format

RENAMES = (("encoder.", "encoder."), ("decoder.", "language_model."), ("adapter.linear1.", "adapter.fc1."),
           ("adapter.linear2.", "adapter.fc2."))


def original_state_dict(src: Path) -> dict[str, torch.Tensor]:
    """All tensors of a saved checkpoint folder (safetensors, sharded or not, or pytorch_model.bin)."""
    from safetensors.torch import load_file

    index = src / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {k: v for f in files for k, v in load_file(src / f).items()}
    if (src / "model.safetensors").exists():
        return load_file(src / "model.safetensors")
    if (src / "pytorch_model.bin").exists():
        return torch.load(src / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{src} holds no model.safetensors(.index.json) or pytorch_model.bin")


def rename(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for old, new in RENAMES:
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            raise ValueError(f"unexpected tensor {key!r}: not an encoder./decoder./adapter.linear1|2. weight "
                             "of an original LlamaForSpeechLM checkpoint")
    return out


def _check_convertible(src: Path, cfg: dict) -> None:
    if (src / "lora").exists() or (src / "adapter.pt").exists():
        raise ValueError(f"{src} is a LoRA-only run (adapter.pt + lora/): merge the LoRA into the decoder "
                         "(peft merge_and_unload), save the full LlamaForSpeechLM, then convert that")
    if cfg.get("encoder_type", "whisper") != "whisper":
        raise ValueError(f"encoder_type {cfg['encoder_type']!r} cannot be converted: JaSpeechLLM uses a Whisper encoder")
    if not cfg.get("decoder_config"):
        raise ValueError(f"{src}/config.json has no decoder_config: save the original model with its decoder config")


def _grow_vocab(state: dict, rows: int) -> None:
    """Give the embedding and output tables `rows` rows (new rows zero; they hold only the audio placeholder,
    whose embedding is always replaced by audio and which is never a label)."""
    for key in ("language_model.model.embed_tokens.weight", "language_model.lm_head.weight"):
        if key in state and state[key].shape[0] < rows:
            table = state[key]
            state[key] = torch.cat([table, table.new_zeros(rows - table.shape[0], table.shape[1])])


def convert_original(src: str | Path, out: str | Path, encoder: str | None = None, tokenizer: str | None = None,
                     prompt_format: str = "original-v2", audio_token: str = "<|audio|>",
                     multi_turn_audio: str = "full_window") -> Path:
    """Write a JaSpeechLLM checkpoint (model + processor) to `out`; returns `out`.

    `encoder` / `tokenizer`: where to read the Whisper config + feature extractor and the LLM's tokenizer
    (default: the checkpoint's `encoder_id` / `decoder_id`, hub ids or folders). `prompt_format`:
    `original-v2` (the chat model's) or `original-v1` (the ASR checkpoints behind the published CER rows).
    `multi_turn_audio`: `full_window` (the original's dialogues) or `trimmed` (ours; the checkpoint then
    hears dialogues differently from how it was trained).
    """
    from transformers import AutoConfig, AutoTokenizer, WhisperConfig, WhisperFeatureExtractor

    if check_format(prompt_format) == "chat":
        raise ValueError("an original checkpoint was trained on original-v1 or original-v2 prompts, not chat")
    src, out = Path(src), Path(out)
    cfg = json.loads((src / "config.json").read_text(encoding="utf-8"))
    _check_convertible(src, cfg)
    encoder = encoder or cfg["encoder_id"]
    tok = AutoTokenizer.from_pretrained(tokenizer or cfg["decoder_id"])
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # as the original
    state = rename(original_state_dict(src))
    decoder_config = dict(cfg["decoder_config"])
    text_config = AutoConfig.for_model(decoder_config.pop("model_type"), **decoder_config)
    if audio_token not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [audio_token]})
    audio_token_id = tok.convert_tokens_to_ids(audio_token)
    rows = state["language_model.model.embed_tokens.weight"].shape[0]
    if audio_token_id >= rows:  # never shrink a padded table; grow it only if the new token does not fit
        rows = audio_token_id + 1
        _grow_vocab(state, rows)
    text_config.vocab_size = rows
    config = JaSpeechLLMConfig(
        audio_config=WhisperConfig.from_pretrained(encoder), text_config=text_config, audio_token_id=audio_token_id,
        pooling=int(cfg.get("adapter_kernel_size", 4)), adapter_hidden_size=state["adapter.fc1.weight"].shape[0],
        adapter_bias="adapter.fc1.bias" in state, audio_token_rounding="floor", tie_word_embeddings=False)
    with torch.device("meta"):
        model = JaSpeechLLMForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise ValueError(f"the checkpoint does not fit: missing {missing[:5]}, unexpected {unexpected[:5]}; only full "
                         "LlamaForSpeechLM checkpoints with a Whisper encoder convert (merge a LoRA run first)")
    model.save_pretrained(out)
    JaSpeechLLMProcessor(WhisperFeatureExtractor.from_pretrained(encoder), tok, audio_token,
                         pooling=config.pooling, audio_token_rounding="floor",
                         prompt_format=prompt_format, multi_turn_audio=multi_turn_audio).save_pretrained(out)
    return out
