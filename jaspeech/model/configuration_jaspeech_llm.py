"""JaSpeechLLM configuration: a Whisper encoder config, a causal LM config, and the adapter between them."""
from __future__ import annotations

from transformers import AutoConfig, LlamaConfig, PreTrainedConfig, WhisperConfig


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
        adapter_hidden_size: width of the adapter's hidden layer (default: the LLM's hidden size).
        chunk_seconds: audio is encoded in windows of this length (Whisper's 30 s), longer clips in chunks.
    """

    model_type = "jaspeech_llm"
    sub_configs = {"audio_config": AutoConfig, "text_config": AutoConfig}

    def __init__(self, audio_config=None, text_config=None, audio_token_id: int | None = None, pooling: int = 4,
                 adapter_hidden_size: int | None = None, chunk_seconds: float = 30.0, **kwargs):
        self.audio_config = _sub_config(audio_config, "whisper") if audio_config is not None else WhisperConfig()
        self.text_config = _sub_config(text_config, "llama") if text_config is not None else LlamaConfig()
        self.audio_token_id = audio_token_id
        self.pooling = pooling
        self.adapter_hidden_size = adapter_hidden_size or self.text_config.hidden_size
        self.chunk_seconds = chunk_seconds
        kwargs.setdefault("tie_word_embeddings", getattr(self.text_config, "tie_word_embeddings", False))
        super().__init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        return self.text_config.hidden_size

    @property
    def vocab_size(self) -> int:
        return self.text_config.vocab_size
