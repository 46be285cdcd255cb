"""JaSpeechLLM processor: Whisper features + the LLM's tokenizer, with audio placeholder expansion.

Each `<|audio|>` in the text stands for one clip (in order). The clip is cut into 30 s windows; each
window becomes one row of `input_features` (padded to 30 s as Whisper requires) and contributes
`audio_tokens_for(valid samples)` placeholder tokens, so the text holds exactly as many placeholders as
the model will produce audio embeddings.
"""
from __future__ import annotations

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin

from jaspeech.model.modeling_jaspeech_llm import audio_tokens_for
from jaspeech.synthesis.audio import resample

SAMPLE_RATE = 16000
TASK_PROMPTS = {
    "asr_ja": "音声を書き起こしてください。",
    "asr_en": "Transcribe the audio into English text.",
    "caption": "Describe the sound in detail in English.",
    "instruction": None,  # spoken instructions: the audio is the whole user turn
}
FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


class JaSpeechLLMProcessor(ProcessorMixin):
    attributes = ["feature_extractor", "tokenizer"]
    feature_extractor_class = "WhisperFeatureExtractor"
    tokenizer_class = "AutoTokenizer"

    def __init__(self, feature_extractor=None, tokenizer=None, audio_token: str = "<|audio|>", chat_template=None,
                 pooling: int = 4, chunk_seconds: float = 30.0, **kwargs):
        if tokenizer is not None and audio_token not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [audio_token]})
        self.audio_token = audio_token
        self.pooling = pooling
        self.chunk_seconds = chunk_seconds
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
            per_clip.append(sum(audio_tokens_for(len(w), self.pooling) for w in ws))
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
        template = None if getattr(self.tokenizer, "chat_template", None) else FALLBACK_TEMPLATE
        return self.tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def task_messages(self, task: str, turns: list[dict] | None = None) -> list[dict]:
        """Chat messages for a task. `turns` (instruction, DPO): [{role, text, spoken}], user turns spoken."""
        if task in ("asr_ja", "asr_en", "caption"):
            return [{"role": "user", "content": f"{self.audio_token}\n{TASK_PROMPTS[task]}"}]
        if task in ("instruction", "dpo"):
            return [{"role": t["role"], "content": self.audio_token if t.get("spoken") else t["text"]}
                    for t in turns or []]
        raise ValueError(f"unknown task {task!r}; choose asr_ja, asr_en, caption, instruction, dpo")

    def training_example(self, messages: list[dict], response: str, audio: list) -> BatchFeature:
        """Inputs with labels only on the response (and its end-of-turn); prompt and audio are -100."""
        prompt = self.render(messages, add_generation_prompt=True)
        eos = self.tokenizer.eos_token or ""
        full = prompt + response + eos
        enc = self(text=[full], audio=audio, padding=False)
        prompt_len = len(self(text=[prompt], audio=audio, padding=False)["input_ids"][0])
        labels = enc["input_ids"].clone()
        labels[:, :prompt_len] = -100
        enc["labels"] = labels
        return enc
