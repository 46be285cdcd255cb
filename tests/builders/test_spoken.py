"""`jaspeech build spoken`: your own messages / ShareGPT / Alpaca data through the same pipeline.

Built with the real fast stack (OpenJTalk TTS, no ASR) except the one slow test, which runs the Whisper round
trip on a few rows.
"""
from __future__ import annotations

import json
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import load_dataset
from huggingface_hub import DatasetCard

from jaspeech.builders import corpus_spec
from jaspeech.builders.build import BuildOptions
from jaspeech.builders.executors import build_command
from jaspeech.builders.sources import SAMPLES_DIR
from jaspeech.builders.spoken import ALPACA_TEMPLATE, DETECT_ROWS, Adapter, Mapping, detect, hub_licenses
from jaspeech.cli import main
from tests.conftest import assert_accounted, reject_reasons, write_jsonl

FAST = ["--tts", "openjtalk", "--asr", "none", "--quiet"]


def spoken(out, config, source, *flags, license="apache-2.0"):
    """Run `jaspeech build spoken` as a user would; returns the exit status."""
    return main(["build", "spoken", "--config", config, "--input", str(source), "--out", str(out),
                 "--license", license, *FAST, *flags])


def rows(out, config):
    return {r["source_index"]: r for r in pq.read_table(out / "data" / config).to_pylist()}


def plan(out, config):
    return json.loads((out / "manifests" / config / "plan.json").read_text(encoding="utf-8"))


def n_lines(path):
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def roles(row):
    return [t["role"] for t in row["turns"]]


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """The three bundled samples built into one folder, one config each."""
    out = tmp_path_factory.mktemp("spoken") / "corpus"
    for fmt in ("messages", "sharegpt", "alpaca"):
        flags = ["--format", fmt] + (["--id-column", "id"] if fmt == "messages" else [])
        assert spoken(out, f"my-{fmt}", "sample", *flags) == 0
    return out


def test_messages_sample_every_turn_in_order_system_as_text_rejects_with_reasons(samples):
    n = n_lines(SAMPLES_DIR / "spoken-messages.jsonl")
    assert n >= 10
    assert_accounted(samples, "my-messages", n)
    assert reject_reasons(samples, "my-messages") == {
        3: "no_user_turn", 4: "unknown_role", 5: "bad_type", 6: "missing_column",
        8: "unspeakable_url", 11: "malformed", 12: "malformed", 13: "bad_type", 14: "missing_response",
        16: "not_japanese", 17: "duplicate_id"}
    kept = rows(samples, "my-messages")
    assert roles(kept[0]) == ["system", "user", "assistant"]
    assert roles(kept[15]) == ["system"] + ["user", "assistant"] * 3  # three exchanges, in the source's order
    assert roles(kept[2]) == ["user", "assistant"]  # an empty system turn says nothing: dropped
    assert roles(kept[9]) == ["assistant", "user", "assistant"] and roles(kept[10]) == ["user", "user", "assistant"]
    # a 3-turn dialogue ending on the user keeps its first exchange by default; the dropped turn is in provenance
    assert roles(kept[7]) == ["user", "assistant"] and kept[7]["provenance"] == {
        "trailing_user": "kept-exchanges", "dropped_turns": [{"role": "user", "text": "もう一つお願いします。"}]}
    assert kept[0]["provenance"] is None
    for r in kept.values():
        for t in r["turns"]:
            assert (t["audio"] is not None) == (t["role"] == "user"), (r["id"], t["role"])
            if t["role"] == "system":
                assert t["duration"] is None and t["transcript"] is None and t["kana_cer"] is None
    assert kept[0]["turns"][0]["text"] == "あなたは丁寧な日本語で答えるアシスタントです。"
    # ids from --id-column, the source named after the local file, speakers as for every corpus
    assert kept[0]["id"] == "my-messages-m-000" and kept[0]["source_id"] == "m-000"
    assert {r["source_dataset"] for r in kept.values()} == {"spoken-messages.jsonl"}
    details = {json.loads(line)["source_index"]: json.loads(line)["detail"]
               for line in next((samples / "rejects" / "my-messages").glob("*.jsonl")).read_text().splitlines()}
    assert "'tool'" in details[4] and "--user-role" in details[4]
    assert "system" in details[13] and "same id as input position 1" in details[17]


