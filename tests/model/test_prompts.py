"""Prompt formats: the original ja-speech-llm format renders exactly as the original code builds it.

The expected token sequences below are built the way the original's collators and model build them
(src/speech_llm_ja/train.py, finetune.py, model.py, tools/eval_jsut.py of Atotti/ja-speech-llm): the
prompt string tokenized WITH the tokenizer's special tokens (LLM-jp: a leading `<s>`), then the audio
embeddings inserted after `<|reserved_343|>` (v2) or before everything (v1), as many as Whisper's
`_get_feat_extract_output_lengths` of the feature extractor's attention mask, divided by 4 (floor).
"""
import numpy as np
import pytest
from transformers import WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from jaspeech.model.prompts import SPOKEN_INSTRUCTION
from tests.model.tiny import CORPUS, llmjp_like_tokenizer, tiny_model_and_processor

V2_ASR = "あなたは音声を理解できるAIアシスタントです。\n\n<|reserved_343|><|reserved_342|>### 指示:\n{}\n\n### 応答:\n{}<|eos|>"
TEXTS = CORPUS + [V2_ASR, SPOKEN_INSTRUCTION, "あなたは親切なAIアシスタントです。"]


@pytest.fixture(scope="module")
def tokenizer():
    return llmjp_like_tokenizer(TEXTS)


def processor_for(tokenizer, prompt_format):
    return tiny_model_and_processor(tokenizer=tokenizer, prompt_format=prompt_format, audio_token_rounding="floor")[1]


def original_audio_tokens(samples: np.ndarray) -> int:
    """The original's count: encoder output length of the mel attention mask, // adapter_kernel_size (4)."""
    mask = WhisperFeatureExtractor(feature_size=80)(samples, sampling_rate=16000, return_attention_mask=True,
                                                    return_tensors="pt").attention_mask
    encoder = WhisperEncoder(WhisperConfig(d_model=8, encoder_layers=1, encoder_attention_heads=1, encoder_ffn_dim=8))
    return int(encoder._get_feat_extract_output_lengths(mask.sum(dim=1, keepdim=True))) // 4


def clip(seconds, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32)


@pytest.mark.parametrize("seconds", [1.0, 2.37, 29.9])
def test_original_v2_asr_prompt_is_token_for_token_the_originals(tokenizer, seconds):
    processor = processor_for(tokenizer, "original-v2")
    audio = clip(seconds)
    ex = processor.training_example(processor.task_messages("asr_ja"), "今日はいい天気です。", [audio], loss_on="all")
    ids = tokenizer(V2_ASR.format("音声を書き起こしてください。", "今日はいい天気です。"))["input_ids"]
    assert ids[0] == tokenizer.bos_token_id  # the original tokenized with special tokens on
    at = ids.index(tokenizer.convert_tokens_to_ids("<|reserved_343|>")) + 1
    n = original_audio_tokens(audio)
    expected = ids[:at] + [processor.audio_token_id] * n + ids[at:]
    assert ex["input_ids"][0].tolist() == expected
    # the original's labels: every text token (its `labels = input_ids`), -100 on the audio
    assert ex["labels"][0].tolist() == ids[:at] + [-100] * n + ids[at:]
    prompt = processor.render(processor.task_messages("asr_ja"), add_generation_prompt=True)
    generation = processor(text=[prompt], audio=[audio])["input_ids"][0].tolist()
    gen_ids = tokenizer(V2_ASR.format("音声を書き起こしてください。", "")[: -len("<|eos|>")])["input_ids"]
    assert generation == gen_ids[:at] + [processor.audio_token_id] * n + gen_ids[at:]


def test_original_v1_puts_the_audio_before_bos_as_the_published_cer_checkpoints_did(tokenizer):
    processor = processor_for(tokenizer, "original-v1")
    audio = clip(3.3)
    prompt = processor.render(processor.task_messages("asr_ja"), add_generation_prompt=True)
    got = processor(text=[prompt], audio=[audio])["input_ids"][0].tolist()
    # tools/eval_jsut.py: prompt without markers, so model.embed prepends the audio to the tokenized prompt
    ids = tokenizer("### 指示:\n音声を書き起こしてください。\n\n### 応答:\n")["input_ids"]
    assert got == [processor.audio_token_id] * original_audio_tokens(audio) + ids


def test_original_v2_multi_turn_and_text_only_rows(tokenizer):
    processor = processor_for(tokenizer, "original-v2")
    turns = [{"role": "user", "text": "q1", "spoken": True}, {"role": "assistant", "text": "答えです。"},
             {"role": "user", "text": "q2", "spoken": True}]
    ex = processor.training_example(processor.task_messages("instruction", turns), "次です。", [clip(1.0), clip(2.0)])
    text = tokenizer.decode([i for i in ex["input_ids"][0].tolist() if i != processor.audio_token_id])
    # finetune.py build_multiturn_prompt
    turn = "<|reserved_343|><|reserved_342|>### 指示:\n" + SPOKEN_INSTRUCTION + "\n\n### 応答:\n"
    assert text == "<s>あなたは音声を理解できるAIアシスタントです。\n\n" + turn + "答えです。\n\n" + turn + "次です。<|eos|>"
    labelled = tokenizer.decode([i for i in ex["labels"][0].tolist() if i != -100])
    assert labelled == "次です。<|eos|>"  # ours: only the last response is trained (loss_on: response)
    text_only = processor.training_example(processor.task_messages("text", [{"role": "user", "text": "こんにちは"}]),
                                           "はい。", [])
    assert tokenizer.decode(text_only["input_ids"][0]) == (
        "<s>あなたは親切なAIアシスタントです。\n\n### 指示:\nこんにちは\n\n### 応答:\nはい。<|eos|>")
    assert "input_features" not in text_only


