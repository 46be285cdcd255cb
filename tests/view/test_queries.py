"""The viewer's query layer on shards with known scores, checked against a plain Python computation.

`--asr none` builds carry no scores, and the real ASR is too slow for many rows in a test, so these
shards are written directly in the build's own schema (`SFT_FEATURES`), in several files and row groups.
"""
from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaspeech.builders.schema import SFT_FEATURES
from jaspeech.view.queries import BadQuery, NotFound, RowQuery, char_diff, open_corpus
from tests.view.conftest import flac_bytes

WORDS = ["天気", "京都", "桜", "電車", "朝ごはん", "図書館", "音楽", "旅行"]


def make_rows(n: int, seed: int, start: int = 0) -> list[dict]:
    rng = random.Random(seed)
    clip = flac_bytes(np.zeros(1600))
    rows = []
    for i in range(start, start + n):
        turns = []
        for k in range(rng.choice([1, 2])):
            scored = rng.random() > 0.2
            text = f"{rng.choice(WORDS)}について{i}番目の質問{k}です。"
            rated = rng.random() > 0.2  # some turns built with --quality none: signal checks, no DNSMOS
            turns.append({"role": "user", "text": text, "audio": {"bytes": clip, "path": None},
                          "duration": rng.uniform(0.5, 9), "transcript": (text + "ね") if scored else None,
                          "cer": rng.uniform(0, 0.5) if scored else None,
                          "kana_cer": rng.choice([0.0, rng.uniform(0, 0.3)]) if scored else None,
                          "dnsmos": {"sig": 3.5, "bak": 4.0, "ovrl": rng.uniform(1.5, 4.0), "p808": 3.8} if rated else None,
                          "signal": {"peak": 0.9, "clipping": 0.0, "leading_silence": rng.uniform(0, 0.5),
                                     "trailing_silence": rng.uniform(0, 0.5), "rms_db": -20.0,
                                     "longest_silence": rng.choice([0.1, rng.uniform(0, 3)])}})
            turns.append({"role": "assistant", "text": "はい。", "audio": None, "duration": None, "transcript": None,
                          "cer": None, "kana_cer": None, "dnsmos": None, "signal": None})
        rows.append({"id": f"magpie-{i:05d}", "source_dataset": "llm-jp/magpie-sft-v1.0", "source_id": str(i),
                     "source_index": i, "speaker": rng.choice([f"spk{s:02d}" for s in range(5)] + [None]),
                     "duration": sum(t["duration"] or 0 for t in turns), "tts_model": "test", "asr_model": "test",
                     "turns": turns})
    return rows


def write_shard(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SFT_FEATURES.arrow_schema), path, row_group_size=16)


def worst(row, key):
    values = [t[key] for t in row["turns"] if t["role"] == "user" and t[key] is not None]
    return max(values) if values else None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("scored")
    rows = make_rows(70, seed=1) + make_rows(50, seed=2, start=70)
    write_shard(out / "data/magpie/train-00000-of-00002.parquet", rows[:70])
    write_shard(out / "data/magpie/train-00001-of-00002.parquet", rows[70:])
    other = make_rows(10, seed=3, start=500)
    write_shard(out / "data/automultiturn/train-00000-of-00001.parquet", other)
    (out / "data/automultiturn/train-00001-of-00002.parquet").write_bytes(b"PAR1 this is not parquet")
    (out / "rejects/magpie").mkdir(parents=True)
    (out / "rejects/magpie/train-00000-of-00002.jsonl").write_text(
        json.dumps({"source_index": 200, "source_id": "200", "reason": "roundtrip", "detail": "d"}) + "\n", "utf-8")
    (out / "rejects/magpie/train-00001-of-00002.jsonl").write_text("{not json\n", "utf-8")
    return out, rows, other