def test_sharegpt_and_alpaca_samples(samples):
    assert_accounted(samples, "my-sharegpt", n_lines(SAMPLES_DIR / "spoken-sharegpt.jsonl"))
    assert reject_reasons(samples, "my-sharegpt") == {
        3: "unknown_role", 4: "missing_text", 5: "no_user_turn", 6: "malformed", 7: "missing_column",
        8: "bad_type", 9: "unspeakable_code", 14: "malformed"}
    kept = rows(samples, "my-sharegpt")
    assert roles(kept[0]) == ["system", "user", "assistant"] and roles(kept[1]) == ["user", "assistant"] * 2
    assert roles(kept[2]) == ["user", "assistant"]  # user/assistant values are ShareGPT roles too
    assert kept[12]["turns"][0]["text"] == "おいしいカレーの作り方を教えて"  # markup and emoji are not spoken
    assert kept[0]["source_id"] == "0"  # no --id-column: the position
    assert roles(kept[13]) == ["user", "assistant"] and kept[13]["provenance"]["trailing_user"] == "kept-exchanges"

    n = n_lines(SAMPLES_DIR / "spoken-alpaca.jsonl")
    assert_accounted(samples, "my-alpaca", n)
    assert reject_reasons(samples, "my-alpaca") == {
        2: "too_long", 3: "missing_column", 4: "bad_type", 5: "bad_type", 6: "not_japanese", 7: "empty_response",
        8: "unspeakable_table", 9: "empty_text", 13: "bad_type"}
    kept = rows(samples, "my-alpaca")
    assert kept[1]["turns"][0]["text"] == ("次の文章を一文で要約してください。"
                                          "昨日は朝から雨が降っていたが、昼過ぎには晴れて、夕方には虹が見えた。")
    assert kept[0]["turns"][0]["text"] == "日本の四季について簡単に説明してください。"  # empty input: nothing added
    assert kept[10]["turns"][1]["text"] == "急がば回れ。" and roles(kept[11]) == ["user", "assistant"]


