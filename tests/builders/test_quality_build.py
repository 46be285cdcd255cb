"""The quality stage in builds: every spoken turn of every TTS corpus scored, the filters, `jaspeech rescore`.

Real DNSMOS model runs on OpenJTalk speech (fast and deterministic; the Kokoro clips are in
tests/synthesis/test_quality.py); `--asr none` where the ear is not the point.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from jaspeech.builders import corpus_spec
from jaspeech.builders.build import BuildOptions, build
from jaspeech.builders.writer import sha256_file
from jaspeech.cli import main
from jaspeech.synthesis.quality import DNSMOS_FIELDS, SIGNAL_FIELDS
from tests.conftest import assert_accounted

FAST = {"tts": "openjtalk", "asr": "none", "quiet": True}


def _opts(corpus: str, config: str, out, **kw) -> BuildOptions:
    return BuildOptions(corpus=corpus, config=config, input="sample", out=out, **{**FAST, **kw})


def _rows(out, config) -> list[dict]:
    return [r for f in sorted((out / "data" / config).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def _rejects(out, config) -> list[dict]:
    return [json.loads(line) for f in sorted((out / "rejects" / config).glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines()]


def test_every_tts_config_schema_has_the_quality_fields():
    for name in ("jaspeech-sft-audio", "jaspeech-dpo-audio"):
        spec = corpus_spec(name)
        for config in spec.configs:
            features = spec.features_of(config)  # a -duplex config scores its segments (turns and backchannels)
            turn = features["segments" if "segments" in features else "turns"].feature
            assert list(turn["dnsmos"]) == list(DNSMOS_FIELDS) and list(turn["signal"]) == list(SIGNAL_FIELDS)
            assert all(v.dtype == "float32" for v in [*turn["dnsmos"].values(), *turn["signal"].values()])


@pytest.mark.slow
def test_every_spoken_turn_of_sft_s2s_and_dpo_is_scored(tmp_path):
    builds = [("jaspeech-sft-audio", "magpie", 2), ("jaspeech-sft-audio", "magpie-s2s", 1),
              ("jaspeech-dpo-audio", "hh-rlhf", 1)]
    for corpus, config, limit in builds:
        out = tmp_path / corpus
        summary = build(_opts(corpus, config, out, limit=limit, quality="dnsmos"))
        assert summary["quality_seconds"] > 0 and summary["rows"] >= 1
        ds = load_dataset(str(out), config, split="train")
        assert set(ds.features["turns"].feature["dnsmos"]) == set(DNSMOS_FIELDS)
        spoken_roles = set()
        for row in _rows(out, config):
            for t in row["turns"]:
                if t["audio"] is None:
                    assert t["dnsmos"] is None and t["signal"] is None
                    continue
                spoken_roles.add(t["role"])
                assert all(1.0 <= t["dnsmos"][k] <= 5.0 for k in DNSMOS_FIELDS), t["dnsmos"]
                assert all(math.isfinite(t["signal"][k]) for k in SIGNAL_FIELDS)
                assert 0 < t["signal"]["peak"] <= 1 and t["signal"]["leading_silence"] < t["duration"]
        assert spoken_roles == ({"user", "assistant"} if config.endswith("s2s") else {"user"})
        manifest = json.loads(next((out / "manifests" / config).glob("train-*.json")).read_text())
        assert manifest["quality_scorer"].startswith("dnsmos-") and manifest["quality_seconds"] > 0


@pytest.mark.slow
def test_min_dnsmos_rejects_low_quality_rows_with_their_scores_and_keeps_their_audio(tmp_path):
    out = tmp_path / "out"
    bound = 2.6  # OpenJTalk's voice scores OVRL 2.5-2.8 on these rows: some fall below, some do not
    build(_opts("jaspeech-sft-audio", "magpie", out, limit=3, quality="dnsmos", min_dnsmos=bound,
                keep_reject_audio=True))
    kept, rejected = assert_accounted(out, "magpie", 3)
    low = [r for r in _rejects(out, "magpie") if r["reason"] == "low_quality"]
    assert kept and low and len(low) == len(rejected)
    for r in low:
        found = re.fullmatch(r"turn 0: DNSMOS OVRL ([\d.]+) < 2\.6 \(sig ([\d.]+), bak ([\d.]+), ovrl ([\d.]+), "
                             r"p808 ([\d.]+)\)", r["detail"])
        assert found and float(found[1]) < bound and found[1] == found[4], r["detail"]
    assert all(t["dnsmos"]["ovrl"] >= bound for row in _rows(out, "magpie") for t in row["turns"] if t["dnsmos"])
    heard = pq.read_table(out / "rejects/magpie/train-00000-of-00001.audio.parquet").to_pylist()
    assert sorted(a["source_index"] for a in heard) == sorted(r["source_index"] for r in low)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| 2.6 |" in card and "`low_quality`" in card  # the threshold in the pipeline table, the reason counted


def test_max_silence_rejects_dead_air_and_min_dnsmos_needs_the_model(tmp_path, capsys):
    out = tmp_path / "out"
    bound = 0.3  # OpenJTalk leaves 0.24-0.37 s before and after the speech on these rows
    build(_opts("jaspeech-sft-audio", "magpie", out, limit=4, max_silence=bound))
    kept, _ = assert_accounted(out, "magpie", 4)
    long = [r for r in _rejects(out, "magpie") if r["reason"] == "long_silence"]
    assert kept and long
    for r in long:
        found = re.match(r"turn 0: (leading|trailing|longest) silence ([\d.]+) s > 0\.3 s \(leading [\d.]+ s, "
                         r"longest [\d.]+ s, trailing [\d.]+ s\)$", r["detail"])
        assert found and float(found[2]) > bound, r["detail"]
    for row in _rows(out, "magpie"):
        s = row["turns"][0]["signal"]
        assert max(s["leading_silence"], s["trailing_silence"], s["longest_silence"]) <= bound
        assert row["turns"][0]["dnsmos"] is None  # --quality none (the test suite's default)
    assert main(["build", "jaspeech-sft-audio", "--config", "magpie", "--input", "sample", "--out",
                 str(tmp_path / "x"), "--quality", "none", "--min-dnsmos", "3"]) == 2
    assert "--quality none does not compute" in capsys.readouterr().err


def _without_quality(out, config) -> None:
    """Rewrite a shard as a build made before the quality stage: no dnsmos/signal fields, no scorer recorded."""
    path = next((out / "data" / config).glob("*.parquet"))
    rows = pq.read_table(path).to_pylist()
    for r in rows:
        for t in r["turns"]:
            del t["dnsmos"], t["signal"]
    features = dict(corpus_spec("jaspeech-sft-audio").features_of(config))
    turn = {k: v for k, v in features["turns"].feature.items() if k not in ("dnsmos", "signal")}
    schema = datasets.Features({**features, "turns": datasets.List(turn)}).arrow_schema
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=64, compression="zstd")
    manifest_path = next((out / "manifests" / config).glob("train-*.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][str(path.relative_to(out))] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    del manifest["quality_scorer"]
    manifest_path.write_text(json.dumps(manifest))
    plan_path = out / "manifests" / config / "plan.json"
    plan = json.loads(plan_path.read_text())
    del plan["quality"], plan["min_dnsmos"], plan["max_silence"]
    plan_path.write_text(json.dumps(plan))


@pytest.mark.slow
def test_rescore_scores_an_old_build_like_a_build_and_a_second_run_changes_nothing(tmp_path, capsys):
    scored, out = tmp_path / "scored", tmp_path / "old"
    build(_opts("jaspeech-sft-audio", "magpie", scored, limit=3, quality="dnsmos"))
    build(_opts("jaspeech-sft-audio", "magpie", out, limit=3))  # --quality none
    build(_opts("jaspeech-sft-audio", "automultiturn", out, limit=1))
    _without_quality(out, "magpie")
    old = _rows(out, "magpie")
    assert "dnsmos" not in old[0]["turns"][0]

    assert main(["rescore", str(out), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["magpie"]["rescored"] == summary["automultiturn"]["rescored"] == 1
    new = _rows(out, "magpie")
    assert new == _rows(scored, "magpie")  # the build's own scores, everything else as it was
    assert [{**r, "turns": [{k: v for k, v in t.items() if k not in ("dnsmos", "signal")} for t in r["turns"]]}
            for r in new] == old
    assert all(t["dnsmos"] for r in _rows(out, "automultiturn") for t in r["turns"] if t["audio"])
    ds = load_dataset(str(out), "magpie", split="train")
    assert ds[0]["turns"][0]["dnsmos"]["ovrl"] == pytest.approx(new[0]["turns"][0]["dnsmos"]["ovrl"])
    assert "| `magpie` | 3 |" in (out / "README.md").read_text(encoding="utf-8")  # the card's quality table
    assert json.loads((out / "manifests/magpie/plan.json").read_text())["quality"] == "dnsmos"
    from jaspeech.builders.environment import current_environment

    assert json.loads((out / "manifests/magpie/train-00000-of-00001.json").read_text())["rescore_environment"] == \
        current_environment()  # what scored the columns, beside the build's own `environment`

    shards = sorted((out / "data").rglob("*.parquet"))
    digests = {p: sha256_file(p) for p in shards}
    assert main(["rescore", str(out), "--quiet"]) == 0  # a second run changes nothing
    assert all(v["rescored"] == 0 and v["skipped"] == 1 for v in json.loads(capsys.readouterr().out).values())
    assert {p: sha256_file(p) for p in shards} == digests

    # killed between the Parquet's rename and the manifest's: the rerun finishes the shard without scoring it again
    manifest = out / "manifests/magpie/train-00000-of-00001.json"
    shutil.copy(manifest, manifest.with_name(manifest.name + ".rescore"))
    stale = json.loads(manifest.read_text())
    stale["quality_scorer"] = "an-older-scorer"
    manifest.write_text(json.dumps(stale))
    assert main(["rescore", str(out), "--config", "magpie", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["magpie"]["skipped"] == 1
    assert not os.path.exists(str(manifest) + ".rescore") and sha256_file(shards[1]) == digests[shards[1]]
