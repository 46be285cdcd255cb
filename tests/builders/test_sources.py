import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaspeech.builders.sources import InputSource, Malformed, looks_local


def test_jsonl_lines_become_rows_or_malformed(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{broken\n\xff\xfe not utf8\n[1, 2]\n{"a": 2}\n')
    rows = list(InputSource(str(path), "magpie", "x/y").iter_rows())
    assert [p for p, _ in rows] == [0, 1, 2, 3, 4]  # the blank line is not a row
    assert rows[0][1] == {"a": 1} and rows[4][1] == {"a": 2}
    assert isinstance(rows[1][1], Malformed) and "invalid JSON" in rows[1][1].detail
    assert isinstance(rows[2][1], Malformed) and "UTF-8" in rows[2][1].detail
    assert rows[3][1] == [1, 2]  # valid JSON, wrong shape: the adapter rejects it


def test_folder_of_jsonl_json_and_parquet(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"q": 0}\n{"q": 1}\n', encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps([{"q": 2}]), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist([{"q": 3}, {"q": 4}]), tmp_path / "c.parquet")
    src = InputSource(str(tmp_path), "magpie", "x/y")
    assert [r["q"] for _, r in src.iter_rows()] == [0, 1, 2, 3, 4]
    assert src.count() == 5 and src.count(limit=3) == 3
    assert [p for p, _ in src.iter_rows(limit=2)] == [0, 1]


def test_shards_partition_positions(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(f'{{"i": {i}}}\n' for i in range(23)), encoding="utf-8")
    src = InputSource(str(path), "magpie", "x/y")
    seen = [p for k in range(4) for p, _ in src.iter_rows(k, 4)]
    assert sorted(seen) == list(range(23))
    assert all(p % 4 == 1 for p, _ in src.iter_rows(1, 4))


def test_sample_and_bad_inputs():
    assert InputSource("sample", "magpie", "x/y").count() >= 30
    with pytest.raises(FileNotFoundError):
        InputSource("./no/such/file.jsonl", "magpie", "x/y")
    assert InputSource("llm-jp/magpie-sft-v1.0", "magpie", "llm-jp/magpie-sft-v1.0").is_hub


def test_a_folder_is_read_by_a_stated_rule(tmp_path):
    """.jsonl/.json/.parquet in the order of their relative paths; hidden files and folders, __pycache__ and the
    build's output never read; any other file named in the error, or skipped and listed with skip_unreadable."""
    for name in ("b.jsonl", "a/z.jsonl", "a/b.json", ".hidden.jsonl", ".ipynb_checkpoints/b-checkpoint.jsonl",
                 "__pycache__/x.jsonl", "out/data.jsonl"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text('{"q": 1}\n' if not name.endswith(".json") else '[{"q": 1}]',
                                     encoding="utf-8")
    src = InputSource(str(tmp_path), "magpie", "x/y", exclude=(tmp_path / "out",))
    assert [n for n, _ in src.fingerprint()] == ["a/b.json", "a/z.jsonl", "b.jsonl"] and src.count() == 3
    (tmp_path / "notes.csv").write_text("q\n1\n", encoding="utf-8")
    (tmp_path / "a" / "README.md").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match=r"cannot read: a/README.md, notes.csv\. .*--skip-unreadable"):
        InputSource(str(tmp_path), "magpie", "x/y", exclude=(tmp_path / "out",))
    src = InputSource(str(tmp_path), "magpie", "x/y", skip_unreadable=True, exclude=(tmp_path / "out",))
    assert src.skipped_files() == [["a/README.md", 1], ["notes.csv", 4]] and src.count() == 3


def test_a_missing_path_is_told_apart_from_a_hub_id():
    for local in ("data/nope.jsonl", "./x", "../x", "/abs/x", "~/x", "a/b/c", "rows.parquet", "dir\\x"):
        assert looks_local(local), local
        with pytest.raises(FileNotFoundError, match="no such file or folder"):
            InputSource(local, "magpie", "x/y")
    for hub in ("llm-jp/magpie-sft-v1.0", "kanhatakeyama/AutoMultiTurnByCalm3-22B"):
        assert not looks_local(hub) and InputSource(hub, "magpie", hub).is_hub
    src = InputSource("hub:someone/rows.jsonl", "magpie", "x/y")  # a hub id that looks like a file name
    assert src.is_hub and src.hub_name == "someone/rows.jsonl"
    with pytest.raises(FileNotFoundError, match="owner/name"):
        InputSource("hub:nope", "magpie", "x/y")
