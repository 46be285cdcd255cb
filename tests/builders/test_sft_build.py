"""Building jaspeech-sft-audio: accounting, folder layout, resume, and loading with `datasets`."""
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml
from datasets import Audio, List, load_dataset

from jaspeech.builders import corpus_spec
from jaspeech.builders.build import BuildOptions, PlanMismatch, build
from jaspeech.builders.pipeline import RowBuilder, SynthesisOptions
from jaspeech.builders.schema import RowReject
from jaspeech.builders.sources import SAMPLES_DIR
from jaspeech.cli import main
from jaspeech.synthesis.text import TextOptions
from jaspeech.synthesis.tts import make_tts
from tests.conftest import assert_accounted, reject_reasons, write_jsonl


def fast(out, config="magpie", **kw):
    """The fast real stack: OpenJTalk TTS, no ASR."""
    kw.setdefault("input", "sample")
    return BuildOptions(corpus="jaspeech-sft-audio", config=config, out=out, tts="openjtalk", asr="none",
                        quiet=True, **kw)


def n_lines(path):
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def test_sample_builds_every_row_accounted(out):
    for config in ("magpie", "automultiturn"):
        summary = build(fast(out, config))
        n = n_lines(SAMPLES_DIR / f"{config}.jsonl")
        assert n >= 30
        kept, rejected = assert_accounted(out, config, n)
        assert summary["rows"] == len(kept) > 10 and summary["rejects"] == len(rejected)
    reasons = reject_reasons(out, "magpie")
    for expected in ("unspeakable_code", "unspeakable_url", "unspeakable_table", "empty_text", "missing_text",
                     "empty_response", "not_japanese", "too_long", "no_user_turn", "malformed"):
        assert expected in reasons.values(), expected
    # both configs are in the card and load; automultiturn rows carry two spoken questions
    card = (out / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---")[1])
    assert [c["config_name"] for c in meta["configs"]] == ["magpie", "automultiturn"]
    ds = load_dataset(str(out), "automultiturn", split="train")
    row = ds[0]
    assert [t["role"] for t in row["turns"]] == ["user", "assistant", "user", "assistant"]
    assert row["turns"][0]["audio"] is not None and row["turns"][1]["audio"] is None
    assert row["asr_model"] == "none" and row["turns"][0]["kana_cer"] is None


def test_hostile_sft_input_is_fully_accounted(out, tmp_path):
    ok = {"role": "user", "content": "お茶の入れ方を教えてください。"}
    reply = {"role": "assistant", "content": "お湯を少し冷ましてから注ぎます。"}
    rows = [
        {"id": "a", "conversations": [ok, reply]},
        "{not json",
        {"id": "b", "conversations": [{"role": "user", "content": 12}, reply]},
        {"id": "c", "conversations": [{"role": "user", "content": None}, reply]},
        {"id": "d", "conversations": [{"role": "user", "content": ["x"]}, reply]},
        {"id": "e", "conversations": [{"role": "user", "content": "あ" * 100_000}, reply]},
        {"id": "f", "conversations": [{"role": "user", "content": "\x00\x1b制御\u202e文字の\u200f質問です。"}, reply]},
        json.dumps({"id": "g", "conversations": [{"role": "user", "content": "壊れた\ud800文字です。"}, reply]}),
        {"id": "a", "conversations": [ok, reply]},  # duplicate id
        {"id": ["list"], "conversations": [ok, reply]},
        {"id": "h", "conversations": [ok, {"role": "assistant", "content": {"nested": 1}}]},
        {"id": "i", "conversations": [[ok], reply]},
        None,
        42,
        json.dumps({"id": "j", "conversations": [ok, {"role": "assistant", "content": "\ud800" + "ok" * 50_000}]}),
        {"id": "k", "conversations": [ok, {"role": "assistant", "content": "\udfff"}]},  # raw bytes: not UTF-8
        {"id": "l", "conversations": [{"role": "user", "content": "彁という字を読んでください。"}, reply]},
    ]
    path = write_jsonl(tmp_path / "hostile.jsonl", rows)
    build(fast(out, input=str(path)))
    kept, rejected = assert_accounted(out, "magpie", len(rows))
    reasons = reject_reasons(out, "magpie")
    assert reasons[8] == "duplicate_id" and reasons[1] == "malformed" and reasons[2] == "bad_type"
    assert reasons[5] == "too_long" and reasons[12] == "malformed" and reasons[13] == "malformed"
    assert reasons[15] == "malformed" and reasons[16] == "unreadable_kanji"
    assert {0, 6, 7, 9, 14} <= set(kept)
    table = pq.read_table(next((out / "data" / "magpie").glob("*.parquet")), columns=["source_index", "turns"])
    texts = {r["source_index"]: r["turns"][0]["text"] for r in table.to_pylist()}
    assert texts[6] == "制御文字の質問です。" and texts[7] == "壊れた文字です。"


class Failing:
    """A TTS/ASR stand-in that fails on purpose, to show a backend exception becomes a reject."""

    name = "failing"

    def synthesize(self, text, speaker, seed):
        if "爆発" in text:
            raise RuntimeError("backend crashed")
        if "無音" in text:
            return np.zeros(2400, np.float32), 24000
        if "長い" in text:
            return np.full(int(24000 * (TextOptions().max_seconds + 1)), 0.1, np.float32), 24000
        return np.full(2400, 0.1, np.float32), 24000

    def transcribe(self, audios):
        raise TimeoutError("asr server gone")


@pytest.mark.parametrize(
    "content, asr, reason",
    [("爆発する質問です。", None, "tts_error"), ("無音の質問です。", None, "tts_empty"),
     ("長い質問です。", None, "audio_too_long"), ("普通の質問です。", Failing(), "asr_error")],
)
def test_backend_failures_become_rejects(content, asr, reason):
    spec = corpus_spec("jaspeech-sft-audio")
    # the transcript rule: the stand-in ear only transcribes (it fails before any forced score would be asked)
    builder = RowBuilder(spec, spec.configs["magpie"], Failing(), asr, SynthesisOptions(rule=None))
    raw = {"id": "x", "conversations": [{"role": "user", "content": content}, {"role": "assistant", "content": "はい"}]}
    with pytest.raises(RowReject) as e:
        builder.build(0, raw, "x")
    assert e.value.reason == reason


def test_rows_do_not_depend_on_shard_count_and_resume_redoes_only_broken_shards(tmp_path):
    one, three = tmp_path / "one", tmp_path / "three"
    build(fast(one, num_shards=1))
    build(fast(three, num_shards=3))

    def rows(out):
        out_rows = {}
        for f in sorted((out / "data" / "magpie").glob("*.parquet")):
            for r in pq.read_table(f).to_pylist():
                out_rows[r["id"]] = (r["speaker"], r["turns"][0]["audio"]["bytes"])
        return out_rows

    reference = rows(one)
    assert rows(three) == reference and len(list((three / "data" / "magpie").glob("*.parquet"))) == 3

    # simulate a kill: shard 1 lost its manifest and left a partial file; shard 0 and 2 are complete
    manifests = three / "manifests" / "magpie"
    (manifests / "train-00001-of-00003.json").unlink()
    (three / "data" / "magpie" / "train-00001-of-00003.parquet.partial").write_bytes(b"half a shard")
    before = {p.name: p.stat().st_mtime_ns for p in manifests.glob("train-*.json")}
    build(fast(three, num_shards=3))
    after = {p.name: p.stat().st_mtime_ns for p in manifests.glob("train-*.json")}
    assert after["train-00000-of-00003.json"] == before["train-00000-of-00003.json"]  # not redone
    assert "train-00001-of-00003.json" in after
    assert not list(three.rglob("*.partial"))
    assert rows(three) == reference
    assert_accounted(three, "magpie", n_lines(SAMPLES_DIR / "magpie.jsonl"))


def test_changed_options_need_overwrite(out, capsys):
    build(fast(out, limit=5))
    with pytest.raises(PlanMismatch, match="limit"):
        build(fast(out, limit=6))
    build(fast(out, limit=6, overwrite=True))
    assert_accounted(out, "magpie", 6)
    args = ["build", "jaspeech-sft-audio", "--config", "magpie", "--input", "sample", "--out", str(out),
            "--tts", "openjtalk", "--asr", "none", "--limit", "7", "--quiet"]
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_help_lists_the_shared_options(capsys):
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    text = capsys.readouterr().out
    for opt in ("--config", "--input", "--out", "--limit", "--tts", "--asr", "--max-kana-cer", "--num-shards"):
        assert opt in text


@pytest.mark.slow
def test_real_offline_stack_builds_and_loads(out):
    """Kokoro TTS + faster-whisper round trip + DNSMOS on real rows (the README's first command on 4 rows), loaded
    back with `datasets`."""
    opts = BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input="sample", out=out, limit=4,
                        quality="dnsmos", quiet=True)
    summary = build(opts)
    kept, _ = assert_accounted(out, "magpie", 4)
    assert summary["rows"] >= 3
    ds = load_dataset(str(out), "magpie", split="train")
    assert len(ds) == len(kept)
    for row in ds:
        user = row["turns"][0]
        samples = user["audio"].get_all_samples()
        assert samples.sample_rate == 24000 and samples.data.shape[-1] / 24000 == pytest.approx(user["duration"], abs=0.01)
        assert user["transcript"] and user["kana_cer"] <= 0.10
        assert row["tts_model"].startswith("kokoro") and "whisper-base" in row["asr_model"]
        assert 1 <= user["dnsmos"]["ovrl"] <= 5 and user["signal"]["peak"] > 0.05  # the quality columns
        assert row["turns"][1]["dnsmos"] is None and row["turns"][1]["signal"] is None
    streamed = list(load_dataset(str(out), "magpie", split="train", streaming=True))
    assert [r["id"] for r in streamed] == ds["id"]
    assert streamed[0]["turns"][0]["audio"].get_all_samples().data.shape[-1] > 24000
    raw = ds.cast_column("turns", List({**ds.features["turns"].feature, "audio": Audio(decode=False)}))
    x, sr = sf.read(io.BytesIO(raw[0]["turns"][0]["audio"]["bytes"]))
    assert sr == 24000 and x.ndim == 1 and np.abs(x).max() > 0.05


