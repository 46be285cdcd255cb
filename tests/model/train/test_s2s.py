"""Speech-to-speech rows reach the model: the readers and the processor accept spoken assistant turns.

The corpora are built here with the fast tone TTS (no round trip); the model still predicts the response
text, and the assistant's audio travels with the example (`response_audio`) for S2S training a user adds.
"""
from __future__ import annotations

import io

import pytest
import soundfile as sf
import torch

from jaspeech.cli import main
from jaspeech.model.train.data import Counters, iter_source
from tests.model.tiny import tiny_model_and_processor


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("s2s") / "jaspeech-s2s-audio"
    for speak in ("both", "assistant"):
        assert main(["build", "jaspeech-sft-audio", "--config", "magpie", "--speak", speak, "--input", "sample",
                     "--limit", "4", "--tts", "tone", "--asr", "none", "--out", str(out), "--quiet"]) == 0
    return str(out)


def test_an_s2s_row_goes_through_the_reader_and_the_processor(corpus):
    examples = list(iter_source({"kind": "jaspeech-sft", "path": corpus, "config": "magpie-s2s"}, Counters()))
    assert examples and all(e.task == "instruction" for e in examples)
    ex = examples[0]
    assert [t["spoken"] for t in ex.turns] == [True] and len(ex.audio) == 1  # the user's speech is the input
    assert len(ex.response_audio) == 1  # the assistant's speech rides along
    samples, sr = sf.read(io.BytesIO(ex.response_audio[0]["bytes"]))
    assert samples.size > 0 and sr == 16000
    model, processor = tiny_model_and_processor()
    batch = processor.training_example(processor.task_messages("instruction", ex.turns), ex.response, ex.audio)
    assert int((batch["input_ids"] == processor.audio_token_id).sum()) > 0
    assert int((batch["labels"] != -100).sum()) > 0  # the response text is what is learnt
    with torch.no_grad():
        loss = model(**batch).loss
    assert torch.isfinite(loss)


def test_a_spoken_response_row_has_a_text_instruction(corpus):
    examples = list(iter_source({"kind": "jaspeech-sft", "path": corpus, "config": "magpie-spoken-response"},
                                Counters()))
    assert examples
    ex = examples[0]
    assert [t["spoken"] for t in ex.turns] == [False] and ex.audio == [] and len(ex.response_audio) == 1
    _, processor = tiny_model_and_processor()
    batch = processor.training_example(processor.task_messages("instruction", ex.turns), ex.response, ex.audio)
    assert int((batch["input_ids"] == processor.audio_token_id).sum()) == 0 and "input_features" not in batch
