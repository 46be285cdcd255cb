"""JaSpeechLLM: Whisper encoder -> average pool x4 -> Linear-GELU-Linear adapter -> causal LM.

Audio enters as 30 s Whisper windows (`input_features`, one row per window) with the number of valid
samples of each window (`audio_chunk_samples`): each window is encoded, pooled, adapted, and its
frames beyond the real audio are dropped, so a clip contributes exactly the number of audio tokens the
processor put in the text. Clips longer than 30 s are several windows (Voxtral-style), concatenated.
The audio embeddings replace the placeholder tokens with `masked_scatter`; labels are never computed
there (the processor sets them to -100).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from jaspeech.model.configuration_jaspeech_llm import JaSpeechLLMConfig

HOP = 160  # Whisper mel hop, samples at 16 kHz
SAMPLES_PER_TOKEN = HOP * 2  # encoder conv stride 2 -> 50 frames per second, before pooling


def audio_tokens_for(samples: int, pooling: int = 4) -> int:
    """Audio tokens for one window of `samples` valid samples (at least one)."""
    return max(1, math.ceil(math.ceil(samples / SAMPLES_PER_TOKEN) / pooling))


class JaSpeechLLMAdapter(nn.Module):
    """Average-pool the encoder frames x`pooling`, then Linear-GELU-Linear into the LLM's width."""

    def __init__(self, config: JaSpeechLLMConfig):
        super().__init__()
        self.pooling = config.pooling
        self.fc1 = nn.Linear(config.audio_config.d_model, config.adapter_hidden_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(config.adapter_hidden_size, config.text_config.hidden_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # [B, T, d] -> [B, ceil(T / pooling), H]
        pooled = nn.functional.avg_pool1d(frames.transpose(1, 2), self.pooling, self.pooling, ceil_mode=True)
        return self.fc2(self.act(self.fc1(pooled.transpose(1, 2))))


class JaSpeechLLMPreTrainedModel(PreTrainedModel):
    config_class = JaSpeechLLMConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["WhisperEncoderLayer", "LlamaDecoderLayer"]

    def _init_weights(self, module):
        std = getattr(self.config.text_config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear) and module.weight.dtype.is_floating_point:
            module.weight.data.normal_(0.0, std)
            if module.bias is not None:
                module.bias.data.zero_()


class JaSpeechLLMForConditionalGeneration(JaSpeechLLMPreTrainedModel):
    def __init__(self, config: JaSpeechLLMConfig, encoder: WhisperEncoder | None = None,
                 language_model: PreTrainedModel | None = None):
        super().__init__(config)
        self.encoder = encoder if encoder is not None else WhisperEncoder(config.audio_config)
        self.adapter = JaSpeechLLMAdapter(config)
        self.language_model = language_model if language_model is not None else AutoModelForCausalLM.from_config(
            config.text_config)
        self.post_init()

    @classmethod
    def from_pretrained_parts(cls, encoder: str, llm: str, audio_token: str = "<|audio|>", **kwargs):
        """Assemble a new model from pretrained parts (e.g. openai/whisper-large-v3 + llm-jp/llm-jp-4-8b-instruct).

        Returns (model, processor); the adapter is freshly initialised, the tokenizer gains the audio token.
        """
        from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperModel

        from jaspeech.model.processing_jaspeech_llm import JaSpeechLLMProcessor

        whisper = WhisperModel.from_pretrained(encoder, **kwargs)
        language_model = AutoModelForCausalLM.from_pretrained(llm, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(llm)
        tokenizer.add_special_tokens({"additional_special_tokens": [audio_token]})
        language_model.resize_token_embeddings(len(tokenizer))
        config = JaSpeechLLMConfig(audio_config=whisper.config, text_config=language_model.config,
                                   audio_token_id=tokenizer.convert_tokens_to_ids(audio_token))
        model = cls(config, encoder=whisper.get_encoder(), language_model=language_model)
        processor = JaSpeechLLMProcessor(WhisperFeatureExtractor.from_pretrained(encoder), tokenizer, audio_token)
        return model, processor

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    def encode_audio(self, input_features: torch.Tensor, audio_chunk_samples: torch.Tensor) -> torch.Tensor:
        """[n_windows, mels, 3000] -> the valid audio token embeddings of all windows, concatenated in order."""
        frames = self.encoder(input_features.to(self.encoder.conv1.weight.dtype)).last_hidden_state
        tokens = self.adapter(frames)
        keep = [audio_tokens_for(int(n), self.config.pooling) for n in audio_chunk_samples.tolist()]
        return torch.cat([tokens[i, :k] for i, k in enumerate(keep)], dim=0)

    def merge_audio(self, input_ids, input_features=None, audio_chunk_samples=None) -> torch.Tensor:
        embeds = self.get_input_embeddings()(input_ids)
        if input_features is None:
            return embeds
        audio = self.encode_audio(input_features, audio_chunk_samples).to(embeds.dtype)
        mask = input_ids == self.config.audio_token_id
        if int(mask.sum()) != audio.shape[0]:
            raise ValueError(f"{int(mask.sum())} audio placeholder tokens but {audio.shape[0]} audio frames: "
                             "expand the placeholder with the processor")
        return embeds.masked_scatter(mask.unsqueeze(-1).expand_as(embeds), audio)

    def forward(self, input_ids=None, input_features=None, audio_chunk_samples=None, attention_mask=None,
                labels=None, inputs_embeds=None, **kwargs) -> CausalLMOutputWithPast:
        if inputs_embeds is None:
            inputs_embeds = self.merge_audio(input_ids, input_features, audio_chunk_samples)
        if labels is not None and input_ids is not None:
            labels = labels.masked_fill(input_ids == self.config.audio_token_id, -100)
        return self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels,
                                   **kwargs)

    @torch.no_grad()
    def generate(self, input_ids=None, input_features=None, audio_chunk_samples=None, attention_mask=None,
                 **kwargs) -> torch.Tensor:
        """Generate the continuation (new tokens only) of prompts that contain audio."""
        inputs_embeds = self.merge_audio(input_ids, input_features, audio_chunk_samples)
        return self.language_model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs)