def test_the_card_loading_and_the_view(samples):
    card = DatasetCard.load(samples / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["language"] == ["ja"]
    assert [c["config_name"] for c in data["configs"]] == ["my-alpaca", "my-messages", "my-sharegpt"]
    assert data["source_datasets"] == ["spoken-alpaca.jsonl", "spoken-messages.jsonl", "spoken-sharegpt.jsonl"]
    for info in data["dataset_info"]:
        assert info["splits"][0]["num_examples"] == len(rows(samples, info["config_name"]))
        assert [f["name"] for f in info["features"]][:3] == ["id", "source_dataset", "source_id"]
    text = (samples / "README.md").read_text(encoding="utf-8")
    assert "ShareGPT conversations in column `conversations`" in text and "(local files)" in text
    per_config = {c: [len(r["turns"]) for r in rows(samples, c).values()] for c in ("my-messages", "my-alpaca")}
    columns = sorted({n for c in ("my-messages", "my-sharegpt", "my-alpaca") for n in
                      (len(r["turns"]) for r in rows(samples, c).values())})
    for config, lengths in per_config.items():  # rows by number of turns, a system turn included, from the files
        assert f"| `{config}` |" + "".join(f" {lengths.count(n)} |" for n in columns) + "\n" in text
    for config in ("my-messages", "my-sharegpt", "my-alpaca"):
        ds = load_dataset(str(samples), config, split="train")
        assert len(ds) == len(rows(samples, config))
        first = next(t for t in ds[0]["turns"] if t["role"] == "user")
        assert first["audio"].get_all_samples().data.shape[-1] > 0
    (samples / "README.md").unlink()
    assert main(["card", str(samples)]) == 0  # the card again, from the stored plans alone
    assert (samples / "README.md").read_text(encoding="utf-8") == text
    # the view shows the system turn as a turn of its own (text, no audio)
    from jaspeech.view.queries import open_corpus

    row = open_corpus(samples).row("my-messages", 0)
    assert [t["role"] for t in row["turns"]] == ["system", "user", "assistant"]
    assert row["turns"][0].get("audio_url") is None and row["turns"][1].get("audio_url")


def test_the_card_front_matter_parses_with_huggingface_hub(samples):
    """As tests/cards/test_card.py reads a card: the YAML the Hub parses, for the three sample configs."""
    data = DatasetCard.load(samples / "README.md").data.to_dict()
    configs = ["my-alpaca", "my-messages", "my-sharegpt"]
    assert data["license"] == "apache-2.0" and data["language"] == ["ja"]
    assert data["task_categories"] == ["automatic-speech-recognition", "text-generation"]
    assert sum(len(rows(samples, c)) for c in configs) < 1000 and data["size_categories"] == ["n<1K"]
    assert data["pretty_name"] == ("Spoken Japanese instructions from "
                                   "spoken-alpaca.jsonl, spoken-messages.jsonl, spoken-sharegpt.jsonl")
    assert data["configs"] == [{"config_name": c, "data_files": [{"split": "train", "path": f"data/{c}/*.parquet"}]}
                               for c in configs]
    for c in configs:  # each data_files pattern names exactly the config's Parquet files
        assert sorted(samples.glob(f"data/{c}/*.parquet")) == sorted((samples / "data" / c).iterdir())


def write_parquet(path, table_rows):
    pq.write_table(pa.Table.from_pylist(table_rows), path)
    return path


def test_files_never_seen_build_with_format_auto_or_the_documented_flags(tmp_path):
    """Inputs written here in each shape (not the samples), as JSONL, a JSON array and Parquet."""
    q, a = "近所でおいしいパン屋を探しています。", "駅前の商店街に人気の店があります。"
    q2, a2 = "何時に開きますか。", "朝七時から開いています。"
    shapes = {
        "chat": (write_jsonl(tmp_path / "chat.jsonl", [
            {"messages": [{"role": "system", "content": "簡潔に答えてください。"}, {"role": "user", "content": q},
                          {"role": "assistant", "content": a}, {"role": "user", "content": q2},
                          {"role": "assistant", "content": a2}]},
            {"messages": [{"role": "user", "content": q2}, {"role": "assistant", "content": a2}]},
            {"messages": [{"role": "function", "content": "{}"}, {"role": "user", "content": q},
                          {"role": "assistant", "content": a}]}]), [], "messages"),
        "share": (tmp_path / "share.json", [], "sharegpt"),
        "flat": (write_parquet(tmp_path / "flat.parquet", [
            {"instruction": q, "input": "商店街の地図を見ながら答えてください。", "output": a},
            {"instruction": q2, "input": None, "output": a2}]), [], "alpaca"),
        # other names, read with the documented mapping flags
        "calls": (write_jsonl(tmp_path / "calls.jsonl", [
            {"dialog": [{"speaker": "customer", "utterance": q}, {"speaker": "agent", "utterance": a}]},
            {"dialog": [{"speaker": "customer", "utterance": q2}, {"speaker": "operator", "utterance": a2}]}]),
            ["--messages-column", "dialog", "--role-key", "speaker", "--content-key", "utterance",
             "--user-role", "customer", "--assistant-role", "agent"], "messages"),
        "qa": (write_jsonl(tmp_path / "qa.jsonl", [{"question": q, "place": "駅前", "answer": a},
                                                   {"question": q2, "answer": a2}]),
               ["--template", "{{ place }}について。{{ question }}", "--output-column", "answer"], "alpaca"),
    }
    shapes["share"][0].write_text(json.dumps([
        {"id": "x1", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]},
        {"id": "x2", "conversations": [{"from": "system", "value": "敬語で。"}, {"from": "human", "value": q2},
                                       {"from": "gpt", "value": a2}]}], ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"
    for config, (path, flags, fmt) in shapes.items():
        assert spoken(out, config, path, *flags) == 0, config
        stored = plan(out, config)
        assert stored["format"] == "auto" and stored["mapping"]["format"] == fmt
        assert stored["input_note"].startswith(f"--format auto chose {fmt}")
        n = 3 if config == "chat" else 2
        assert_accounted(out, config, n)
        assert len(load_dataset(str(out), config, split="train")) == len(rows(out, config))
    assert reject_reasons(out, "chat") == {2: "unknown_role"}
    assert roles(rows(out, "chat")[0]) == ["system", "user", "assistant", "user", "assistant"]
    assert roles(rows(out, "share")[1]) == ["system", "user", "assistant"]
    assert rows(out, "flat")[0]["turns"][0]["text"] == q + "商店街の地図を見ながら答えてください。"
    assert reject_reasons(out, "calls") == {1: "unknown_role"}
    assert rows(out, "qa")[0]["turns"][0]["text"] == "駅前について。" + q
    detail = json.loads(next((out / "rejects" / "qa").glob("*.jsonl")).read_text().splitlines()[0])
    assert detail["reason"] == "template_error" and "'place' is undefined" in detail["detail"]


def test_renamed_alpaca_columns_and_a_custom_system_role_build_from_files_never_seen(tmp_path):
    """Alpaca with other column names and an id column, and ShareGPT with its own role values, both written here
    and read with the documented mapping flags and named --format."""
    tasks = [
        {"uid": "t-01", "prompt": "次の言葉の読み方を教えてください。", "context": "紅葉", "reply": "こうようと読みます。"},
        {"uid": "t-02", "prompt": "春に行きたい花見の名所はどこですか。", "context": "", "reply": "上野公園が有名です。"},
        {"uid": "t-03", "context": "明日は雨です", "reply": "傘を持って行きましょう。"},  # no instruction column
        {"uid": "t-04", "prompt": "朝ご飯に何を食べるとよいですか。", "reply": "ご飯と味噌汁がおすすめです。"},
        {"uid": "t-05", "prompt": "次の文を丁寧な言い方に直してください", "context": "明日そっちに行く",
         "reply": "明日そちらに伺います。"},
    ]
    path = write_jsonl(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "out"
    assert spoken(out, "tasks", path, "--format", "alpaca", "--instruction-column", "prompt", "--input-column",
                  "context", "--output-column", "reply", "--id-column", "uid") == 0
    stored = plan(out, "tasks")
    assert stored["format"] == "alpaca" and stored["id_column"] == "uid"
    assert stored["mapping"] == {
        "format": "alpaca", "instruction_column": "prompt", "input_column": "context", "output_column": "reply",
        "template": None, "messages_column": "", "role_key": "", "content_key": "", "user_roles": [],
        "assistant_roles": [], "system_roles": []}
    assert stored["input_note"].startswith("--format alpaca: Alpaca columns: the spoken instruction is `prompt`, "
                                           "then `context` on a new line")
    assert_accounted(out, "tasks", len(tasks))
    assert reject_reasons(out, "tasks") == {2: "missing_column"}
    reject = json.loads(next((out / "rejects" / "tasks").glob("*.jsonl")).read_text().splitlines()[0])
    assert reject["source_id"] == "t-03" and "'prompt'" in reject["detail"]
    # the stored mapping gives the documented default template's text: instruction, then input on a new line
    adapter = Adapter(Mapping.from_plan(stored["mapping"]))
    assert [adapter(r).turns[0].text for r in (tasks[0], tasks[1], tasks[3], tasks[4])] == [
        "次の言葉の読み方を教えてください。\n紅葉", "春に行きたい花見の名所はどこですか。", "朝ご飯に何を食べるとよいですか。",
        "次の文を丁寧な言い方に直してください\n明日そっちに行く"]
    kept = rows(out, "tasks")
    # stored as spoken: the line break a sentence break (a full stop added where the line had none)
    assert {i: r["turns"][0]["text"] for i, r in kept.items()} == {
        0: "次の言葉の読み方を教えてください。紅葉", 1: "春に行きたい花見の名所はどこですか。",
        3: "朝ご飯に何を食べるとよいですか。", 4: "次の文を丁寧な言い方に直してください。明日そっちに行く"}
    for i, r in kept.items():
        assert r["source_id"] == tasks[i]["uid"] and r["id"] == f"tasks-{tasks[i]['uid']}"
        assert roles(r) == ["user", "assistant"] and r["turns"][1]["text"] == tasks[i]["reply"]
        assert r["turns"][0]["audio"] is not None and r["turns"][1]["audio"] is None
    assert len(load_dataset(str(out), "tasks", split="train")) == len(kept) == 4

    q, a = "おすすめの観光地はどこですか。", "京都の嵐山がおすすめです。"
    chats = [
        {"conversations": [{"from": "sys", "value": "旅行案内係として答えてください。"}, {"from": "customer", "value": q},
                           {"from": "agent", "value": a}]},
        {"conversations": [{"from": "customer", "value": q}, {"from": "tool", "value": "{}"},
                           {"from": "agent", "value": a}]},  # a role value no flag maps
        {"conversations": [{"from": "customer", "value": "雨の日はどうしますか。"},
                           {"from": "agent", "value": "美術館はいかがですか。"}]},
    ]
    path = write_jsonl(tmp_path / "chats.jsonl", chats)
    assert spoken(out, "chats", path, "--format", "sharegpt", "--system-role", "sys", "--user-role", "customer",
                  "--assistant-role", "agent") == 0
    mapping = plan(out, "chats")["mapping"]
    assert mapping["format"] == "sharegpt" and mapping["messages_column"] == "conversations"
    assert (mapping["system_roles"], mapping["user_roles"], mapping["assistant_roles"]) == (
        ["sys"], ["customer"], ["agent"])
    assert_accounted(out, "chats", len(chats))
    assert reject_reasons(out, "chats") == {1: "unknown_role"}
    detail = json.loads(next((out / "rejects" / "chats").glob("*.jsonl")).read_text().splitlines()[0])["detail"]
    assert "'tool'" in detail and "'sys'" in detail
    kept = rows(out, "chats")
    assert roles(kept[0]) == ["system", "user", "assistant"] and roles(kept[2]) == ["user", "assistant"]
    system = kept[0]["turns"][0]
    assert system["text"] == "旅行案内係として答えてください。" and system["audio"] is None
    assert system["duration"] is None and system["transcript"] is None
    assert kept[0]["turns"][1]["audio"] is not None and kept[0]["turns"][2]["audio"] is None
    ds = load_dataset(str(out), "chats", split="train")
    assert len(ds) == 2 and [t["role"] for t in ds[0]["turns"]] == ["system", "user", "assistant"]
    assert ds[0]["turns"][0]["audio"] is None


def test_an_unrecognised_input_names_its_columns_and_the_flags(tmp_path, capsys):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"title": "a", "body": [{"who": "x", "said": "y"}]}])
    assert spoken(tmp_path / "o", "odd", path) == 2
    err = capsys.readouterr().err
    assert "cannot recognise the input's format" in err and "title" in err and "body (turn keys: said, who)" in err
    for flag in ("--messages-column", "--role-key", "--instruction-column", "--template"):
        assert flag in err
    assert spoken(tmp_path / "o", "odd", path, "--format", "alpaca") == 2
    assert "cannot read the input as --format alpaca" in capsys.readouterr().err
    assert spoken(tmp_path / "o", "odd", path, "--format", "sharegpt", "--template", "{{ title }}") == 2
    assert "do not apply to --format sharegpt" in capsys.readouterr().err
    assert spoken(tmp_path / "o", "odd", path, "--template", "{{ title") == 2
    assert "--template does not parse" in capsys.readouterr().err
    assert spoken(tmp_path / "o", "odd", "sample") == 2
    assert "one bundled file per shape" in capsys.readouterr().err


