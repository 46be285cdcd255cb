"""Building jaspeech-dpo-audio: both configs, hostile input, interrupted builds, and loading."""
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from jaspeech.builders.build import BuildOptions, build
from jaspeech.builders.sources import SAMPLES_DIR
from tests.conftest import assert_accounted, reject_reasons, write_jsonl

CONFIGS = ("hh-rlhf", "chatbot-arena")


def fast(out, config, **kw):
    kw.setdefault("input", "sample")
    return BuildOptions(corpus="jaspeech-dpo-audio", config=config, out=out, tts="openjtalk", asr="none",
                        quiet=True, **kw)


def sample_rows(config):
    return [json.loads(line) for line in (SAMPLES_DIR / f"{config}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_both_configs_build_into_one_folder_with_their_reasons(out):
    for config in CONFIGS:
        build(fast(out, config))
        assert len(sample_rows(config)) >= 30
        assert_accounted(out, config, len(sample_rows(config)))
    for config in CONFIGS:
        reasons = set(reject_reasons(out, config).values())
        assert {"empty_chosen", "empty_rejected", "chosen_equals_rejected", "not_japanese"} <= reasons, config
    assert "too_long" in reject_reasons(out, "chatbot-arena").values()

    ds = load_dataset(str(out), "hh-rlhf", split="train")
    multi = [r for r in ds if len(r["turns"]) == 5]
    assert multi, "the multi-turn sample context was kept"
    roles = [t["role"] for t in multi[0]["turns"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assert all((t["audio"] is not None) == (t["role"] == "user") for t in multi[0]["turns"])
    assert all(r["chosen"] and r["rejected"] and r["chosen"] != r["rejected"] for r in ds)
    arena = load_dataset(str(out), "chatbot-arena", split="train")
    assert set(arena.column_names) == set(ds.column_names)  # one schema for both configs


def hostile_rows(config):
    """Every kind of broken input, in the shape of `config`'s source."""
    good_prompt = "雨の日の過ごし方を教えてください。"

    def row(prompt, chosen="本を読むのがおすすめです。", rejected="寝ていればいいです。"):
        if config == "hh-rlhf":
            conv = prompt if isinstance(prompt, list) else [{"from": "human", "value": prompt}]
            return {"conversations": conv, "chosen": chosen, "rejected": rejected}
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}

    return [
        row(good_prompt),
        '{"prompt": "壊れた行',  # broken JSON line
        "[1, 2, 3]",
        "null",
        "12345",
        row(42),
        row(None),
        row(["入れ子", ["リスト"]]) if config == "chatbot-arena" else row([{"from": "human", "value": ["入れ子"]}]),
        row(good_prompt, chosen=17),
        row(good_prompt, rejected=None),
        row(good_prompt, chosen=["a", "b"]),
        row("あ" * 100_000),
        row(good_prompt, chosen="い" * 100_000),
        row("\x00\x01\x1b[31m制御文字\x7fの\x85質問です。"),
        row("\u202b右から左\u202cの\u200f記号\u200eです。"),
        json.dumps(row("壊れた\udc00サロゲートです。")),
        json.dumps(row(good_prompt, chosen="\ud83d")),
        row(good_prompt),  # an exact duplicate row: a different input position, so its own row
        row(good_prompt, chosen="同じです。", rejected="同じです。"),
        row("\ufeff\u3000\t  "),
        {"unexpected": "field"},
    ]


@pytest.mark.parametrize("config", CONFIGS)
def test_hostile_input_is_fully_accounted(config, out, tmp_path):
    rows = hostile_rows(config)
    path = write_jsonl(tmp_path / f"{config}.jsonl", rows)
    build(fast(out, config, input=str(path)))
    kept, rejected = assert_accounted(out, config, len(rows))
    reasons = reject_reasons(out, config)
    assert reasons[1] == reasons[2] == reasons[3] == reasons[4] == "malformed"
    assert reasons[5] == "bad_type" and reasons[8] == "bad_type" and reasons[10] == "bad_type"
    assert reasons[11] == "too_long" and reasons[18] == "chosen_equals_rejected" and reasons[19] == "empty_text"
    assert reasons[16] == "empty_chosen"  # a lone surrogate is all it held
    assert {0, 12, 13, 14, 15, 17} <= set(kept)
    texts = {}
    for f in (out / "data" / config).glob("*.parquet"):
        for r in pq.read_table(f, columns=["source_index", "turns", "chosen"]).to_pylist():
            texts[r["source_index"]] = (r["turns"][-1]["text"], r["chosen"])
    assert texts[13][0] == "制御文字の質問です。"
    assert texts[14][0] == "右から左の記号です。"
    assert texts[15][0] == "壊れたサロゲートです。"


CLI = [sys.executable, "-m", "jaspeech", "build", "jaspeech-dpo-audio", "--config", "chatbot-arena", "--input",
       "sample", "--tts", "openjtalk", "--asr", "none", "--num-shards", "6", "--quiet"]


def _ids_and_audio(out):
    rows = {}
    for f in sorted((out / "data" / "chatbot-arena").glob("*.parquet")):
        for r in pq.read_table(f, columns=["id", "turns"]).to_pylist():
            assert r["id"] not in rows
            rows[r["id"]] = r["turns"][0]["audio"]["bytes"]
    return rows


def test_killed_build_resumes_to_the_same_rows(tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run(CLI + ["--out", str(reference)], check=True)
    kills = 0
    for delay in (1.5, 2.5, 3.5):
        proc = subprocess.Popen(CLI + ["--out", str(resumed)], start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    subprocess.run(CLI + ["--out", str(resumed)], check=True)
    assert kills >= 1
    assert _ids_and_audio(resumed) == _ids_and_audio(reference)
    assert_accounted(resumed, "chatbot-arena", len(sample_rows("chatbot-arena")))
    assert not list(resumed.rglob("*.partial"))


@pytest.mark.slow
def test_real_stack_dpo_loads_and_decodes_every_user_turn(out):
    """Kokoro + faster-whisper on a few rows of each config, including a multi-turn context."""
    build(BuildOptions(corpus="jaspeech-dpo-audio", config="chatbot-arena", input="sample", out=out, limit=3,
                       quiet=True))
    hh_input = out.parent / "hh.jsonl"
    write_jsonl(hh_input, [sample_rows("hh-rlhf")[i] for i in (0, 3)])  # a single and a 3-human-turn context
    build(BuildOptions(corpus="jaspeech-dpo-audio", config="hh-rlhf", input=str(hh_input), out=out, quiet=True))
    assert_accounted(out, "chatbot-arena", 3)
    assert_accounted(out, "hh-rlhf", 2)
    total_user_turns = 0
    for config in CONFIGS:
        for streaming in (False, True):
            ds = load_dataset(str(out), config, split="train", streaming=streaming)
            for row in ds:
                for turn in row["turns"]:
                    if turn["role"] == "user":
                        samples = turn["audio"].get_all_samples()
                        assert samples.data.shape[-1] > 0.5 * samples.sample_rate
                        # kept by the forced rule: the audio supports every stretch of the text (builders/ear.py),
                        # whatever the transcript's kana-CER; the row records both
                        assert turn["kana_cer"] is not None and turn["text_logprob"] is not None
                        assert turn["worst_span"] and turn["takes"] in (1, 2, 3)
                        total_user_turns += 1
                assert row["chosen"] and row["rejected"]
    assert total_user_turns >= 2 * 3  # at least 3 spoken turns, in both loading modes
