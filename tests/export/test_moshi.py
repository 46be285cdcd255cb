"""`export moshi`: a duplex build in both training layouts, read back."""
from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jaspeech.cli import main
from jaspeech.export.moshi import TARGETS, timing

CONFIG = "automultiturn-duplex"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    assert main(["build", "jaspeech-sft-audio", "--config", "automultiturn", "--duplex", "--input", "sample",
                 "--limit", "2", "--out", str(out), "--tts", "openjtalk", "--asr", "none", "--quiet"]) == 0
    return out


def _rows(build):
    return {r["id"]: r for r in pq.read_table(build / "data" / CONFIG).to_pylist()}


def _check_times(entries):
    """(speaker, word, start, end): sorted by start overall, monotonic and positive per speaker."""
    assert [e[2] for e in entries] == sorted(e[2] for e in entries)
    for spk in {e[0] for e in entries}:
        mine = [e for e in entries if e[0] == spk]
        assert all(e[3] > e[2] >= 0 for e in mine)
        assert all(b[2] >= a[2] for a, b in zip(mine, mine[1:]))


def test_jmoshi_layout_round_trips(build, tmp_path, capsys):
    out = tmp_path / "jm"
    assert main(["export", "moshi", str(build), str(out), "--config", CONFIG, "--layout", "jmoshi"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["exported"] == summary["written"] == 2 and summary["failed"] == 0
    for rid, row in _rows(build).items():
        x, sr = sf.read(out / "audio" / f"{rid}.wav", always_2d=True)
        assert x.shape[1] == 2 and abs(x.shape[0] / sr - row["duration"]) < 0.01
        assert sf.info(str(out / "audio" / f"{rid}.wav")).subtype == "PCM_16"
        words = json.loads((out / "text" / f"{rid}.json").read_text(encoding="utf-8"))
        assert set(words[0]) == {"speaker", "word", "start", "end"}
        assert Counter((w["speaker"], w["word"]) for w in words) == \
            Counter(("AB"[w["channel"]], w["word"]) for w in row["words"])  # every word, A = channel 0
        assert all(" " not in w["word"] for w in words)
        _check_times([(w["speaker"], w["word"], w["start"], w["end"]) for w in words])
        assert max(w["end"] for w in words) <= x.shape[0] / sr
    # resumable: a rerun writes nothing again
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    assert main(["export", "moshi", str(build), str(out), "--config", CONFIG, "--layout", "jmoshi"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["skipped"] == 2 and again["written"] == 0
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    assert not list(out.rglob("*.partial"))


def test_moshi_finetune_layout_round_trips_at_a_chosen_rate(build, tmp_path, capsys):
    out = tmp_path / "mf"
    assert main(["export", "moshi", str(build), str(out), "--config", CONFIG, "--layout", "moshi-finetune",
                 "--sample-rate", "24000"]) == 0
    capsys.readouterr()
    index = [json.loads(line) for line in (out / f"{CONFIG}.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = _rows(build)
    assert len(index) == len(rows)
    for entry in index:
        assert set(entry) == {"path", "duration"}
        x, sr = sf.read(entry["path"], always_2d=True)
        assert sr == 24000 and x.shape[1] == 2 and abs(x.shape[0] / sr - entry["duration"]) < 1e-3
        rid = entry["path"].rsplit("/", 1)[1][: -len(".wav")]
        alignments = json.loads((out / "audio" / f"{rid}.json").read_text(encoding="utf-8"))["alignments"]
        assert {a[2] for a in alignments} <= {"SPEAKER_MAIN", "SPEAKER_OTHER"}
        assert Counter((a[2], a[0]) for a in alignments) == \
            Counter((TARGETS["moshi-finetune"].labels[w["channel"]], w["word"]) for w in rows[rid]["words"])
        _check_times([(a[2], a[0], a[1][0], a[1][1]) for a in alignments])
        # the model's own words (SPEAKER_MAIN) are spoken on the left channel
        main_words = [a for a in alignments if a[2] == "SPEAKER_MAIN"]
        a = main_words[0]
        seg = x[int(a[1][0] * sr): int(a[1][1] * sr)]
        assert abs(seg[:, 0]).max() > 0.01


def test_a_row_that_cannot_be_exported_is_named(build, tmp_path, capsys):
    """A row whose stored audio does not decode: named in the summary and export-failures.jsonl, the others kept."""
    import shutil

    import pyarrow as pa

    broken = tmp_path / "broken"
    shutil.copytree(build, broken)
    [shard] = sorted((broken / "data" / CONFIG).glob("*.parquet"))
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[0]["audio"] = {"bytes": b"not audio", "path": None}
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    out = tmp_path / "o"
    assert main(["export", "moshi", str(broken), str(out), "--config", CONFIG]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed"] == 1 and summary["exported"] == len(rows) - 1
    [failure] = [json.loads(line) for line in (out / "export-failures.jsonl").read_text().splitlines()]
    assert failure["id"] == rows[0]["id"] and failure["error"]
    assert not (out / "audio" / f"{rows[0]['id']}.wav").exists()
    with pytest.raises(ValueError, match="unknown --layout"):
        from jaspeech.export.moshi import export_moshi

        export_moshi(tmp_path, tmp_path / "o", CONFIG, layout="nemo")
    with pytest.raises(FileNotFoundError, match="build the config first"):
        export_moshi(tmp_path, tmp_path / "o", CONFIG)
    words = [{"channel": 1, "word": "b", "start": 0.5, "end": 0.7}, {"channel": 0, "word": "a", "start": 0.1,
                                                                       "end": 0.30000001}]
    assert timing(words, "jmoshi") == [{"speaker": "A", "word": "a", "start": 0.1, "end": 0.3},
                                       {"speaker": "B", "word": "b", "start": 0.5, "end": 0.7}]
