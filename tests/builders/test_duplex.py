"""Full-duplex configs: one stereo recording per dialogue, checked on the real stack (OpenJTalk voice, Whisper base
ear and aligner), rebuilt byte for byte, and hostile dialogues that end as a row or a reason."""
from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from datasets import load_dataset

from jaspeech.cli import main
from jaspeech.synthesis.duplex.mix import ISOLATION_DBFS, has_speech, sample_at
from tests.conftest import assert_accounted, reject_reasons, write_jsonl

ANSWER = ("朝ごはんには、ご飯と味噌汁がおすすめです。焼き魚を添えると、たんぱく質もとれます。"
          "時間がない日は、バナナとヨーグルトでも十分です。")


def _build(out, corpus, config, path, asr="none", **flags):
    argv = ["build", corpus, "--config", config, "--duplex", "--input", str(path), "--out", str(out),
            "--tts", "openjtalk", "--asr", asr, "--quiet"]
    for k, v in flags.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    assert main(argv) == 0


def _rows(out, config):
    return {r["source_index"]: r for r in pq.read_table(out / "data" / config).to_pylist()}


def _stereo(row):
    x, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32", always_2d=True)
    return x, sr


def _check_recording(row):
    """The issue's checks, measured again on the stored bytes."""
    x, sr = _stereo(row)
    assert x.shape[1] == 2
    segs = row["segments"]
    assert abs(x.shape[0] / sr - (max(s["end"] for s in segs) + 0.5)) < 0.01  # last end + the stated tail
    for s in segs:
        assert s["channel"] == (0 if s["role"] == "assistant" else 1)
        assert has_speech(x, sr, s["channel"], s["start"], s["end"])
    for w in row["words"]:
        seg = segs[w["segment"]]
        assert w["channel"] == seg["channel"] and seg["start"] - 1e-3 <= w["start"] < w["end"] <= seg["end"] + 1e-3
        assert has_speech(x, sr, w["channel"], w["start"], w["end"]), w
    for ch in (0, 1):  # the silent channel stays below the bound outside its own segments (times stored in ms)
        outside = np.ones(x.shape[0], dtype=bool)
        for s in segs:
            if s["channel"] == ch:
                outside[max(0, sample_at(s["start"] - 0.001, sr)): sample_at(s["end"] + 0.001, sr)] = False
        peak = float(np.max(np.abs(x[outside, ch]))) if outside.any() else 0.0
        assert peak == 0.0 or 20 * np.log10(peak) < ISOLATION_DBFS
    for ch in (0, 1):  # words are in order on each channel
        starts = [w["start"] for w in row["words"] if w["channel"] == ch]
        assert starts == sorted(starts)


def _row(i, question, answer):
    return {"id": f"magpie-sample-{i:03d}", "conversations": [{"role": "user", "content": question},
                                            {"role": "assistant", "content": answer}]}


def test_duplex_build_with_the_real_ear_loads_as_stereo_and_passes_its_checks(tmp_path):
    # the ids (and so the voices) of the bundled sample's rows with the same questions, which Whisper base hears
    rows = [_row(0, "おすすめの朝ごはんを教えてください。", ANSWER),
            _row(1, "日本で一番高い山は何ですか。", "富士山です。標高は三千七百七十六メートルです。")]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    _build(out, "jaspeech-sft-audio", "magpie", path, asr="faster-whisper", duplex_backchannel_rate=60,
           max_kana_cer=0.3)
    assert_accounted(out, "magpie-duplex", 2)
    assert reject_reasons(out, "magpie-duplex") == {}
    kept = _rows(out, "magpie-duplex")
    for row in kept.values():
        _check_recording(row)
        assert row["align_model"] == "openai/whisper-base (faster-whisper int8): forced alignment"
        turns = [s for s in row["segments"] if s["kind"] == "turn"]
        assert [s["role"] for s in turns] == ["user", "assistant"] and all(s["kana_cer"] is not None for s in turns)
        assert "".join(w["word"] for w in row["words"] if w["segment"] == row["segments"].index(turns[1])) == \
            "".join(c for c in turns[1]["text"] if c not in "、。")
    # backchannels: in the user's voice, only in the assistant's pauses (never over one of its words)
    bcs = [(r, s) for r in kept.values() for s in r["segments"] if s["kind"] == "backchannel"]
    assert bcs, "rate 60 per minute on a three-sentence answer places at least one"
    for row, bc in bcs:
        assert bc["role"] == "user" and bc["channel"] == 1 and bc["transcript"] is not None
        speaker_words = [w for w in row["words"] if w["channel"] == 0]
        assert not [w for w in speaker_words if w["start"] < bc["end"] and bc["start"] < w["end"]]
        turn = row["segments"][[s["turn"] for s in row["segments"]].index(bc["turn"])]
        assert turn["start"] < bc["start"] and bc["end"] < turn["end"]
    ds = load_dataset(str(out), "magpie-duplex", split="train")
    samples = ds[0]["audio"].get_all_samples().data
    assert samples.shape[0] == 2 and samples.shape[1] > 0
    assert "Full-duplex dialogues" in (out / "README.md").read_text(encoding="utf-8")
    assert (out / "assets" / "duplex_gap_hist.png").exists()


