"""The one-way build flow: plan once, shard tasks that read only their rows (import circles: test_imports.py).

The digest test compares today's builds of the bundled samples with `tests/data/build-digest.json`,
recorded with the code before the flow was restructured (see tests/builders/digest.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaspeech.builders import sources
from jaspeech.builders.build import BuildOptions, NoPlan, build
from jaspeech.builders.plan import find_duplicates
from jaspeech.builders.sources import InputSource
from jaspeech.cli import main
from tests.builders.digest import SAMPLE_BUILDS, SAMPLE_OPTIONS, config_digest
from tests.conftest import DATA, assert_accounted, write_jsonl

def _rows(n: int) -> list[dict]:
    return [{"id": f"r{i}", "conversations": [{"role": "user", "content": f"{i}番目の質問です。"},
                                            {"role": "assistant", "content": "はい。"}]} for i in range(n)]


def _opts(out: Path, path: Path, **kw) -> BuildOptions:
    return BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input=str(path), out=out, tts="openjtalk",
                        asr="none", quiet=True, **kw)


@pytest.mark.slow
def test_sample_builds_equal_the_recorded_digest(tmp_path):
    recorded = json.loads((DATA / "build-digest.json").read_text(encoding="utf-8"))
    for corpus, config in SAMPLE_BUILDS:
        out = tmp_path / corpus
        build(BuildOptions(corpus=corpus, config=config, input="sample", out=out, quiet=True, **SAMPLE_OPTIONS))
        assert config_digest(out, config) == recorded[f"{corpus}/{config}"], f"{corpus}/{config} changed"


def test_a_shard_task_reads_only_its_own_rows_of_the_stored_plan(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "in.jsonl", _rows(12))
    out = tmp_path / "out"
    build(_opts(out, path, num_shards=3, plan_only=True))
    plan = json.loads((out / "manifests" / "magpie" / "plan.json").read_text())
    assert plan["num_rows"] == 12 and plan["num_shards"] == 3 and not (out / "data").exists()

    # every row outside shard 1 becomes unreadable garbage; the task must neither parse nor count them
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(line if i % 3 == 1 else b"\xff\xfe{garbage\n" for i, line in enumerate(lines)))
    parsed = []
    real_parse = sources._parse_line
    monkeypatch.setattr(sources, "_parse_line", lambda line: parsed.append(line) or real_parse(line))
    for scan in ("count", "iter_column"):
        monkeypatch.setattr(InputSource, scan, lambda *a, **k: pytest.fail("a shard task scanned the input"))
    summary = build(_opts(out, path, num_shards=3, shard_index=1))
    assert summary["shards_done"] == 1 and summary["rows"] == 4 and summary["rejects"] == 0
    assert len(parsed) == 4 and all(b"garbage" not in line for line in parsed)


def test_a_shard_task_without_a_plan_names_the_command_that_makes_it(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", _rows(3))
    with pytest.raises(NoPlan, match="--plan-only"):
        build(_opts(tmp_path / "out", path, num_shards=2, shard_index=0))


def test_a_resumed_build_does_not_plan_again_but_notices_a_changed_input(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "in.jsonl", _rows(6))
    out = tmp_path / "out"
    build(_opts(out, path, num_shards=2, plan_only=True))
    with monkeypatch.context() as m:
        m.setattr(InputSource, "iter_column", lambda *a, **k: pytest.fail("planned again"))
        assert build(_opts(out, path))["complete"]
    assert_accounted(out, "magpie", 6)
    write_jsonl(path, _rows(7))
    assert main(["build", "jaspeech-sft-audio", "--config", "magpie", "--input", str(path), "--out", str(out),
                 "--tts", "openjtalk", "--asr", "none", "--quiet"]) == 2


def test_slurm_dry_run_reads_no_input(tmp_path, monkeypatch, capsys):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("the dry run read the input"))
    out = tmp_path / "never-built"
    argv = ["build", "jaspeech-sft-audio", "--config", "magpie", "--num-shards", "64", "--executor", "slurm",
            "--dry-run", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "#SBATCH --array=0-63%64" in captured.out and "--plan-only" in captured.err
    assert main(argv[:3] + argv[5:]) == 2  # without --num-shards and without a plan there is no array size
    assert "--num-shards" in capsys.readouterr().err


def test_parquet_shards_convert_only_their_rows_and_skip_row_groups_without_any(tmp_path, monkeypatch):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist([{"q": i} for i in range(100)]), path, row_group_size=4)
    read = []
    real = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", lambda self, i, *a, **k: read.append(i) or real(self, i))
    src = InputSource(str(path), "magpie", "x/y")
    rows = list(src.iter_rows(shard=5, num_shards=10, limit=95))
    assert [p for p, _ in rows] == list(range(5, 95, 10)) and all(r["q"] == p for p, r in rows)
    assert read == [1, 3, 6, 8, 11, 13, 16, 18, 21]  # groups of 4 rows holding a position ≡ 5 below 95


def test_hub_inputs_are_streamed_in_the_same_order(tmp_path):
    """A local dataset folder read through `datasets` streaming: the same code path as a hub id."""
    folder = tmp_path / "repo" / "data"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(_rows(1500)[:1100]), folder / "train-00000-of-00002.parquet",
                   row_group_size=300)
    pq.write_table(pa.Table.from_pylist(_rows(1500)[1100:]), folder / "train-00001-of-00002.parquet")
    files = InputSource(str(folder.parent), "magpie", "x/y")
    hub = InputSource(str(folder.parent), "magpie", "x/y")
    hub.files = []  # as for a hub id: read with load_dataset(..., streaming=True)
    assert hub.is_hub
    for shard in (0, 3):
        assert list(hub.iter_rows(shard, 7, limit=1400)) == list(files.iter_rows(shard, 7, limit=1400))
    assert hub.count() == 1500 and [r["id"] for _, r in hub.iter_column("id", limit=3)] == ["r0", "r1", "r2"]


def test_find_duplicates_maps_every_later_copy_to_the_first():
    ids = np.array([5, 9, 5, 1, 9, 5, 7, 5], dtype=np.uint64)
    assert find_duplicates(ids) == {"2": 0, "5": 0, "7": 0, "4": 1}
    assert find_duplicates(np.arange(1000, dtype=np.uint64)) == {}
