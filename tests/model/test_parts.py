"""Assembling JaSpeechLLM from pretrained parts (tiny local Whisper and Llama checkpoints)."""
import torch
from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperModel


def test_from_pretrained_parts_assembles_encoder_llm_and_processor(tmp_path):
    from tests.model.tiny import tiny_tokenizer

    torch.manual_seed(0)
    WhisperModel(WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                               decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                               vocab_size=100, pad_token_id=0, bos_token_id=0, eos_token_id=0,
                               decoder_start_token_id=0)).save_pretrained(tmp_path / "whisper")
    from transformers import WhisperFeatureExtractor

    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path / "whisper")
    tok = tiny_tokenizer()
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(tmp_path / "llm")
    tok.save_pretrained(tmp_path / "llm")
    from jaspeech.model import from_pretrained_parts

    model, processor = from_pretrained_parts(str(tmp_path / "whisper"), str(tmp_path / "llm"))
    whisper = WhisperModel.from_pretrained(tmp_path / "whisper")
    assert torch.equal(model.encoder.conv1.weight, whisper.encoder.conv1.weight)  # pretrained encoder kept
    assert model.config.audio_token_id == processor.audio_token_id
    assert model.get_input_embeddings().weight.shape[0] == len(processor.tokenizer)
    assert model.adapter.fc2.out_features == 32
