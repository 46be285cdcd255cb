"""JaSpeechLLM in transformers style, with tiny random configs built here."""
import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoProcessor

from jaspeech.model import JaSpeechLLMConfig, JaSpeechLLMForConditionalGeneration, audio_tokens_for
from tests.model.tiny import tiny_model_and_processor


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return tiny_model_and_processor()


def clip(seconds, sr=16000, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * sr)) * 0.1).astype(np.float32)


def test_placeholder_expansion_counts_and_long_audio(tiny):
    _, processor = tiny
    assert audio_tokens_for(16000) == 13 and audio_tokens_for(480000) == 375 and audio_tokens_for(1) == 1
    text = [f"{processor.audio_token}\n音声を書き起こしてください。", f"二つ{processor.audio_token}です"]
    batch = processor(text=text, audio=[clip(1.0), (clip(45.0, sr=24000), 24000)])
    counts = (batch["input_ids"] == processor.audio_token_id).sum(dim=1).tolist()
    assert counts == [13, 375 + audio_tokens_for(15 * 16000)]  # 45 s: two windows, nothing truncated
    assert batch["input_features"].shape == (3, 80, 3000)
    assert batch["audio_chunk_samples"].tolist() == [16000, 480000, 240000]
    with pytest.raises(ValueError, match="placeholders"):
        processor(text=["no audio here"], audio=[clip(1.0)])


def test_audio_is_scattered_into_the_placeholders_and_masked_from_labels(tiny):
    model, processor = tiny
    ex = processor.training_example(processor.task_messages("asr_ja"), "今日はいい天気です。", [clip(2.0)])
    assert (ex["labels"][ex["input_ids"] == processor.audio_token_id] == -100).all()
    assert (ex["labels"] != -100).sum() >= 2  # the response and its end of turn are trained
    embeds = model.merge_audio(ex["input_ids"], ex["input_features"], ex["audio_chunk_samples"])
    audio = model.encode_audio(ex["input_features"], ex["audio_chunk_samples"])
    mask = ex["input_ids"][0] == processor.audio_token_id
    assert torch.equal(embeds[0, mask], audio) and audio.shape == (audio_tokens_for(32000), 64)
    text_pos = ~mask
    assert torch.equal(embeds[0, text_pos], model.get_input_embeddings()(ex["input_ids"])[0, text_pos])
    out = model(**ex)
    assert torch.isfinite(out.loss) and out.logits.shape[:2] == ex["input_ids"].shape
    labels = ex["labels"].clone()
    labels[ex["input_ids"] == processor.audio_token_id] = 5  # even if a caller forgets, audio is never a target
    assert torch.allclose(model(**{**ex, "labels": labels}).loss, out.loss)


def test_generate_with_audio(tiny):
    model, processor = tiny
    prompt = processor.render(processor.task_messages("asr_ja"), add_generation_prompt=True)
    inputs = processor(text=[prompt, prompt], audio=[clip(1.0), clip(3.0, seed=1)])
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False, pad_token_id=processor.tokenizer.pad_token_id)
    assert out.shape[0] == 2 and out.shape[1] <= 4
    assert all(isinstance(t, str) for t in processor.batch_decode(out, skip_special_tokens=True))


def test_save_and_load_through_the_auto_classes(tiny, tmp_path):
    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, JaSpeechLLMConfig) and config.model_type == "jaspeech_llm" and config.pooling == 4
    for auto in (AutoModel, AutoModelForCausalLM):
        loaded = auto.from_pretrained(tmp_path)
        assert isinstance(loaded, JaSpeechLLMForConditionalGeneration)
        for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
            assert torch.equal(a, b), name
    loaded_processor = AutoProcessor.from_pretrained(tmp_path)
    assert loaded_processor.audio_token_id == processor.audio_token_id
    batch = processor(text=[f"{processor.audio_token}x"], audio=[clip(1.0)])
    again = loaded_processor(text=[f"{processor.audio_token}x"], audio=[clip(1.0)])
    assert torch.equal(batch["input_ids"], again["input_ids"])
    assert torch.allclose(batch["input_features"], again["input_features"])


def test_task_prompts(tiny):
    _, processor = tiny
    for task in ("asr_ja", "asr_en", "caption"):
        assert processor.task_messages(task)[0]["content"].startswith(processor.audio_token)
    turns = [{"role": "user", "text": "質問", "spoken": True}, {"role": "assistant", "text": "答え"},
             {"role": "user", "text": "次", "spoken": True}]
    messages = processor.task_messages("instruction", turns)
    assert [m["content"] for m in messages] == [processor.audio_token, "答え", processor.audio_token]
    with pytest.raises(ValueError):
        processor.task_messages("translate")


def test_a_45_second_spoken_turn_is_two_windows_end_to_end(tiny):
    """A 45 s user turn through the processor (30 s + 15 s windows) and the model, nothing truncated."""
    model, processor = tiny
    turns = [{"role": "user", "text": "長い質問", "spoken": True}]
    ex = processor.training_example(processor.task_messages("instruction", turns), "答えです。", [(clip(45.0, sr=24000), 24000)])
    assert ex["input_features"].shape[0] == 2 and ex["audio_chunk_samples"].tolist() == [480000, 240000]
    n = int((ex["input_ids"] == processor.audio_token_id).sum())
    assert n == audio_tokens_for(480000) + audio_tokens_for(240000) == 375 + 188
    audio = model.encode_audio(ex["input_features"], ex["audio_chunk_samples"])
    assert audio.shape[0] == n
    out = model(**ex)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.adapter.fc1.weight.grad.abs().sum() > 0  # both windows reach the adapter
    model.zero_grad()
