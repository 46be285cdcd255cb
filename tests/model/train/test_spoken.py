"""A `jaspeech build spoken` folder trains `task=instruction` with the existing reader; the system turn is the
system message in the chat format and is dropped by the original formats, which cannot carry it."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from jaspeech.cli import main
from jaspeech.model.train.data import Counters, iter_source
from tests.model.tiny import tiny_model_and_processor

TINY = Path(__file__).resolve().parents[3] / "configs" / "train" / "tiny-asr.yaml"
SYSTEM = "あなたは丁寧な日本語で答えるアシスタントです。"  # row 0 of the bundled messages sample


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("spoken-train") / "corpus"
    assert main(["build", "spoken", "--config", "chat", "--input", "sample", "--format", "messages", "--limit", "3",
                 "--license", "apache-2.0", "--out", str(out), "--tts", "openjtalk", "--asr", "none", "--quiet"]) == 0
    return out


def test_the_reader_hears_the_user_turns_and_puts_the_system_turn_first(folder):
    examples = list(iter_source({"kind": "jaspeech-sft", "path": str(folder), "config": "chat"}, Counters()))
    assert len(examples) == 3 and {e.task for e in examples} == {"instruction"}
    first, multi = examples[0], examples[1]
    assert [t["role"] for t in first.turns] == ["system", "user"] and first.turns[0] == {
        "role": "system", "text": SYSTEM, "spoken": False}
    assert len(first.audio) == 1 and first.response.startswith("ご飯と味噌汁")
    assert [(t["role"], t["spoken"]) for t in multi.turns] == [("user", True), ("assistant", False), ("user", True)]
    assert len(multi.audio) == 2  # every user turn heard, in order

    _, chat = tiny_model_and_processor()
    prompt = chat.render(chat.task_messages("instruction", first.turns), add_generation_prompt=True)
    assert prompt.index(SYSTEM) < prompt.index(chat.audio_token)  # the system message, before the heard turn
    _, original = tiny_model_and_processor(prompt_format="original-v2")
    prompt = original.render(original.task_messages("instruction", first.turns), add_generation_prompt=True)
    assert SYSTEM not in prompt and "### 指示:" in prompt  # the original's fixed system line only


def test_jaspeech_train_runs_on_the_built_folder(folder, tmp_path, capsys):
    source = json.dumps([{"kind": "jaspeech-sft", "path": str(folder), "config": "chat"}])
    assert main(["train", str(TINY), "--set", f"data.sources={source}", "--set", f"output_dir={tmp_path / 'run'}",
                 "--set", "training.max_steps=2", "--set", "training.per_device_batch_size=2",
                 "--set", "eval.examples=0", "--set", "model.tokenizer_examples=6"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["steps"] == 2 and (tmp_path / "run" / "final" / "config.json").exists()
    assert math.isfinite(result["first_loss"]) and math.isfinite(result["last_loss"])
    assert result["skipped_undecodable"] == 0 and result["skipped_too_long"] == 0