def test_a_rebuild_is_byte_identical(tmp_path):
    for name in ("a", "b"):
        _build(tmp_path / name, "jaspeech-sft-audio", "automultiturn", "sample", limit=3)
    a = sorted((tmp_path / "a" / "data" / "automultiturn-duplex").glob("*.parquet"))
    b = sorted((tmp_path / "b" / "data" / "automultiturn-duplex").glob("*.parquet"))
    assert a and [f.read_bytes() for f in a] == [f.read_bytes() for f in b]
    rows = _rows(tmp_path / "a", "automultiturn-duplex")
    for row in rows.values():
        _check_recording(row)
        assert [s["role"] for s in row["segments"] if s["kind"] == "turn"] == ["user", "assistant"] * 2


LONG_TURN = "これは長い説明の一部です。" * 150  # about three minutes of speech


def test_hostile_dialogues_end_as_a_row_or_a_reason(tmp_path):
    def msgs(*turns):
        return {"messages": [{"role": r, "content": c} for r, c in turns]}

    rows = [
        msgs(("user", "こんにちは。")),  # one-sided: no reply
        msgs(("user", ""), ("assistant", "はい。")),  # an empty turn
        msgs(("user", "長い説明をしてください。"), ("assistant", LONG_TURN)),  # a three-minute turn
        msgs(("user", "一つ目の質問です。"), ("user", "二つ目の質問です。"), ("assistant", "両方に答えます。")),
        msgs(("system", "あなたは丁寧なアシスタントです。"), ("user", "天気はどうですか。"), ("assistant", "晴れです。")),
        msgs(*[(("user", "assistant")[i % 2], f"{i}番目の発言です。") for i in range(10)]),  # ten turns
        "{broken json",
    ]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    _build(out, "spoken", "mine", path, format="messages", license="cc-by-4.0")
    assert_accounted(out, "mine-duplex", len(rows))
    reasons = reject_reasons(out, "mine-duplex")
    assert reasons[0] == "no_response" and reasons[1] == "empty_text" and reasons[6] == "malformed"
    kept = _rows(out, "mine-duplex")
    assert set(kept) == {2, 3, 4, 5} and len(reasons) == 3
    for row in kept.values():
        _check_recording(row)
    assert kept[2]["duration"] > 150  # the three-minute turn: every sentence timed, backchannels in its pauses
    assert len([s for s in kept[2]["segments"] if s["kind"] == "backchannel"]) >= 5
    a, b = [s for s in kept[3]["segments"] if s["kind"] == "turn"][:2]  # two user turns: one after the other
    assert a["channel"] == b["channel"] == 1 and b["start"] >= a["end"]
    assert kept[4]["turns"][0]["role"] == "system"  # text only: the two spoken turns are 1 and 2
    assert [s["turn"] for s in kept[4]["segments"] if s["kind"] == "turn"] == [1, 2]
    assert len([s for s in kept[5]["segments"] if s["kind"] == "turn"]) == 10


def test_an_error_while_a_dialogue_is_placed_rejects_only_that_row(tmp_path, monkeypatch):
    """A bug in the timeline for one row (a stand-in raising for one text): that row is `internal_error`, the
    group's other rows are built."""
    import jaspeech.builders.duplex as duplex

    real = duplex.plan_timeline

    def flaky(turns, slots, opts, seed):
        if any("富士山" in t.text for t in turns):
            raise ZeroDivisionError("a bug")
        return real(turns, slots, opts, seed)

    monkeypatch.setattr(duplex, "plan_timeline", flaky)
    _build(tmp_path / "out", "jaspeech-sft-audio", "magpie", "sample", limit=3)
    assert_accounted(tmp_path / "out", "magpie-duplex", 3)
    assert reject_reasons(tmp_path / "out", "magpie-duplex") == {1: "internal_error"}