def test_licences_are_the_hubs_and_options_stay_with_their_corpus(tmp_path, capsys):
    assert "apache-2.0" in hub_licenses() and "cc-by-sa-3.0" in hub_licenses() and "other" in hub_licenses()
    args = (tmp_path / "o", "x", "sample", "--format", "alpaca", "--limit", "2")
    assert spoken(*args, license="apache2") == 2
    assert "not a Hugging Face Hub licence id (did you mean apache-2.0" in capsys.readouterr().err
    assert spoken(*args, license="other") == 2 and "--license-name" in capsys.readouterr().err
    assert main(["build", "spoken", "--config", "x", "--input", "sample", "--format", "alpaca", "--out",
                 str(tmp_path / "o"), *FAST]) == 2
    assert "needs --license" in capsys.readouterr().err
    assert spoken(*args, "--license-name", "in-house", "--license-link", "https://example.com/terms",
                  license="other") == 0
    data = DatasetCard.load(tmp_path / "o" / "README.md").data.to_dict()
    assert data["license"] == "other" and data["license_name"] == "in-house"
    assert data["license_link"] == "https://example.com/terms"
    assert main(["build", "jaspeech-sft-audio", "--config", "magpie", "--input", "sample", "--out",
                 str(tmp_path / "sft"), "--template", "{{ x }}", *FAST]) == 2
    assert "--template: options of `jaspeech build spoken`" in capsys.readouterr().err
    assert main(["build", "spoken", "--config", "bad/name", "--input", "sample", "--format", "alpaca", "--out",
                 str(tmp_path / "o"), "--license", "mit", *FAST]) == 2
    assert "a config name is letters" in capsys.readouterr().err


