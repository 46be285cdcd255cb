"""JaSpeechLLM: Whisper encoder -> average pool x4 -> Linear-GELU-Linear adapter -> causal LM.

Audio enters as 30 s Whisper windows (`input_features`, one row per window) with the number of samples
the LLM hears of each window (`audio_chunk_samples`: its real audio, or the whole padded window where the
processor hears a dialogue the original's way, `multi_turn_audio="full_window"`): each window is encoded,
pooled, adapted, and its frames beyond those samples are dropped, so a clip contributes exactly the number
of audio tokens the processor put in the text. Clips longer than 30 s are several windows (Voxtral-style), concatenated.
The audio embeddings replace the placeholder tokens with `masked_scatter`; labels are never computed
there (the processor sets them to -100).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from jaspeech.model.configuration_jaspeech_llm import JaSpeechLLMConfig


class JaSpeechLLMAdapter(nn.Module):
    """Average-pool the encoder frames x`pooling`, then Linear-GELU-Linear into the LLM's width.

    The original ja-speech-llm adapter is the same with `adapter_hidden_size` 2H and `adapter_bias` False
    (its `linear1`/`linear2` map onto `fc1`/`fc2`, see `convert_original`).
    """

    def __init__(self, config: JaSpeechLLMConfig):
        super().__init__()
        self.pooling = config.pooling
        bias = getattr(config, "adapter_bias", True)
        self.fc1 = nn.Linear(config.audio_config.d_model, config.adapter_hidden_size, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(config.adapter_hidden_size, config.text_config.hidden_size, bias=bias)

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

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    def encode_audio(self, input_features: torch.Tensor, audio_chunk_samples: torch.Tensor) -> torch.Tensor:
        """[n_windows, mels, 3000] -> the heard audio token embeddings of all windows, concatenated in order."""
        frames = self.encoder(input_features.to(self.encoder.conv1.weight.dtype)).last_hidden_state
        tokens = self.adapter(frames)
        keep = [self.config.audio_tokens_for(int(n)) for n in audio_chunk_samples.tolist()]
        return torch.cat([tokens[i, :k] for i, k in enumerate(keep)], dim=0)

    def merge_audio(self, input_ids, input_features=None, audio_chunk_samples=None,
                    audio_repeats: int = 1) -> torch.Tensor:
        """Text embeddings with the audio embeddings scattered into the placeholder tokens.

        `audio_repeats` > 1: the batch's rows come in that many consecutive groups sharing the same clips
        (DPO: chosen rows, then rejected rows); the encoder runs once and its output is reused per group.
        """
        embeds = self.get_input_embeddings()(input_ids)
        if input_features is None:
            return embeds
        audio = self.encode_audio(input_features, audio_chunk_samples).to(embeds.dtype)
        if audio_repeats > 1:
            audio = torch.cat([audio] * audio_repeats)
        mask = input_ids == self.config.audio_token_id
        if int(mask.sum()) != audio.shape[0]:
            raise ValueError(f"{int(mask.sum())} audio placeholder tokens but {audio.shape[0]} audio frames: "
                             "expand the placeholder with the processor")
        return embeds.masked_scatter(mask.unsqueeze(-1).expand_as(embeds), audio)

    def forward(self, input_ids=None, input_features=None, audio_chunk_samples=None, attention_mask=None,
                labels=None, inputs_embeds=None, audio_repeats: int = 1, **kwargs) -> CausalLMOutputWithPast:
        if inputs_embeds is None:
            inputs_embeds = self.merge_audio(input_ids, input_features, audio_chunk_samples, audio_repeats)
        if labels is not None and input_ids is not None:
            labels = labels.masked_fill(input_ids == self.config.audio_token_id, -100)
        return self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels,
                                   **kwargs)

    @torch.no_grad()
    def generate(self, input_ids=None, input_features=None, audio_chunk_samples=None, attention_mask=None,
                 **kwargs) -> torch.Tensor:
        """Generate the continuation (new tokens only) of prompts that contain audio.

        Under FSDP every rank must call this (pass `synced_gpus=True`) with the root's parameters
        unsharded (see `jaspeech.model.train.distributed.full_parameters`).
        """
        inputs_embeds = self.merge_audio(input_ids, input_features, audio_chunk_samples)
        return self.language_model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs)
