"""JaSpeechLLM configuration: a Whisper encoder config, a causal LM config, and the adapter between them.

The audio-token arithmetic lives here because both the processor (how many placeholders a clip gets)
and the model (how many adapter outputs a window keeps) must agree on it, and both import this module.
"""
from __future__ import annotations

import math

from transformers import AutoConfig, LlamaConfig, PreTrainedConfig, WhisperConfig

SAMPLE_RATE = 16000
HOP = 160  # Whisper mel hop, samples at 16 kHz
SAMPLES_PER_TOKEN = HOP * 2  # encoder conv stride 2 -> 50 frames per second, before pooling
ROUNDINGS = ("ceil", "floor")


def audio_tokens_for(samples: int, pooling: int = 4, rounding: str = "ceil") -> int:
    """Audio tokens for one window of `samples` valid samples (at least one).

    `ceil` (ours) keeps the last, partly filled group of `pooling` frames, so no audio is dropped;
    `floor` is the original ja-speech-llm's count (Whisper's `_get_feat_extract_output_lengths` of the
    mel attention mask, then `// pooling`): its last 0-3 frames (up to 60 ms) are never seen by the LLM.
    """
    frames = math.ceil(samples / SAMPLES_PER_TOKEN)
    if rounding == "ceil":
        return max(1, math.ceil(frames / pooling))
    if rounding == "floor":
        return max(1, frames // pooling)
    raise ValueError(f"audio token rounding must be one of {', '.join(ROUNDINGS)}, not {rounding!r}")


def _sub_config(value, default_type: str):
    if isinstance(value, PreTrainedConfig):
        return value
    value = dict(value or {})
    model_type = value.pop("model_type", default_type)
    return AutoConfig.for_model(model_type, **value)


class JaSpeechLLMConfig(PreTrainedConfig):
    """Whisper encoder -> average pool x`pooling` -> Linear-GELU-Linear adapter -> causal LM.

    Args:
        audio_config: a Whisper config (its encoder is used; the seed used whisper-large-v3).
        text_config: any causal LM config (the seed used llm-jp-4-8b-instruct, a Llama-type model).
        audio_token_id: the placeholder token the processor expands into one token per audio frame.
        pooling: encoder frames averaged into one audio token (4: 50 Hz -> 12.5 Hz).
        adapter_hidden_size: width of the adapter's hidden layer (default: the LLM's hidden size H;
            the original ja-speech-llm used 2H).
        adapter_bias: whether the adapter's two Linear layers have a bias (ours: yes; the original: no).
        chunk_seconds: audio is encoded in windows of this length (Whisper's 30 s), longer clips in chunks.
        audio_token_rounding: `ceil` (ours) or `floor` (the original), see `audio_tokens_for`.
    """

    model_type = "jaspeech_llm"
    sub_configs = {"audio_config": AutoConfig, "text_config": AutoConfig}

    def __init__(self, audio_config=None, text_config=None, audio_token_id: int | None = None, pooling: int = 4,
                 adapter_hidden_size: int | None = None, adapter_bias: bool = True, chunk_seconds: float = 30.0,
                 audio_token_rounding: str = "ceil", **kwargs):
        self.audio_config = _sub_config(audio_config, "whisper") if audio_config is not None else WhisperConfig()
        self.text_config = _sub_config(text_config, "llama") if text_config is not None else LlamaConfig()
        self.audio_token_id = audio_token_id
        self.pooling = pooling
        self.adapter_hidden_size = adapter_hidden_size or self.text_config.hidden_size
        self.adapter_bias = adapter_bias
        self.chunk_seconds = chunk_seconds
        if audio_token_rounding not in ROUNDINGS:
            raise ValueError(f"audio_token_rounding must be one of {', '.join(ROUNDINGS)}")
        self.audio_token_rounding = audio_token_rounding
        kwargs.setdefault("tie_word_embeddings", getattr(self.text_config, "tie_word_embeddings", False))
        super().__init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        return self.text_config.hidden_size

    @property
    def vocab_size(self) -> int:
        return self.text_config.vocab_size

    def audio_tokens_for(self, samples: int) -> int:
        return audio_tokens_for(samples, self.pooling, self.audio_token_rounding)