def test_same_command_resumes_a_template_or_mapping_change_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "o"
    first = ("--format", "alpaca", "--template", "{{ instruction }}", "--limit", "3")
    assert spoken(out, "t", "sample", *first) == 0
    manifest = next((out / "manifests" / "t").glob("train-*.json"))
    stamp = manifest.stat().st_mtime_ns
    assert spoken(out, "t", "sample", *first) == 0 and manifest.stat().st_mtime_ns == stamp  # resumed: nothing redone
    for changed in (("--format", "alpaca", "--template", "{{ instruction }}です", "--limit", "3"),
                    ("--format", "alpaca", "--output-column", "category", "--limit", "3")):
        assert spoken(out, "t", "sample", *changed) == 2
        err = capsys.readouterr().err
        assert "different settings" in err and "--overwrite" in err
    assert spoken(out, "t", "sample", "--format", "alpaca", "--template", "{{ instruction }}です", "--limit", "3",
                  "--overwrite") == 0
    assert rows(out, "t")[0]["turns"][0]["text"] == "日本の四季について簡単に説明してください。です"
    assert plan(out, "t")["template"] == "{{ instruction }}です"


@pytest.mark.parametrize("fmt", ["messages", "sharegpt", "alpaca"])
def test_auto_recognises_each_bundled_sample(fmt):
    from jaspeech.builders.sources import InputSource

    source = InputSource(str(SAMPLES_DIR / f"spoken-{fmt}.jsonl"), "", "")
    mapping, note = detect({"format": "auto"}, [raw for _, raw in source.iter_rows(limit=DETECT_ROWS)])
    assert mapping.format == fmt and note.startswith(f"--format auto chose {fmt}")


