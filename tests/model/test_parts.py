"""Assembling JaSpeechLLM from pretrained parts (tiny local Whisper and Llama checkpoints)."""
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperFeatureExtractor, WhisperModel

from jaspeech.model import from_pretrained_parts
from tests.model.tiny import llmjp_like_tokenizer


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    path = tmp_path_factory.mktemp("whisper")
    torch.manual_seed(0)
    WhisperModel(WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                               decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                               vocab_size=100, pad_token_id=0, bos_token_id=0, eos_token_id=0,
                               decoder_start_token_id=0)).save_pretrained(path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(path)
    return path


def llm(path, padding: int):
    tok = llmjp_like_tokenizer()  # no audio token yet
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok) + padding, hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                 tie_word_embeddings=False)).save_pretrained(path)
    tok.save_pretrained(path)
    return len(tok)


def test_from_pretrained_parts_assembles_encoder_llm_and_processor(whisper, tmp_path):
    n = llm(tmp_path / "llm", padding=0)
    model, processor = from_pretrained_parts(str(whisper), str(tmp_path / "llm"))
    assert torch.equal(model.encoder.conv1.weight, WhisperModel.from_pretrained(whisper).encoder.conv1.weight)
    assert model.config.audio_token_id == processor.audio_token_id == n  # a new token, one row added
    assert model.get_input_embeddings().weight.shape[0] == n + 1 == len(processor.tokenizer)
    assert model.adapter.fc1.out_features == 32 and model.adapter.fc1.bias is not None  # ours: H wide, with bias
    assert processor.prompt_format == "chat" and model.config.audio_token_rounding == "ceil"


def test_a_padded_embedding_table_is_never_shrunk_and_the_original_choices(whisper, tmp_path):
    """LLM-jp pads its tables past the tokenizer's length; resizing to len(tokenizer) would cut rows off."""
    n = llm(tmp_path / "llm", padding=64)
    saved = LlamaForCausalLM.from_pretrained(tmp_path / "llm")
    model, processor = from_pretrained_parts(str(whisper), str(tmp_path / "llm"), adapter_width=2,
                                             adapter_bias=False, audio_token_rounding="floor",
                                             prompt_format="original-v2")
    assert model.config.audio_token_id == n and len(processor.tokenizer) == n + 1
    assert torch.equal(model.get_input_embeddings().weight, saved.get_input_embeddings().weight)  # n + 64 rows kept
    assert torch.equal(model.language_model.lm_head.weight, saved.lm_head.weight)
    assert model.adapter.fc1.out_features == 64 and model.adapter.fc1.bias is None and model.adapter.fc2.bias is None
    assert processor.prompt_format == "original-v2" and processor.audio_token_rounding == "floor"