class OneBadTranscript:
    """An ASR stand-in whose answer for one clip is not a string: scoring that row raises, others must not care."""

    name = "one-bad-transcript"

    def transcribe(self, audios):
        return [None if len(samples) == self.bad_length else "おはようございます" for samples, sr in audios]


def test_an_unexpected_error_in_a_batch_rejects_only_its_row(out, monkeypatch, tmp_path):
    from jaspeech.builders import shards
    from jaspeech.synthesis.speakers import assign_speaker
    from jaspeech.synthesis.text import prepare_for_speech

    rows = [{"id": f"r{i}", "conversations": [{"role": "user", "content": text},
                                             {"role": "assistant", "content": "はい。"}]}
            for i, text in enumerate(["おはようございます。", "こんにちは、今日はいい天気ですね。", "おはようございます。"])]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    spec = corpus_spec("jaspeech-sft-audio")
    tts = make_tts("openjtalk")
    asr = OneBadTranscript()
    bad = prepare_for_speech("こんにちは、今日はいい天気ですね。")
    asr.bad_length = len(tts.synthesize(bad, assign_speaker("llm-jp/magpie-sft-v1.0", "r1"), 0)[0])
    builder = RowBuilder(spec, spec.configs["magpie"], tts, asr, SynthesisOptions(max_kana_cer=1.0, rule=None))
    monkeypatch.setattr(shards, "row_builder", lambda plan, out=None: builder)
    build(BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input=str(path), out=out, tts="openjtalk",
                       quiet=True))
    kept, rejected = assert_accounted(out, "magpie", 3)
    assert sorted(kept) == [0, 2] and reject_reasons(out, "magpie") == {1: "internal_error"}



