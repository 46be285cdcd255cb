"""JaSpeechLLM processor: Whisper features + the LLM's tokenizer, with audio placeholder expansion.

Each `<|audio|>` in the text stands for one clip (in order). The clip is cut into 30 s windows; each
window becomes one row of `input_features` (padded to 30 s as Whisper requires) and contributes
`audio_tokens_for(valid samples)` placeholder tokens, so the text holds exactly as many placeholders as
the model will produce audio embeddings. Prompts are rendered in the processor's `prompt_format`
(`jaspeech.model.prompts`): the LLM's chat template or the original ja-speech-llm format.

`multi_turn_audio` says how a clip in a dialogue is heard. `trimmed` (ours, the default): as everywhere
else, only the window's real audio. `full_window`: the original ja-speech-llm's rule for prompts with
more than one user turn: its multi-turn path (`LlamaForSpeechLM.embed(audios=...)`, used by
`finetune.py`, its multi-turn validation and its demo) encodes each clip's whole padded 30 s window and
keeps all of it (375 embeddings per clip for Whisper-large-v3), so its SFT checkpoints learned
dialogues that way. Single-turn prompts stay trimmed under both settings, as in the original. A clip
over 30 s in such a dialogue is heard as all its windows, each whole: the original's feature extractor
truncated it to its first 30 s (375 embeddings), but none of its readers kept a clip over 30 s, so there
is no trained behaviour to copy and we do not drop speech.
`jaspeech convert-original` writes `full_window` into `processor_config.json`; only the original
formats may use it (the user turns are counted by their `### 指示:` headers).
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
MULTI_TURN_AUDIO = ("trimmed", "full_window")


class JaSpeechLLMProcessor(ProcessorMixin):
    attributes = ["feature_extractor", "tokenizer"]
    feature_extractor_class = "WhisperFeatureExtractor"
    tokenizer_class = "AutoTokenizer"

    def __init__(self, feature_extractor=None, tokenizer=None, audio_token: str = "<|audio|>", chat_template=None,
                 pooling: int = 4, chunk_seconds: float = 30.0, audio_token_rounding: str = "ceil",
                 prompt_format: str = "chat", multi_turn_audio: str = "trimmed", **kwargs):
        if tokenizer is not None and audio_token not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [audio_token]})
        self.audio_token = audio_token
        self.pooling = pooling
        self.chunk_seconds = chunk_seconds
        audio_tokens_for(1, pooling, audio_token_rounding)  # validates the rounding
        self.audio_token_rounding = audio_token_rounding
        self.prompt_format = prompts.check_format(prompt_format)
        if multi_turn_audio not in MULTI_TURN_AUDIO:
            raise ValueError(f"multi_turn_audio must be one of {', '.join(MULTI_TURN_AUDIO)}, not {multi_turn_audio!r}")
        if multi_turn_audio == "full_window" and prompt_format == "chat":
            raise ValueError("multi_turn_audio='full_window' is the original ja-speech-llm's rule for its prompt "
                             "formats (original-v1, original-v2), not for chat")
        self.multi_turn_audio = multi_turn_audio
        super().__init__(feature_extractor, tokenizer, chat_template=chat_template, **kwargs)

    @property
    def audio_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.audio_token)

    def windows(self, samples: np.ndarray) -> list[np.ndarray]:
        size = int(self.chunk_seconds * SAMPLE_RATE)
        return [samples[i : i + size] for i in range(0, max(len(samples), 1), size)]

    def hears_full_window(self, text: str) -> bool:
        """Whether the clips of this prompt row are heard as whole 30 s windows (see `multi_turn_audio`)."""
        return self.multi_turn_audio == "full_window" and prompts.original_user_turns(text) > 1

    def _audio(self, audio, full_window: list[bool]) -> tuple[list[np.ndarray], list[int], list[int]]:
        """Every clip's 30 s windows (in order), the samples the model hears of each window (its real audio,
        or the whole padded window for a clip heard as `full_window`), and each clip's number of audio tokens."""
        size = int(self.chunk_seconds * SAMPLE_RATE)
        windows, heard, per_clip = [], [], []
        for clip, whole in zip(audio, full_window):
            samples, sr = clip if isinstance(clip, tuple) else (clip, SAMPLE_RATE)
            samples = resample(np.asarray(samples, dtype=np.float32).reshape(-1), int(sr), SAMPLE_RATE)
            ws = self.windows(samples)
            hs = [size if whole else len(w) for w in ws]
            windows += ws
            heard += hs
            per_clip.append(sum(audio_tokens_for(n, self.pooling, self.audio_token_rounding) for n in hs))
        return windows, heard, per_clip

    def __call__(self, text=None, audio=None, padding=True, return_tensors="pt", full_window: bool | None = None,
                 **kwargs) -> BatchFeature:
        """Tokens with the placeholders expanded, and the clips' Whisper windows.

        `full_window`: None (default) applies `multi_turn_audio` to each row; True / False hears every
        clip of the call as whole windows / trimmed (the original's training batches, see `train.batches`).
        """
        texts = [text] if isinstance(text, str) else list(text)
        data = {}
        if audio:
            audio = list(audio)
            per_row = [t.count(self.audio_token) for t in texts]
            if sum(per_row) != len(audio):
                raise ValueError(f"{sum(per_row)} {self.audio_token} placeholders for {len(audio)} audio clips")
            whole = [self.hears_full_window(t) if full_window is None else bool(full_window) for t in texts]
            windows, heard, per_clip = self._audio(audio, [w for w, n in zip(whole, per_row) for _ in range(n)])
            counts = iter(per_clip)
            texts = [self._expand(t, counts) for t in texts]
            features = self.feature_extractor(windows, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            data["input_features"] = features.input_features
            data["audio_chunk_samples"] = torch.tensor(heard)
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
                         loss_on: str = "response", full_window: bool | None = None) -> BatchFeature:
        """Inputs with labels on the response and its end of turn (`loss_on="response"`, ours), or on every
        text token (`"all"`, the original's choice); audio placeholders are always -100.

        `full_window` as in `__call__` (None: decided from the prompt, so the response cannot change it)."""
        prompt = self.render(messages, add_generation_prompt=True)
        whole = self.hears_full_window(prompt) if full_window is None else full_window
        enc = self(text=[prompt + response + self.end_of_turn], audio=audio, padding=False, full_window=whole)
        labels = enc["input_ids"].clone()
        if loss_on == "response":
            labels[:, :len(self(text=[prompt], audio=audio, padding=False, full_window=whole)["input_ids"][0])] = -100
        elif loss_on != "all":
            raise ValueError("loss_on must be 'response' or 'all'")
        enc["labels"] = labels.masked_fill(enc["input_ids"] == self.audio_token_id, -100)
        return enc
