"""`jaspeech convert-original`: a tiny model in the original's key layout converts to the same logits.

`OriginalLayout` below is written here from the original's model.py (Atotti/ja-speech-llm): the same module
names (`encoder`, `decoder`, `adapter.linear1/2`), its adapter (AvgPool1d(4), Linear 2H without bias, GELU,
Linear) and its `embed` (audio length from the mel attention mask, `// 4`; audio inserted after
`<|reserved_343|>`, or prepended when the prompt has no marker, as in v1).
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from jaspeech.cli import main
from jaspeech.model import JaSpeechLLMForConditionalGeneration, JaSpeechLLMProcessor
from jaspeech.model.prompts import SPOKEN_INSTRUCTION
from tests.model.tiny import CORPUS, llmjp_like_tokenizer

V2 = "あなたは音声を理解できるAIアシスタントです。\n\n<|reserved_343|><|reserved_342|>### 指示:\n{}\n\n### 応答:\n"
V1 = "### 指示:\n{}\n\n### 応答:\n"


class OriginalAdapter(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.pool = nn.AvgPool1d(4)
        self.linear1 = nn.Linear(d, 2 * h, bias=False)
        self.linear2 = nn.Linear(2 * h, h, bias=False)

    def forward(self, x):
        x = self.pool(x.permute(0, 2, 1)).permute(0, 2, 1)
        return self.linear2(F.gelu(self.linear1(x)))


class OriginalLayout(nn.Module):
    def __init__(self, whisper: WhisperConfig, llama: LlamaConfig):
        super().__init__()
        self.encoder = WhisperEncoder(whisper)
        self.decoder = LlamaForCausalLM(llama)
        self.adapter = OriginalAdapter(whisper.d_model, llama.hidden_size)

    def logits(self, input_ids, features, mel_mask, marker_id):
        embeds = self.decoder.get_input_embeddings()(input_ids)
        audio = self.adapter(self.encoder(features)[0])
        n = int(self.encoder._get_feat_extract_output_lengths(mel_mask.sum(dim=1, keepdim=True))) // 4
        audio = audio[:, :n]
        where = (input_ids[0] == marker_id).nonzero()
        if len(where):
            at = int(where[0]) + 1
            embeds = torch.cat([embeds[:, :at], audio, embeds[:, at:]], dim=1)
        else:
            embeds = torch.cat([audio, embeds], dim=1)
        return self.decoder(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long)).logits


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    root = tmp_path_factory.mktemp("original")
    tok = llmjp_like_tokenizer(CORPUS + [V2, V1, SPOKEN_INSTRUCTION])
    tok.save_pretrained(root / "llm")
    whisper = WhisperConfig(d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64,
                            decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64, num_mel_bins=80,
                            vocab_size=100, pad_token_id=0, bos_token_id=0, eos_token_id=0, decoder_start_token_id=0)
    whisper.save_pretrained(root / "whisper")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(root / "whisper")
    # LLM-jp's tables are padded past the tokenizer's length: the conversion must keep every row
    llama = LlamaConfig(vocab_size=len(tok) + 13, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = OriginalLayout(whisper, llama).eval()
    src = root / "LlamaForSpeechLM-ja-step100"
    src.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, src / "model.safetensors")
    (src / "config.json").write_text(json.dumps({
        "model_type": "llama_for_speech_lm", "architectures": ["LlamaForSpeechLM"], "encoder_id": str(root / "whisper"),
        "decoder_id": str(root / "llm"), "decoder_config": llama.to_dict(), "adapter_kernel_size": 4,
        "adapter_linear_bias": False, "encoder_type": "whisper"}))
    return root, src, model, tok


def audio(seconds, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32)


@pytest.mark.parametrize("prompt_format", ["original-v2", "original-v1"])
def test_converted_checkpoint_gives_the_original_logits(original, tmp_path, prompt_format, capsys):
    root, src, reference, tok = original
    out = tmp_path / "converted"
    assert main(["convert-original", str(src), str(out), "--prompt-format", prompt_format]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)
    model = JaSpeechLLMForConditionalGeneration.from_pretrained(out).eval()
    processor = JaSpeechLLMProcessor.from_pretrained(out)
    assert model.get_input_embeddings().weight.shape[0] == len(tok) + 13  # padded table kept, not shrunk
    assert model.config.adapter_hidden_size == 96 and model.adapter.fc1.bias is None
    for seconds in (1.0, 4.61):
        clip = audio(seconds)
        prompt = processor.render(processor.task_messages("asr_ja"), add_generation_prompt=True)
        ours = model(**processor(text=[prompt], audio=[clip])).logits
        template = V2 if prompt_format == "original-v2" else V1
        ids = tok(template.format("音声を書き起こしてください。"), return_tensors="pt")["input_ids"]
        fe = WhisperFeatureExtractor.from_pretrained(root / "whisper")(clip, sampling_rate=16000,
                                                                       return_attention_mask=True, return_tensors="pt")
        with torch.no_grad():
            expected = reference.logits(ids, fe.input_features, fe.attention_mask,
                                        tok.convert_tokens_to_ids("<|reserved_343|>"))
        assert ours.shape == expected.shape
        torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)


def test_what_cannot_be_converted_is_refused_with_the_way_out(original, tmp_path, capsys):
    _, src, _, _ = original
    lora = tmp_path / "lora-run"
    (lora / "lora").mkdir(parents=True)
    (lora / "config.json").write_text((src / "config.json").read_text())
    assert main(["convert-original", str(lora), str(tmp_path / "x")]) == 2
    assert "LoRA-only run" in capsys.readouterr().err
    other = tmp_path / "afwhisper"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({**json.loads((src / "config.json").read_text()),
                                                   "encoder_type": "afwhisper"}))
    assert main(["convert-original", str(other), str(tmp_path / "y")]) == 2
    assert "cannot be converted" in capsys.readouterr().err


# finetune.py / validate.py `build_multiturn_gen_prompt` for two spoken turns, the first answered
V2_DIALOGUE = ("あなたは音声を理解できるAIアシスタントです。\n\n<|reserved_343|><|reserved_342|>### 指示:\n{i}\n\n"
               "### 応答:\n{a}\n\n<|reserved_343|><|reserved_342|>### 指示:\n{i}\n\n### 応答:\n")


def original_dialogue_logits(reference, ids, clips, feature_extractor, marker_id):
    """The original's multi-turn path (`embed(audios=...)` with `_encode_single_audio`): each clip's features
    over the feature extractor's padded 30 s window, encoded and adapted whole (no trimming), inserted after
    its `<|reserved_343|>`, right to left. Returns the logits and each clip's number of embeddings."""
    embeds = reference.decoder.get_input_embeddings()(ids)[0]
    markers = (ids[0] == marker_id).nonzero()[:, 0].tolist()
    counts = []
    for clip, at in reversed(list(zip(clips, markers))):
        features = feature_extractor(clip, sampling_rate=16000, return_tensors="pt").input_features
        audio = reference.adapter(reference.encoder(features)[0])[0]
        counts.insert(0, audio.shape[0])
        embeds = torch.cat([embeds[: at + 1], audio, embeds[at + 1:]])
    mask = torch.ones(1, embeds.shape[0], dtype=torch.long)
    return reference.decoder(inputs_embeds=embeds[None], attention_mask=mask).logits, counts


