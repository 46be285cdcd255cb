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


def llmjp_like_tokenizer(texts=CORPUS, vocab_size: int = 700):
    """A tokenizer shaped like LLM-jp's for the original format: it puts `<s>` before every text, has
    `<|eos|>` as EOS and padding, and the `<|reserved_342|>`/`<|reserved_343|>` audio markers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from jaspeech.model.prompts import ORIGINAL_SPECIAL_TOKENS

    specials = ["<s>", "<|eos|>", *ORIGINAL_SPECIAL_TOKENS[:2]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(list(texts), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|eos|>", pad_token="<|eos|>",
                                   additional_special_tokens=specials[2:])