def test_automultiturn_second_question_without_an_answer_follows_trailing_user(tmp_path):
    """q2 with no a2 ends the dialogue on the user: kept as one exchange (the default, as before), spoken
    unanswered, or rejected."""
    q, a, q2 = "近所でおいしいパン屋を探しています。", "駅前の商店街に人気の店があります。", "何時に開きますか。"
    path = write_jsonl(tmp_path / "amt.jsonl", [{"q1": q, "a1": a, "q2": q2}, {"q1": q, "a1": a, "q2": q2, "a2": a}])
    turns = {}
    for choice in ("keep-exchanges", "speak", "reject"):
        out = tmp_path / choice
        build(fast(out, "automultiturn", input=str(path), trailing_user=choice))
        assert_accounted(out, "automultiturn", 2)
        kept = {r["source_index"]: r for r in pq.read_table(out / "data" / "automultiturn").to_pylist()}
        turns[choice] = {i: [t["role"] for t in r["turns"]] for i, r in kept.items()}
        assert turns[choice].get(1) == ["user", "assistant"] * 2
        assert "provenance" not in kept[1]  # the SFT schema has no provenance column
    assert turns["keep-exchanges"][0] == ["user", "assistant"]
    assert turns["speak"][0] == ["user", "assistant", "user"]
    assert 0 not in turns["reject"] and reject_reasons(tmp_path / "reject", "automultiturn") == {0: "no_response"}
