"""Tiny JaSpeechLLM parts built in tests: a BPE tokenizer trained here, a small random Whisper encoder and LLM."""
from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, WhisperFeatureExtractor

from jaspeech.model import JaSpeechLLMConfig, JaSpeechLLMForConditionalGeneration, JaSpeechLLMProcessor

CORPUS = ["今日はいい天気です。", "明日の会議は午後二時からです。", "駅まで歩いて十分かかります。",
          "音声を書き起こしてください。", "user assistant", "Transcribe the audio into English text."]


def tiny_tokenizer(texts=CORPUS, vocab_size: int = 600) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|audio|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def tiny_model_and_processor(tokenizer=None, d_model: int = 32, hidden: int = 64, layers: int = 2):
    tokenizer = tokenizer or tiny_tokenizer()
    processor = JaSpeechLLMProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer)
    config = JaSpeechLLMConfig(
        audio_config={"model_type": "whisper", "d_model": d_model, "encoder_layers": layers, "encoder_attention_heads": 2,
                      "encoder_ffn_dim": 2 * d_model, "num_mel_bins": 80, "decoder_layers": 1,
                      "decoder_attention_heads": 2, "decoder_ffn_dim": 2 * d_model, "vocab_size": 100,
                      "pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0, "decoder_start_token_id": 0},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": hidden,
                     "intermediate_size": 2 * hidden, "num_hidden_layers": layers, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 1024, "tie_word_embeddings": False,
                     "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.eos_token_id},
        audio_token_id=processor.audio_token_id,
    )
    return JaSpeechLLMForConditionalGeneration(config), processor
