"""Tiny JaSpeechLLM parts built in tests: a BPE tokenizer trained here, a small random Whisper encoder and LLM."""
from __future__ import annotations

from jaspeech.model import parts

CORPUS = ["今日はいい天気です。", "明日の会議は午後二時からです。", "駅まで歩いて十分かかります。",
          "音声を書き起こしてください。", "user assistant", "Transcribe the audio into English text."]


def tiny_tokenizer(texts=CORPUS, vocab_size: int = 600, prompt_format: str = "chat"):
    return parts.tiny_tokenizer(list(texts), vocab_size, prompt_format)


def tiny_model_and_processor(tokenizer=None, d_model: int = 32, hidden: int = 64, layers: int = 2, **choices):
    """(model, processor); `choices`: adapter_width, adapter_bias, audio_token_rounding, prompt_format."""
    return parts.tiny(CORPUS, d_model=d_model, hidden_size=hidden, layers=layers, vocab_size=600,
                      tokenizer=tokenizer or tiny_tokenizer(prompt_format=choices.get("prompt_format", "chat")),
                      **choices)