def test_the_default_alpaca_text_is_the_documented_template():
    default = Adapter(Mapping("alpaca", instruction_column="instruction", input_column="input", output_column="output"))
    documented = Adapter(Mapping("alpaca", output_column="output", template=ALPACA_TEMPLATE))
    for row in ({"instruction": "質問です。", "input": "資料です。", "output": "答え"},
                {"instruction": "質問です。", "input": "", "output": "答え"},
                {"instruction": "質問です。", "input": None, "output": "答え"}):
        assert default(row).turns[0].text == documented(row).turns[0].text


def test_speech_to_speech_variant_and_a_task_in_another_process(tmp_path):
    """`--speak both` names NAME-s2s; the system turn is never spoken. Shard 0 is built by the very command
    line a Slurm array task runs (another process that rebuilds the config from the stored plan)."""
    path = write_jsonl(tmp_path / "in.jsonl", [
        {"messages": [{"role": "system", "content": "明るく答えてください。"},
                      {"role": "user", "content": "週末のおすすめの過ごし方は何ですか。"},
                      {"role": "assistant", "content": "近くの公園でピクニックはいかがですか。"}]},
        {"messages": [{"role": "user", "content": "お茶とコーヒーのどちらが好きですか。"},
                      {"role": "assistant", "content": "どちらも香りが楽しめますね。"}]}])
    out = tmp_path / "o"
    assert spoken(out, "chat", path, "--speak", "both") == 0
    assert_accounted(out, "chat-s2s", 2)
    r = rows(out, "chat-s2s")[0]
    assert roles(r) == ["system", "user", "assistant"] and r["assistant_speaker"]
    assert [t["audio"] is not None for t in r["turns"]] == [False, True, True]

    flags = ["--template", "{{ q }}と聞かれました。", "--output-column", "a", "--num-shards", "2"]
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"q": "駅はどこですか", "a": "右です。"}, {"q": "今何時ですか", "a": "三時です。"},
                                             {"x": 1, "a": "はい。"}])
    assert spoken(out, "qa", qa, *flags, "--plan-only") == 0
    opts = BuildOptions(corpus="spoken", config="qa", out=out, input=str(qa), template="{{ q }}と聞かれました。",
                        output_column="a", license="apache-2.0", tts="openjtalk", asr="none")
    task = build_command(opts, 2) + ["--shard-index", "0"]
    assert "--template" in task and "--license" in task
    subprocess.run(task, check=True, capture_output=True, timeout=300)
    assert spoken(out, "qa", qa, *flags) == 0  # shard 1 here; the card covers both
    assert_accounted(out, "qa", 3)
    assert rows(out, "qa")[0]["turns"][0]["text"] == "駅はどこですかと聞かれました。"
    assert reject_reasons(out, "qa") == {2: "template_error"}
    meta = yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert {c["config_name"] for c in meta["configs"]} == {"chat-s2s", "qa"}
    assert corpus_spec("spoken", [plan(out, "qa")]).configs["qa"].id_field is None


