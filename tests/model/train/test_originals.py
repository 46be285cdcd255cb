"""The original ja-speech-llm corpora, read by our source kinds (schema detected from the columns).

Each source is a local folder written with `datasets` in exactly the published schema (see originals.py);
the same task examples come out as for our own corpora.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from jaspeech.model.train.data import Counters, iter_source
from tests.model.train import originals


def examples(spec):
    counters = Counters()
    return list(iter_source(spec, counters)), counters


def test_spoken_magpie_schema_gives_instruction_and_asr_examples(tmp_path):
    path = originals.magpie(tmp_path / "magpie", [("天気を教えて", originals.flac(1.0), "晴れです。"),
                                                  ("長い", originals.flac(31.0), "x")])
    got, counters = examples({"kind": "jaspeech-sft", "path": path})
    assert len(got) == 1 and counters.too_long == 1
    e = got[0]
    assert e.task == "instruction" and e.response == "晴れです。" and len(e.audio) == 1
    assert e.turns == [{"role": "user", "text": "天気を教えて", "spoken": True}]
    assert e.audio[0][1] == 16000 and e.audio[0][0].shape == (16000,)
    asr, _ = examples({"kind": "jaspeech-sft", "path": path, "task": "asr_ja"})
    assert [(a.task, a.response) for a in asr] == [("asr_ja", "天気を教えて")]


def test_spoken_multiturn_schema_gives_two_spoken_turns(tmp_path):
    path = originals.multiturn(tmp_path / "mt", n=2)
    got, _ = examples({"kind": "jaspeech-sft", "path": path})
    assert [e.response for e in got] == ["次の答え0", "次の答え1"]
    assert [t["role"] for t in got[0].turns] == ["user", "assistant", "user"]
    assert got[0].turns[1]["text"] == "答え0" and [a[0].size for a in got[1].audio] == [32000, 8000]
    asr, _ = examples({"kind": "jaspeech-sft", "path": path, "task": "asr_ja"})
    assert [a.response for a in asr] == ["質問0", "次の質問0", "質問1", "次の質問1"]
    too_long, counters = examples({"kind": "jaspeech-sft", "path": path, "max_response_chars": 4})
    assert too_long == [] and counters.long_response == 2


def test_spoken_dpo_schema_all_turns_or_the_first_human_turn(tmp_path):
    path = originals.dpo(tmp_path / "dpo", n=2)
    got, _ = examples({"kind": "jaspeech-dpo", "path": path})
    assert [t["role"] for t in got[0].turns] == ["user", "assistant", "user"] and len(got[0].audio) == 2
    assert (got[0].chosen, got[0].rejected) == ("良い答え0です。", "悪い0")
    first, _ = examples({"kind": "jaspeech-dpo", "path": path, "first_human_turn": True})
    assert first[0].turns == [{"role": "user", "text": "質問0", "spoken": True}] and len(first[0].audio) == 1


def test_captions_librispeech_reazonspeech_and_text_only_sources(tmp_path):
    cap, _ = examples({"kind": "fsd50k", "path": originals.captions(tmp_path / "cc0", n=2)})
    assert [(e.task, e.response) for e in cap] == [("caption", "犬が0回吠えている。"), ("caption", "犬が1回吠えている。")]
    libri, _ = examples({"kind": "asr", "task": "asr_en", "path": originals.librispeech(tmp_path / "ls", 2),
                         "text_column": "text"})
    assert [(e.task, e.response) for e in libri] == [("asr_en", "HELLO WORLD 0"), ("asr_en", "HELLO WORLD 1")]
    reazon, _ = examples({"kind": "asr", "path": originals.asr(tmp_path / "rs", 2), "limit": 1})
    assert [(e.task, e.response) for e in reazon] == [("asr_ja", "こんにちは0")]
    text, _ = examples({"kind": "text", "path": originals.text_chats(tmp_path / "txt", 1), "split": "20240806filtered"})
    assert [(e.task, e.turns[0]["text"], e.response, e.audio) for e in text] == [
        ("text", "問0", "答0", []), ("text", "続き0", "続きの答0", [])]


def test_a_source_in_no_known_schema_says_what_it_needs(tmp_path):
    path = originals.captions(tmp_path / "cap", 1)
    with pytest.raises(ValueError, match=r"jaspeech-sft source needs the columns \(turns\) or \(instruction_audio, response\)"):
        examples({"kind": "jaspeech-sft", "path": path})
    with pytest.raises(ValueError, match="unknown data source kind"):
        examples({"kind": "video", "path": path})


@pytest.fixture(scope="module")
def magpie_from_sample(sample_corpora, tmp_path_factory):
    """Our OpenJTalk sample SFT corpus rewritten in the original spoken-magpie-ja schema (real speech)."""
    import datasets

    root = tmp_path_factory.mktemp("magpie-original")
    ours = datasets.load_dataset(str(sample_corpora / "sft"), "magpie", split="train")
    turn = ours.features["turns"].feature
    ours = ours.cast_column("turns", datasets.List({**turn, "audio": datasets.Audio(decode=False)}))
    rows = [(r["turns"][0]["text"], r["turns"][0]["audio"], r["turns"][1]["text"]) for r in ours]
    return originals.magpie(root / "spoken-magpie-ja", rows)


@pytest.mark.slow
def test_tiny_asr_trains_on_a_folder_in_the_original_magpie_schema(magpie_from_sample, tmp_path, capsys):
    from jaspeech.cli import main

    code = main(["train", "configs/train/tiny-asr.yaml", "--set", f"data.sources.0.path={magpie_from_sample}",
                 "--set", "data.sources.0.config=null", "--set", f"output_dir={tmp_path / 'run'}",
                 "--set", "training.max_steps=100", "--set", "eval.every_steps=0"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    print(f"original magpie schema: CER {result['cer_before']:.1f} % -> {result['cer_after']:.1f} %, "
          f"loss {result['first_loss']:.2f} -> {result['last_loss']:.2f}")
    assert result["cer_after"] < result["cer_before"] and result["last_loss"] < 0.5 * result["first_loss"]
    assert result["skipped_undecodable"] == 0


def original_batch_examples():
    """A two-turn spoken row (spoken-multiturn-sft), a single-turn ASR row and a text-only row."""
    from jaspeech.model.train.data import Example

    def clip(seconds):
        return (np.sin(np.arange(int(seconds * 16000)) / 7.0) * 0.2).astype("float32"), 16000

    turns = [{"role": "user", "text": "", "spoken": True}, {"role": "assistant", "text": "答えです。", "spoken": False},
             {"role": "user", "text": "", "spoken": True}]
    return [Example("instruction", turns, [clip(1.0), clip(7.3)], response="次の答えです。"),
            Example("asr_ja", [], [clip(2.0)], response="今日はいい天気です。"),
            Example("text", [{"role": "user", "text": "こんにちは", "spoken": False}], [], response="はい。")]


def test_original_multi_turn_audio_batches_as_the_originals_finetune():
    """finetune.py: a batch holding a multi-turn row goes through the multi-turn path whole (every clip its
    padded 30 s window, text rows with the spoken system line); other batches, and ours, are trimmed."""
    from jaspeech.model.prompts import AUDIO_SYSTEM, TEXT_SYSTEM
    from jaspeech.model.train.batches import collate, collate_dpo
    from tests.model.test_prompts import audio_runs
    from tests.model.tiny import tiny_model_and_processor

    model, processor = tiny_model_and_processor(prompt_format="original-v2", audio_token_rounding="floor")
    dialogue, asr, text = original_batch_examples()

    def runs(batch):
        return [audio_runs(processor, row) for row in batch["input_ids"].tolist()]

    def decoded(batch, row):
        ids = [i for i in batch["input_ids"][row].tolist() if i not in (processor.audio_token_id,
                                                                         processor.tokenizer.pad_token_id)]
        return processor.tokenizer.decode(ids)

    ours = collate([dialogue, asr, text], processor)
    assert runs(ours) == [[12, 91], [25], []] and TEXT_SYSTEM in decoded(ours, 2)
    theirs = collate([dialogue, asr, text], processor, original_multi_turn_audio=True)
    assert runs(theirs) == [[375, 375], [375], []]
    assert theirs["audio_chunk_samples"].tolist() == [480000] * 3
    assert AUDIO_SYSTEM in decoded(theirs, 2) and TEXT_SYSTEM not in decoded(theirs, 2)
    assert torch.isfinite(model(**theirs).loss)
    single_turn_only = collate([asr, text], processor, original_multi_turn_audio=True)
    assert runs(single_turn_only) == [[25], []] and TEXT_SYSTEM in decoded(single_turn_only, 1)
    from jaspeech.model.train.data import Example

    pair = Example("dpo", dialogue.turns, dialogue.audio, chosen="良い。", rejected="悪い。")
    dpo = collate_dpo([pair], processor, original_multi_turn_audio=True)
    assert runs(dpo) == [[375, 375], [375, 375]] and dpo["input_features"].shape[0] == 2


def test_a_run_with_original_multi_turn_audio_saves_the_rule_and_ours_does_not(tmp_path):
    from jaspeech.model import JaSpeechLLMProcessor
    from jaspeech.model.train.recipes import train

    recipe = Path(__file__).resolve().parents[3] / "configs" / "train" / "tiny-asr.yaml"
    sources = (f"data.sources=[{{kind: jaspeech-sft, path: '{originals.multiturn(tmp_path / 'mt', 2)}'}}, "
               f"{{kind: text, path: '{originals.text_chats(tmp_path / 'txt', 2, split='train')}'}}]")
    base = [sources, "stage=sft", "training.max_steps=1", "training.per_device_batch_size=2", "eval.examples=0",
            "model.tokenizer_examples=8"]
    logged = []
    result = train(recipe, base + [f"output_dir={tmp_path / 'theirs'}", "model.prompt_format=original-v2",
                                   "training.original_multi_turn_audio=true"],
                   log=lambda *a, **k: logged.append(" ".join(map(str, a))))
    assert math.isfinite(result["last_loss"])
    assert JaSpeechLLMProcessor.from_pretrained(tmp_path / "theirs" / "final").multi_turn_audio == "full_window"
    assert any("multi_turn_audio: trimmed -> full_window" in line for line in logged)
    # continued training without the option: trained trimmed, so saved trimmed (and said so)
    logged.clear()
    train(recipe, base + [f"output_dir={tmp_path / 'ours'}", "model.init=checkpoint",
                          f"model.path={tmp_path / 'theirs' / 'final'}"],
          log=lambda *a, **k: logged.append(" ".join(map(str, a))))
    assert JaSpeechLLMProcessor.from_pretrained(tmp_path / "ours" / "final").multi_turn_audio == "trimmed"
    assert any("full_window -> trimmed" in line for line in logged)
    with pytest.raises(ValueError, match="chat format"):
        train(recipe, base + [f"output_dir={tmp_path / 'chat'}", "training.original_multi_turn_audio=true"])
