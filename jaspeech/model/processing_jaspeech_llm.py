"""JaSpeechLLM processor: Whisper features + the LLM's tokenizer, with audio placeholder expansion.

Each `<|audio|>` in the text stands for one clip (in order). The clip is cut into 30 s windows; each
window becomes one row of `input_features` (padded to 30 s as Whisper requires) and contributes
`audio_tokens_for(valid samples)` placeholder tokens, so the text holds exactly as many placeholders as
the model will produce audio embeddings. Prompts are rendered in the processor's `prompt_format`
(`jaspeech.model.prompts`): the LLM's chat template or the original ja-speech-llm format.
"""
from __future__ import annotations

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin

from jaspeech.model import prompts
from jaspeech.model.configuration_jaspeech_llm import SAMPLE_RATE, audio_tokens_for
from jaspeech.synthesis.audio import resample

FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


class JaSpeechLLMProcessor(ProcessorMixin):
    attributes = ["feature_extractor", "tokenizer"]
    feature_extractor_class = "WhisperFeatureExtractor"
    tokenizer_class = "AutoTokenizer"

    def __init__(self, feature_extractor=None, tokenizer=None, audio_token: str = "<|audio|>", chat_template=None,
                 pooling: int = 4, chunk_seconds: float = 30.0, audio_token_rounding: str = "ceil",
                 prompt_format: str = "chat", **kwargs):
        if tokenizer is not None and audio_token not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [audio_token]})
        self.audio_token = audio_token
        self.pooling = pooling
        self.chunk_seconds = chunk_seconds
        audio_tokens_for(1, pooling, audio_token_rounding)  # validates the rounding
        self.audio_token_rounding = audio_token_rounding
        self.prompt_format = prompts.check_format(prompt_format)
        super().__init__(feature_extractor, tokenizer, chat_template=chat_template, **kwargs)

    @property
    def audio_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.audio_token)

    def windows(self, samples: np.ndarray) -> list[np.ndarray]:
        size = int(self.chunk_seconds * SAMPLE_RATE)
        return [samples[i : i + size] for i in range(0, max(len(samples), 1), size)]

    def _audio(self, audio) -> tuple[list[np.ndarray], list[int]]:
        """Every clip's 30 s windows (in order) and each clip's number of audio tokens."""
        windows, per_clip = [], []
        for clip in audio:
            samples, sr = clip if isinstance(clip, tuple) else (clip, SAMPLE_RATE)
            samples = resample(np.asarray(samples, dtype=np.float32).reshape(-1), int(sr), SAMPLE_RATE)
            ws = self.windows(samples)
            windows += ws
            per_clip.append(sum(audio_tokens_for(len(w), self.pooling, self.audio_token_rounding) for w in ws))
        return windows, per_clip

    def __call__(self, text=None, audio=None, padding=True, return_tensors="pt", **kwargs) -> BatchFeature:
        texts = [text] if isinstance(text, str) else list(text)
        data = {}
        if audio:
            windows, per_clip = self._audio(audio)
            placeholders = sum(t.count(self.audio_token) for t in texts)
            if placeholders != len(per_clip):
                raise ValueError(f"{placeholders} {self.audio_token} placeholders for {len(per_clip)} audio clips")
            counts = iter(per_clip)
            texts = [self._expand(t, counts) for t in texts]
            features = self.feature_extractor(windows, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            data["input_features"] = features.input_features
            data["audio_chunk_samples"] = torch.tensor([len(w) for w in windows])
        encoded = self.tokenizer(texts, padding=padding, return_tensors=return_tensors, add_special_tokens=False,
                                 **kwargs)
        return BatchFeature({**encoded, **data})

    def _expand(self, text: str, counts) -> str:
        parts = text.split(self.audio_token)
        return "".join(p + (self.audio_token * next(counts) if i < len(parts) - 1 else "")
                       for i, p in enumerate(parts))

    # --- prompts ----------------------------------------------------------------------------------

    def render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        if self.prompt_format != "chat":
            return prompts.render_original(messages, self.prompt_format, self.audio_token, self._bos_text(),
                                           add_generation_prompt)
        template = None if getattr(self.tokenizer, "chat_template", None) else FALLBACK_TEMPLATE
        return self.tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def _bos_text(self) -> str:
        """The tokens the tokenizer puts before a text by itself (llm-jp: BOS), written out as text.

        The original tokenized its prompts with the special tokens on; we tokenize rendered text without
        them, so the original formats write them into the text where the original had them.
        """
        tok = self.tokenizer
        plain = tok("あ", add_special_tokens=False)["input_ids"]
        full = tok("あ", add_special_tokens=True)["input_ids"]
        prefix = full[: len(full) - len(plain)] if full[len(full) - len(plain):] == plain else []
        return "".join(tok.convert_ids_to_tokens(prefix))

    @property
    def end_of_turn(self) -> str:
        """What follows a trained response: the tokenizer's EOS, or the original's `<|eos|>`."""
        return prompts.ORIGINAL_EOS if self.prompt_format != "chat" else (self.tokenizer.eos_token or "")

    def task_messages(self, task: str, turns: list[dict] | None = None) -> list[dict]:
        """Chat messages for a task. `turns` (instruction, dpo, text): [{role, text, spoken}], user turns spoken."""
        return prompts.task_messages(self.prompt_format, self.audio_token, task, turns)

    def training_example(self, messages: list[dict], response: str, audio: list,
                         loss_on: str = "response") -> BatchFeature:
        """Inputs with labels on the response and its end of turn (`loss_on="response"`, ours), or on every
        text token (`"all"`, the original's choice); audio placeholders are always -100."""
        prompt = self.render(messages, add_generation_prompt=True)
        enc = self(text=[prompt + response + self.end_of_turn], audio=audio, padding=False)
        labels = enc["input_ids"].clone()
        if loss_on == "response":
            labels[:, :len(self(text=[prompt], audio=audio, padding=False)["input_ids"][0])] = -100
        elif loss_on != "all":
            raise ValueError("loss_on must be 'response' or 'all'")
        enc["labels"] = labels.masked_fill(enc["input_ids"] == self.audio_token_id, -100)
        return enc