@pytest.mark.slow
def test_real_end_to_end_with_the_whisper_round_trip(tmp_path):
    out = tmp_path / "o"
    assert main(["build", "spoken", "--config", "share", "--input", "sample", "--format", "sharegpt", "--limit", "3",
                 "--license", "apache-2.0", "--out", str(out), "--tts", "openjtalk", "--max-kana-cer", "0.3",
                 "--quiet"]) == 0
    assert_accounted(out, "share", 3)
    kept = rows(out, "share")
    assert kept and all("whisper" in r["asr_model"] for r in kept.values())
    for r in kept.values():
        for t in r["turns"]:
            assert (t["kana_cer"] is not None) == (t["role"] == "user")
    assert roles(kept[0]) == ["system", "user", "assistant"]


def test_a_mixed_folder_is_read_by_the_rule_and_published_without_local_paths(tmp_path, capsys):
    """JSONL, a JSON array, Parquet, a CSV, a README and a Jupyter checkpoint copy in one folder, and --out inside
    it: the readable rows planned once each, the others named in the error or skipped and recorded."""
    q, a = "近所でおいしいパン屋を探しています。", "駅前の商店街に人気の店があります。"
    row = lambda i: {"id": f"r{i}", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}  # noqa: E731
    data = tmp_path / "data"
    (data / "part" / ".ipynb_checkpoints").mkdir(parents=True)
    write_jsonl(data / "b.jsonl", [row(2), row(3)])
    write_jsonl(data / "part" / ".ipynb_checkpoints" / "b-checkpoint.jsonl", [row(2), row(3)])  # never read
    (data / "a.json").write_text(json.dumps([row(0), row(1)], ensure_ascii=False), encoding="utf-8")
    write_parquet(data / "part" / "c.parquet", [row(4)])
    (data / "extra.csv").write_text("q,a\nx,y\n", encoding="utf-8")
    (data / "README.md").write_text("# my data\n", encoding="utf-8")
    out = data / "build"  # inside the input folder: its files are never input
    assert spoken(out, "mine", data, "--id-column", "id") == 2
    err = capsys.readouterr().err
    assert "cannot read: README.md, extra.csv" in err and "--skip-unreadable" in err
    assert not (out / "manifests" / "mine" / "plan.json").exists()

    flags = ("--id-column", "id", "--skip-unreadable", "--source-name", "my-org/bakeries", "--source-url",
             "https://example.com/bakeries")
    assert spoken(out, "mine", data, *flags) == 0
    stored = plan(out, "mine")
    assert stored["input_files"] == [["a.json", (data / "a.json").stat().st_size],
                                     ["b.jsonl", (data / "b.jsonl").stat().st_size],
                                     ["part/c.parquet", (data / "part" / "c.parquet").stat().st_size]]
    assert [name for name, _ in stored["skipped_files"]] == ["README.md", "extra.csv"]
    assert stored["num_rows"] == 5 and stored["duplicates"] == {}
    assert_accounted(out, "mine", 5)
    assert [r["source_id"] for r in rows(out, "mine").values()] == ["r0", "r1", "r2", "r3", "r4"]
    assert spoken(out, "mine", data, *flags) == 0  # resumed: the build inside the folder is not new input

    card = (out / "README.md").read_text(encoding="utf-8")
    assert str(tmp_path) not in card and str(data) not in card
    assert "pretty_name: Spoken Japanese instructions from my-org/bakeries" in card
    assert "[my-org/bakeries](https://example.com/bakeries)" in card and "`extra.csv` (8 bytes)" in card
    assert "`data (local)`" in card
    assert {r["source_dataset"] for r in rows(out, "mine").values()} == {"my-org/bakeries"}
    for manifest in (out / "manifests" / "mine").glob("train-*.json"):
        assert str(tmp_path) not in manifest.read_text(encoding="utf-8")
    assert DatasetCard.load(out / "README.md").data.to_dict()["source_datasets"] == ["my-org/bakeries"]


