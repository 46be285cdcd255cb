"""The one inference loader of eval asr and ADU-Bench, on a tiny random JaSpeechLLM saved here."""
import json

import numpy as np
import pytest
import torch

from jaspeech.model.eval.checkpoint import is_jaspeech_checkpoint, load_checkpoint
from tests.model.tiny import tiny_model_and_processor


def test_load_checkpoint_for_inference(tmp_path):
    torch.manual_seed(0)
    model, processor = tiny_model_and_processor()
    model.save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    assert is_jaspeech_checkpoint(tmp_path / "ckpt")

    ckpt = load_checkpoint(tmp_path / "ckpt", device="cpu")
    assert not ckpt.model.training and ckpt.dtype == torch.float32 and ckpt.device == "cpu"
    assert ckpt.processor.tokenizer.padding_side == "left"  # batched prompts are continued at their end
    loaded = dict(ckpt.model.named_parameters())
    assert all(torch.equal(p, loaded[name]) for name, p in model.named_parameters())

    clips = [(np.zeros(8000, np.float32), 16000), (0.1 * np.ones(24000, np.float32), 16000)]
    texts = ckpt.generate(ckpt.prompt("asr_ja"), clips, max_new_tokens=4)
    assert len(texts) == 2 and all(isinstance(t, str) and t == t.strip() for t in texts)


def test_not_a_checkpoint_is_refused_with_what_to_pass(tmp_path):
    (tmp_path / "whisper").mkdir()
    (tmp_path / "whisper" / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    for folder in (tmp_path / "whisper", tmp_path / "broken", tmp_path / "missing"):
        assert not is_jaspeech_checkpoint(folder)
    with pytest.raises(FileNotFoundError, match="not a JaSpeechLLM checkpoint folder .* e.g. runs/sft/final"):
        load_checkpoint(tmp_path / "whisper")