def test_chat_format_and_the_task_instructions_of_each_format(tokenizer):
    _, chat = tiny_model_and_processor()
    assert chat.task_messages("asr_ja") == [{"role": "user", "content": "<|audio|>\n音声を書き起こしてください。"}]
    v2 = processor_for(tokenizer, "original-v2")
    assert v2.task_messages("caption")[1]["content"] == "<|audio|>音声を説明してください。"
    assert v2.task_messages("asr_en")[1]["content"] == "<|audio|>Transcribe the audio."
    v1 = processor_for(tokenizer, "original-v1")
    with pytest.raises(ValueError, match="original-v1 puts one clip"):
        v1.render(v1.task_messages("instruction", [{"role": "user", "spoken": True}, {"role": "assistant", "text": "a"},
                                                   {"role": "user", "spoken": True}]), add_generation_prompt=True)
    with pytest.raises(ValueError, match="prompt_format must be one of"):
        processor_for(tokenizer, "alpaca")


def audio_runs(processor, ids) -> list[int]:
    """The lengths of the runs of audio placeholders in a row, in order."""
    runs, n = [], 0
    for i in ids + [None]:
        if i == processor.audio_token_id:
            n += 1
        elif n:
            runs, n = runs + [n], 0
    return runs


def test_multi_turn_audio_full_window_is_the_originals_dialogue_rule_and_round_trips(tokenizer, tmp_path):
    from jaspeech.model import JaSpeechLLMProcessor

    processor = processor_for(tokenizer, "original-v2")
    assert processor.multi_turn_audio == "trimmed"  # ours, and every recipe's unless asked
    spoken = [{"role": "user", "text": "q1", "spoken": True}, {"role": "assistant", "text": "答えです。"},
              {"role": "user", "text": "q2", "spoken": True}]
    dialogue = processor.render(processor.task_messages("instruction", spoken), add_generation_prompt=True)
    clips = [clip(1.0), clip(7.3, seed=1)]
    assert audio_runs(processor, processor(text=[dialogue], audio=clips)["input_ids"][0].tolist()) == [12, 91]
    processor.multi_turn_audio = "full_window"
    processor.save_pretrained(tmp_path)
    loaded = JaSpeechLLMProcessor.from_pretrained(tmp_path)
    assert loaded.multi_turn_audio == "full_window"
    batch = loaded(text=[dialogue], audio=clips)
    assert audio_runs(loaded, batch["input_ids"][0].tolist()) == [375, 375]
    assert batch["audio_chunk_samples"].tolist() == [480000, 480000]
    # a text turn, then a spoken one: two user turns, so the one clip is heard whole (the original's demo)
    mixed = [{"role": "user", "text": "こんにちは"}, {"role": "assistant", "text": "はい。"},
             {"role": "user", "text": "q", "spoken": True}]
    prompt = loaded.render(loaded.task_messages("instruction", mixed), add_generation_prompt=True)
    assert audio_runs(loaded, loaded(text=[prompt], audio=clips[:1])["input_ids"][0].tolist()) == [375]
    # single-turn prompts stay trimmed; rows of one call are decided each on its own; an override decides all
    single = loaded.render(loaded.task_messages("asr_ja"), add_generation_prompt=True)
    two_rows = loaded(text=[single, dialogue], audio=[clips[1], clips[0], clips[1]])["input_ids"].tolist()
    assert [audio_runs(loaded, r) for r in two_rows] == [[91], [375, 375]]
    assert audio_runs(loaded, loaded(text=[single], audio=clips[1:], full_window=True)["input_ids"][0].tolist()) == [375]
    assert audio_runs(loaded, loaded(text=[dialogue], audio=clips, full_window=False)["input_ids"][0].tolist()) == [12, 91]
    # over 30 s: every window whole (the original truncated to 30 s; it never trained on such a clip)
    long = loaded(text=[dialogue], audio=[clips[0], clip(45.0)])
    assert audio_runs(loaded, long["input_ids"][0].tolist()) == [375, 750]
    with pytest.raises(ValueError, match="not for chat"):
        JaSpeechLLMProcessor(loaded.feature_extractor, tokenizer, prompt_format="chat", multi_turn_audio="full_window")
    with pytest.raises(ValueError, match="multi_turn_audio must be one of"):
        JaSpeechLLMProcessor(loaded.feature_extractor, tokenizer, prompt_format="original-v2", multi_turn_audio="whole")