def test_a_missing_relative_path_fails_at_once_without_the_hub(tmp_path, monkeypatch, capsys):
    import datasets

    def no_hub(*args, **kwargs):
        raise AssertionError("the Hub was asked for a local path")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for missing in ("data/nope.jsonl", "./nope", "data/sub/rows", "nope.parquet", "data/rows"):
        assert spoken(tmp_path / "o", "x", missing) == 2, missing
        err = capsys.readouterr().err
        assert "no such file or folder" in err and "hub:owner/name" in err, err


def test_dialogues_ending_on_the_user_speak_reject_or_keep_their_exchanges(tmp_path):
    q, a, q2 = "近所でおいしいパン屋を探しています。", "駅前の商店街に人気の店があります。", "何時に開きますか。"
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a},
                      {"role": "user", "content": q2}]},
        {"messages": [{"role": "user", "content": q2}]},  # no exchange at all
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}])
    out = tmp_path / "out"
    assert spoken(out, "keep", path) == 0
    assert reject_reasons(out, "keep") == {1: "no_response"}
    kept = rows(out, "keep")
    assert roles(kept[0]) == ["user", "assistant"] and kept[0]["provenance"]["dropped_turns"] == [
        {"role": "user", "text": q2}]
    assert spoken(out, "said", path, "--trailing-user", "speak") == 0
    kept = rows(out, "said")
    assert roles(kept[0]) == ["user", "assistant", "user"] and roles(kept[1]) == ["user"]
    assert kept[0]["turns"][2]["audio"] is not None and kept[0]["turns"][2]["text"] == q2
    assert kept[0]["provenance"] == {"trailing_user": "spoken", "dropped_turns": []} and kept[2]["provenance"] is None
    assert spoken(out, "strict", path, "--trailing-user", "reject") == 0
    assert reject_reasons(out, "strict") == {0: "no_response", 1: "no_response"}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| `keep` | keep-exchanges | 1 | 0 | 1 |" in card
    assert "| `said` | speak | 0 | 2 | 0 |" in card and "| `strict` | reject | 0 | 0 | 2 |" in card


def test_no_derivatives_licences_need_allow_nd(tmp_path, capsys):
    args = (tmp_path / "o", "nd", "sample", "--format", "alpaca", "--limit", "2")
    assert spoken(*args, license="cc-by-nc-nd-4.0") == 2
    err = capsys.readouterr().err
    assert "forbids derivatives" in err and "--allow-nd" in err
    assert spoken(*args, "--allow-nd", license="cc-by-nc-nd-4.0") == 0
    card = (tmp_path / "o" / "README.md").read_text(encoding="utf-8")
    assert "license: cc-by-nc-nd-4.0" in card and "(--allow-nd)" in card