def test_score_filters_match_a_plain_computation(corpus):
    out, rows, other = corpus
    index = open_corpus(out)
    for lo, hi in ((0.05, 0.2), (None, 0.0), (0.1, None)):
        got = [r["id"] for r in index.query_rows(RowQuery(config="magpie", kana_cer=(lo, hi), limit=500))["rows"]]
        expected = [r["id"] for r in rows if worst(r, "kana_cer") is not None
                    and (lo is None or np.float32(worst(r, "kana_cer")) >= lo)
                    and (hi is None or np.float32(worst(r, "kana_cer")) <= hi)]
        assert got == expected and expected, (lo, hi)
    page = index.query_rows(RowQuery(cer=(0.2, 0.4), duration=(2.0, 12.0), limit=500))
    expected = [r for r in other + rows  # configs come in name order
                if worst(r, "cer") is not None and 0.2 <= np.float32(worst(r, "cer")) <= 0.4
                and 2.0 <= np.float32(r["duration"]) <= 12.0]
    assert [r["id"] for r in page["rows"]] == [r["id"] for r in expected]
    assert page["hours"] == pytest.approx(sum(r["duration"] for r in expected) / 3600, rel=1e-5)


def _quality(row, key):
    """The view's per-row quality figure, computed plainly: lowest OVRL / longest silence of the spoken turns."""
    if key == "ovrl":
        values = [np.float32(t["dnsmos"]["ovrl"]) for t in row["turns"] if t["dnsmos"]]
        return min(values) if values else None
    values = [np.float32(t["signal"][k]) for t in row["turns"] if t["signal"]
              for k in ("leading_silence", "trailing_silence", "longest_silence")]
    return max(values) if values else None


def test_quality_filters_and_sorting_match_a_plain_computation(corpus):
    out, rows, _ = corpus
    index = open_corpus(out)
    for (lo, hi), key, field in (((None, 3.0), "ovrl", "ovrl"), ((2.0, 2.5), "ovrl", "ovrl"),
                                 ((1.0, None), "silence", "silence")):
        got = index.query_rows(RowQuery(config="magpie", limit=500, **{field: (lo, hi)}))["rows"]
        expected = [r["id"] for r in rows if _quality(r, key) is not None
                    and (lo is None or _quality(r, key) >= lo) and (hi is None or _quality(r, key) <= hi)]
        assert [r["id"] for r in got] == expected and expected, (key, lo, hi)
        assert all(r[key] == pytest.approx(float(_quality(rows[r["n"]], key))) for r in got)
    for order in (False, True):
        got = index.query_rows(RowQuery(config="magpie", sort="ovrl", descending=order, limit=500))["rows"]
        rated = [r["ovrl"] for r in got if r["ovrl"] is not None]
        assert rated == sorted(rated, reverse=order) and all(r["ovrl"] is None for r in got[len(rated):])
        assert len(rated) == sum(_quality(r, "ovrl") is not None for r in rows) < len(rows)
    assert RowQuery.parse({"ovrl_max": "3", "sort": "ovrl"}).ovrl == (None, 3.0)
    turn = index.row("magpie", 5)["turns"][0]
    assert turn["signal"]["longest_silence"] == pytest.approx(rows[5]["turns"][0]["signal"]["longest_silence"])
    assert (turn["dnsmos"] is None) == (rows[5]["turns"][0]["dnsmos"] is None)
    assert index.row("magpie", 5)["turns"][1]["dnsmos"] is None  # an unspoken turn


def test_sorting_keeps_unscored_and_speakerless_rows_last(corpus):
    out, rows, _ = corpus
    index = open_corpus(out)
    for order in (False, True):
        got = index.query_rows(RowQuery(config="magpie", sort="kana_cer", descending=order, limit=500))["rows"]
        scored = [r["kana_cer"] for r in got if r["kana_cer"] is not None]
        assert scored == sorted(scored, reverse=order)
        assert all(r["kana_cer"] is None for r in got[len(scored):])
        assert len(got) == len(rows)
    for order in (False, True):
        got = index.query_rows(RowQuery(sort="speaker", descending=order, limit=500))["rows"]
        named = [r["speaker"] for r in got if r["speaker"] is not None]
        assert named == sorted(named, reverse=order) and all(r["speaker"] is None for r in got[len(named):])
        ties = [r["n"] for r in got if r["speaker"] == named[0] and r["config"] == "magpie"]
        assert ties == sorted(ties)  # equal keys keep the file order
    ids = [r["id"] for r in index.query_rows(RowQuery(sort="id", descending=True, limit=500))["rows"]]
    assert ids == sorted(ids, reverse=True)


