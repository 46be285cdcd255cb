"""Assemble a JaSpeechLLM (model, processor) pair: from pretrained parts, or tiny and random for tests and CPU runs.

Kept apart from the modeling and processing modules so that neither imports the other.
"""
from __future__ import annotations

import torch

from jaspeech.model.configuration_jaspeech_llm import JaSpeechLLMConfig
from jaspeech.model.modeling_jaspeech_llm import JaSpeechLLMForConditionalGeneration
from jaspeech.model.processing_jaspeech_llm import JaSpeechLLMProcessor
from jaspeech.model.prompts import ORIGINAL_EOS, ORIGINAL_SPECIAL_TOKENS, check_format


def add_audio_token(tokenizer, language_model, audio_token: str = "<|audio|>") -> int:
    """Add the audio placeholder to the tokenizer; grow the LM's embeddings only if the new id does not fit.

    LLM-jp's tables are padded past the tokenizer's length: resizing to `len(tokenizer)` would shrink them
    and cut trained rows (and `lm_head` outputs) off, so a table is never made smaller.
    """
    if audio_token not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [audio_token]})
    token_id = tokenizer.convert_tokens_to_ids(audio_token)
    rows = language_model.get_input_embeddings().weight.shape[0]
    if token_id >= rows:
        language_model.resize_token_embeddings(max(len(tokenizer), token_id + 1), mean_resizing=False)
    return token_id


def from_pretrained_parts(encoder: str, llm: str, audio_token: str = "<|audio|>", adapter_width: float = 1.0,
                          adapter_bias: bool = True, audio_token_rounding: str = "ceil", prompt_format: str = "chat",
                          **kwargs):
    """A new model from pretrained parts (e.g. openai/whisper-large-v3 + llm-jp/llm-jp-4-8b-instruct).

    Returns (model, processor); the adapter is freshly initialised with hidden width `adapter_width` x the
    LLM's (the original: 2, no bias), the tokenizer gains the audio token.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, WhisperFeatureExtractor, WhisperModel

    whisper = WhisperModel.from_pretrained(encoder, **kwargs)
    language_model = AutoModelForCausalLM.from_pretrained(llm, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(llm)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # as the original does
    audio_token_id = add_audio_token(tokenizer, language_model, audio_token)
    config = JaSpeechLLMConfig(audio_config=whisper.config, text_config=language_model.config,
                               audio_token_id=audio_token_id,
                               adapter_hidden_size=int(adapter_width * language_model.config.hidden_size),
                               adapter_bias=adapter_bias, audio_token_rounding=audio_token_rounding)
    model = JaSpeechLLMForConditionalGeneration(config, encoder=whisper.get_encoder(), language_model=language_model)
    processor = JaSpeechLLMProcessor(WhisperFeatureExtractor.from_pretrained(encoder), tokenizer, audio_token,
                                     audio_token_rounding=audio_token_rounding, prompt_format=check_format(prompt_format))
    return model, processor


def tiny_tokenizer(texts: list[str], vocab_size: int = 800, prompt_format: str = "chat"):
    """A byte-level BPE tokenizer trained on `texts` (with the original format's special tokens if asked)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    original = check_format(prompt_format) != "chat"
    specials = ["<|endoftext|>", "<|audio|>"] + (ORIGINAL_SPECIAL_TOKENS if original else [])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts or ["あ"], trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    eos = ORIGINAL_EOS if original else "<|endoftext|>"
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=eos,
                                   additional_special_tokens=specials[1:])


def tiny(texts: list[str], d_model: int = 64, hidden_size: int = 128, layers: int = 2, vocab_size: int = 800,
         heads: int = 4, adapter_width: float = 1.0, adapter_bias: bool = True, audio_token_rounding: str = "ceil",
         prompt_format: str = "chat", tokenizer=None, seed: int = 0):
    """A random Whisper-shaped encoder + Llama-shaped LLM with a tokenizer trained on `texts`: (model, processor)."""
    from transformers import WhisperFeatureExtractor

    tokenizer = tokenizer or tiny_tokenizer(texts, vocab_size, prompt_format)
    processor = JaSpeechLLMProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer,
                                     audio_token_rounding=audio_token_rounding, prompt_format=prompt_format)
    config = JaSpeechLLMConfig(
        audio_config={"model_type": "whisper", "d_model": d_model, "encoder_layers": layers,
                      "encoder_attention_heads": heads, "encoder_ffn_dim": 2 * d_model, "num_mel_bins": 80,
                      "decoder_layers": 1, "decoder_attention_heads": heads, "decoder_ffn_dim": 2 * d_model,
                      "vocab_size": 64, "pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0,
                      "decoder_start_token_id": 0},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": hidden_size,
                     "intermediate_size": 2 * hidden_size, "num_hidden_layers": layers, "num_attention_heads": heads,
                     "num_key_value_heads": max(1, heads // 2), "max_position_embeddings": 2048,
                     "tie_word_embeddings": False, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.eos_token_id},
        audio_token_id=processor.audio_token_id, adapter_hidden_size=int(adapter_width * hidden_size),
        adapter_bias=adapter_bias, audio_token_rounding=audio_token_rounding)
    torch.manual_seed(seed)
    return JaSpeechLLMForConditionalGeneration(config), processor