def test_converted_checkpoint_hears_a_two_turn_dialogue_as_the_original(original, tmp_path):
    """Issue 25: in a dialogue the original fed every clip's whole 30 s window (375 embeddings), not its length."""
    root, src, reference, tok = original
    out = tmp_path / "converted"
    assert main(["convert-original", str(src), str(out)]) == 0
    assert json.loads((out / "processor_config.json").read_text())["multi_turn_audio"] == "full_window"
    model = JaSpeechLLMForConditionalGeneration.from_pretrained(out).eval()
    processor = JaSpeechLLMProcessor.from_pretrained(out)
    clips = [audio(1.0), audio(7.3, seed=1)]  # different lengths: trimmed they would be 12 and 91 tokens
    turns = [{"role": "user", "text": "q1", "spoken": True}, {"role": "assistant", "text": "今日はいい天気です。"},
             {"role": "user", "text": "q2", "spoken": True}]
    prompt = processor.render(processor.task_messages("instruction", turns), add_generation_prompt=True)
    inputs = processor(text=[prompt], audio=clips)
    ids = tok(V2_DIALOGUE.format(i=SPOKEN_INSTRUCTION, a="今日はいい天気です。"), return_tensors="pt")["input_ids"]
    start, end = (tok.convert_tokens_to_ids(t) for t in ("<|reserved_343|>", "<|reserved_342|>"))
    fe = WhisperFeatureExtractor.from_pretrained(root / "whisper")
    with torch.no_grad():
        expected, counts = original_dialogue_logits(reference, ids, clips, fe, start)
        ours = model(**inputs).logits
    assert counts == [375, 375]
    got = inputs["input_ids"][0].tolist()
    assert len(got) == ids.shape[1] + 750  # the prompt length
    runs = [got[got.index(start, i) + 1: got.index(end, got.index(start, i))] for i in (0, got.index(end) + 1)]
    assert [len(r) for r in runs] == counts and all(set(r) == {processor.audio_token_id} for r in runs)
    assert [i for i in got if i != processor.audio_token_id] == ids[0].tolist()
    assert ours.shape == expected.shape
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    # a single-turn prompt of the same checkpoint keeps the original's trimmed length (floor: 91 for 7.3 s)
    single = processor.render(processor.task_messages("asr_ja"), add_generation_prompt=True)
    assert int((processor(text=[single], audio=clips[1:])["input_ids"] == processor.audio_token_id).sum()) == 91
