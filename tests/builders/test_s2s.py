"""Speech-to-speech configs: the assistant speaks too, in its own voice, beside the text config."""
from __future__ import annotations

import io
import re

import pyarrow.parquet as pq
import pytest
import soundfile as sf
from datasets import load_dataset

from jaspeech.builders.sources import SAMPLES_DIR
from jaspeech.cli import main
from jaspeech.synthesis.speakers import ASSISTANT_PROFILES, PROFILES
from tests.conftest import assert_accounted, reject_reasons, write_jsonl

CODE = "次のコードで表示できます。\n```python\nprint('こんにちは')\n```"
LONG = ("睡眠の質を高めるには、毎日同じ時間に寝て同じ時間に起きることが大切です。" * 2
        + "寝る前の一時間はスマートフォンやパソコンの画面を見ないようにしましょう。"
        + "夕方以降はコーヒーや緑茶などカフェインを含む飲み物を控えると、寝つきが良くなります。"
        + "寝室は暗く静かにし、少し涼しいくらいの温度に保つと深く眠れます。"
        + "昼寝をする場合は、午後三時までに二十分ほどにとどめましょう。"
        + "適度な運動も効果的ですが、寝る直前の激しい運動は逆効果です。"
        + "ぬるめのお風呂に寝る一時間ほど前に入ると、体温が下がるときに自然な眠気が訪れます。"
        + "それでも眠れない日が続くときは、無理をせず医師に相談してください。"
        + "朝起きたらすぐにカーテンを開けて日の光を浴びると、体内時計が整い、夜に自然と眠くなります。"
        + "休日も平日と同じ時間に起きるようにすると、月曜日の朝がずっと楽になります。"
        + "眠れないときに時計を何度も見ると焦りが増えるので、時計は見えない場所に置きましょう。")


def _build(out, config, path, speak=None, asr="none", **flags):
    argv = ["build", "jaspeech-sft-audio", "--config", config, "--input", str(path), "--out", str(out),
            "--tts", "openjtalk", "--asr", asr, "--quiet"]
    if speak:
        argv += ["--speak", speak]
    for k, v in flags.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    assert main(argv) == 0


def _rows(out, config):
    return {r["source_index"]: r for r in pq.read_table(out / "data" / config).to_pylist()}


def _row(i, question, answer):
    return {"id": f"s{i}", "conversations": [{"role": "user", "content": question},
                                            {"role": "assistant", "content": answer}]}


def test_s2s_beside_the_text_config_with_its_own_rejects(tmp_path):
    rows = [_row(0, "おすすめの朝ごはんを教えてください。", "ご飯とみそ汁に焼き魚がおすすめです。"),
            _row(1, "画面に文字を出すコードを教えてください。", CODE),
            _row(2, "参考になるサイトはありますか。", "https://example.com が参考になります。"),
            _row(3, "よく眠るコツを教えてください。", "## 眠るコツ\n- 同じ時間に寝る\n- **寝る前**はスマホを見ない")]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    _build(out, "magpie", path)
    _build(out, "magpie", path, speak="both")
    _build(out, "magpie", path, speak="assistant")
    for config in ("magpie", "magpie-s2s", "magpie-spoken-response"):
        assert_accounted(out, config, len(rows))
    assert sorted(_rows(out, "magpie")) == [0, 1, 2, 3]  # the text config keeps every row
    assert reject_reasons(out, "magpie-s2s") == {1: "unspeakable_code", 2: "unspeakable_url"}  # from S2S only
    s2s = _rows(out, "magpie-s2s")
    user_voices, assistant_voices = {p.name for p in PROFILES}, {p.name for p in ASSISTANT_PROFILES}
    for r in s2s.values():
        user, reply = r["turns"]
        assert user["audio"] and reply["audio"] and reply["duration"] > 0 and user["duration"] > 0
        assert r["speaker"] in user_voices and r["assistant_speaker"] in assistant_voices
    assert s2s[3]["turns"][1]["text"] == "眠るコツ。同じ時間に寝る。寝る前はスマホを見ない"  # markdown spoken as sentences
    spoken_response = _rows(out, "magpie-spoken-response")
    assert all(r["turns"][0]["audio"] is None and r["turns"][1]["audio"] for r in spoken_response.values())
    card = (out / "README.md").read_text(encoding="utf-8")
    hours = re.search(r"^\| `magpie-s2s` \| ([\d.]+) \| ([\d.]+) \| (\d+) \|", card, re.M)
    assert hours and float(hours[1]) > 0 and float(hours[2]) > 0 and int(hours[3]) == 2
    assert re.search(r"^\| `magpie-s2s` \| asst0\d \| [\d.]+ \|$", card, re.M)


def test_load_dataset_decodes_both_sides_streaming_too(tmp_path):
    out = tmp_path / "out"
    _build(out, "magpie", "sample", speak="both", limit=3)
    for streaming in (False, True):
        ds = load_dataset(str(out), "magpie-s2s", split="train", streaming=streaming)
        for row in ds:
            for turn in row["turns"]:
                assert turn["audio"].get_all_samples().data.shape[-1] > 0, turn["role"]


@pytest.mark.slow
def test_a_long_response_is_split_synthesised_and_scored_as_one_turn(tmp_path):
    """The real round trip (Whisper base) on a ~1-minute spoken response, built in pieces."""
    from jaspeech.synthesis.text import PIECE_CHARS

    assert len(LONG) > PIECE_CHARS
    out = tmp_path / "out"
    path = write_jsonl(tmp_path / "in.jsonl", [_row(0, "よく眠るためのコツを教えてください。", LONG)])
    _build(out, "magpie", path, speak="both", asr="faster-whisper", max_kana_cer=0.3)
    assert_accounted(out, "magpie-s2s", 1)
    assert reject_reasons(out, "magpie-s2s") == {}, (out / "rejects" / "magpie-s2s").glob("*.jsonl").__next__().read_text()
    row = _rows(out, "magpie-s2s")[0]
    reply = row["turns"][1]
    assert reply["duration"] > 30  # one turn, longer than a Whisper window
    samples, sr = sf.read(io.BytesIO(reply["audio"]["bytes"]))
    assert samples.size / sr == pytest.approx(reply["duration"], abs=0.01)
    assert reply["kana_cer"] is not None and reply["kana_cer"] <= 0.3 and len(reply["transcript"]) > len(LONG) // 2
    # and the cap rejects it when it is lower than the response
    capped = tmp_path / "capped"
    _build(capped, "magpie", path, speak="both", max_response_seconds=20)
    assert set(reject_reasons(capped, "magpie-s2s").values()) <= {"too_long", "audio_too_long"}
    assert len(reject_reasons(capped, "magpie-s2s")) == 1


def test_speak_is_refused_where_no_spoken_variant_exists(tmp_path, capsys):
    argv = ["build", "jaspeech-dpo-audio", "--config", "hh-rlhf", "--speak", "both", "--out", str(tmp_path / "o")]
    assert main(argv) == 2 and "no --speak both variant" in capsys.readouterr().err
    assert SAMPLES_DIR.joinpath("magpie.jsonl").exists()