def test_text_search_reaches_transcripts_and_ids(corpus):
    out, rows, _ = corpus
    index = open_corpus(out)
    heard = [r["id"] for r in rows if any((t["transcript"] or "").endswith("ね") for t in r["turns"])]
    got = [r["id"] for r in index.query_rows(RowQuery(config="magpie", text="です。ね", limit=500))["rows"]]
    assert got == heard
    assert [r["id"] for r in index.query_rows(RowQuery(text="MAGPIE-00042"))["rows"]] == ["magpie-00042"]


def test_rows_and_audio_from_later_row_groups_and_shards(corpus):
    out, rows, _ = corpus
    index = open_corpus(out)
    for n in (0, 17, 69, 70, 101, 119):
        row = index.row("magpie", n)
        assert row["fields"]["id"] == rows[n]["id"]
        assert [t["text"] for t in row["turns"]] == [t["text"] for t in rows[n]["turns"]]
        assert index.audio("magpie", n, 0) == rows[n]["turns"][0]["audio"]["bytes"]
        scored = [t for t in row["turns"] if t["transcript"]]
        for t in scored:
            assert "".join(s["a"] for s in t["diff"]["raw"]) == t["text"]
            assert "".join(s["b"] for s in t["diff"]["raw"]) == t["transcript"]
    with pytest.raises(NotFound, match="has no row 120"):
        index.row("magpie", 120)
    with pytest.raises(NotFound, match="no audio for turn 1"):
        index.audio("magpie", 0, 1)


def test_broken_files_are_reported_and_the_rest_still_shows(corpus):
    out, rows, other = corpus
    index = open_corpus(out)
    assert any("skipped data/automultiturn/train-00001-of-00002.parquet" in w for w in index.warnings)
    assert any("skipped rejects/magpie/train-00001-of-00002.jsonl" in w for w in index.warnings)
    assert index.query_rows(RowQuery(config="automultiturn"))["total"] == len(other)
    by_config = {c["config"]: c for c in index.overview()["configs"]}
    assert by_config["magpie"]["rejects"] == 1 and by_config["automultiturn"]["rows"] == len(other)


def test_char_diff_marks_what_was_not_heard():
    assert char_diff("三月に行く", "散歩に行く") == [{"op": "replace", "a": "三月", "b": "散歩"},
                                                 {"op": "equal", "a": "に行く", "b": "に行く"}]
    assert char_diff("", "あ") == [{"op": "insert", "a": "", "b": "あ"}]


def test_parse_rejects_nonsense():
    with pytest.raises(BadQuery, match="kana_min must be a finite number"):
        RowQuery.parse({"kana_min": "inf"})
    assert RowQuery.parse({"kana_max": "0.1", "sort": "cer", "order": "desc"}).kana_cer == (None, 0.1)
    assert RowQuery.parse({}) == RowQuery()


def test_a_duplex_row_gives_its_stereo_audio_segments_and_words(tmp_path):
    """A real `-duplex` build (OpenJTalk, --asr none): listed, searchable, and its row has the two-lane timeline's
    segments and words, its stereo recording as the row's audio."""
    import io

    import soundfile as sf

    from jaspeech.cli import main

    out = tmp_path / "out"
    assert main(["build", "jaspeech-sft-audio", "--config", "automultiturn", "--duplex", "--input", "sample",
                 "--limit", "2", "--out", str(out), "--tts", "openjtalk", "--asr", "none", "--quiet"]) == 0
    index = open_corpus(out)
    assert not index.warnings
    listed = index.query_rows(RowQuery(config="automultiturn-duplex"))["rows"]
    assert len(listed) == 2 and all(r["duration"] > 0 and r["text"] for r in listed)
    stored = {r["id"]: r for r in pq.read_table(out / "data" / "automultiturn-duplex").to_pylist()}
    row = index.row("automultiturn-duplex", 0)
    want = stored[row["fields"]["id"]]
    assert [(g["kind"], g["channel"], g["start"]) for g in row["segments"]] == \
        [(g["kind"], g["channel"], pytest.approx(g["start"])) for g in want["segments"]]
    assert [w["word"] for w in row["words"]] == [w["word"] for w in want["words"]]
    assert [t["role"] for t in row["turns"]] == ["user", "assistant"] * 2 and not any(t["audio_url"] for t in row["turns"])
    x, _ = sf.read(io.BytesIO(index.audio("automultiturn-duplex", 0, 0)), always_2d=True)
    assert x.shape[1] == 2 and row["audio_url"].endswith("/0")
