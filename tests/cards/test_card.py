"""The dataset card: numbers recomputed from the Parquet, YAML that huggingface_hub parses, real plots, publish."""
import json
import re

import matplotlib.image
import numpy as np
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard

from jaspeech.builders.build import BuildOptions, build
from jaspeech.cards.publish import publish, upload_plan
from jaspeech.cli import main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two configs with the fast TTS, the real Whisper round trip and the real DNSMOS models, so every statistic
    is populated."""
    out = tmp_path_factory.mktemp("card") / "jaspeech-sft-audio"
    for config, limit in (("magpie", 8), ("automultiturn", 5)):
        build(BuildOptions(corpus="jaspeech-sft-audio", config=config, input="sample", out=out, limit=limit,
                           tts="openjtalk", max_kana_cer=0.3, quality="dnsmos", quiet=True))
    return out


def independent_stats(out, config):
    table = pq.read_table(out / "data" / config).to_pylist()
    durations = [r["duration"] for r in table]
    kana = [t["kana_cer"] for r in table for t in r["turns"] if t["role"] == "user"]
    rejects = [json.loads(line) for f in (out / "rejects" / config).glob("*.jsonl")
               for line in f.read_text(encoding="utf-8").splitlines()]
    return {"rows": len(table), "hours": sum(durations) / 3600, "mean": float(np.mean(durations)),
            "median": float(np.median(durations)), "kana_mean": float(np.mean(kana)), "rejects": len(rejects),
            "spk": {r["speaker"] for r in table}}


def test_card_numbers_match_the_parquet(corpus):
    text = (corpus / "README.md").read_text(encoding="utf-8")
    for config in ("magpie", "automultiturn"):
        s = independent_stats(corpus, config)
        counts = re.search(rf"^\| `{config}` \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \| .* \|$", text,
                           re.M)
        assert counts, config
        assert int(counts[2]) == s["rows"] and float(counts[3]) == pytest.approx(s["hours"], abs=5e-4)
        assert int(counts[1]) == s["rows"] + s["rejects"] and int(counts[5]) == s["rejects"]
        assert float(counts[4]) == pytest.approx(s["mean"], abs=0.06)
        scores = re.search(rf"^\| `{config}` \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|",
                           text, re.M)
        assert int(scores[1]) == s["rows"]
        assert float(scores[3]) == pytest.approx(s["mean"], abs=0.006)
        assert float(scores[4]) == pytest.approx(s["median"], abs=0.006)
        assert float(scores[5]) == pytest.approx(s["kana_mean"], abs=6e-5)
        rows = re.findall(rf"^\| `{config}` \| `(\w+)` \| (\d+) \|$", text, re.M)
        assert sum(int(n) for _, n in rows) == s["rejects"]
    assert "magpie-sft-v1.0" in text and "@article{xu2024magpie" in text and "apache-2.0" in text


def test_front_matter_parses_with_huggingface_hub(corpus):
    card = DatasetCard.load(corpus / "README.md")
    data = card.data.to_dict()
    assert data["language"] == ["ja"] and data["license"] == ["apache-2.0", "other"]
    assert data["license_name"] == "automultiturn-mixed-open" and data["license_link"].startswith("https://")
    assert data["source_datasets"] == ["llm-jp/magpie-sft-v1.0", "kanhatakeyama/AutoMultiTurnByCalm3-22B"]
    assert [c["config_name"] for c in data["configs"]] == ["magpie", "automultiturn"]
    for info in data["dataset_info"]:
        assert info["splits"][0]["num_examples"] == independent_stats(corpus, info["config_name"])["rows"]
        assert [f["name"] for f in info["features"]][:3] == ["id", "source_dataset", "source_id"]
    for key in ("task_categories", "size_categories", "pretty_name"):
        assert data[key]


def test_card_quality_table_matches_the_parquet(corpus):
    text = (corpus / "README.md").read_text(encoding="utf-8")
    assert "![DNSMOS OVRL per spoken turn](assets/dnsmos_ovrl_hist.png)" in text
    for config in ("magpie", "automultiturn"):
        turns = [t for r in pq.read_table(corpus / "data" / config).to_pylist() for t in r["turns"]]
        ovrl = [t["dnsmos"]["ovrl"] for t in turns if t["audio"] is not None]
        assert len(ovrl) == sum(t["role"] == "user" for t in turns) and all(1 <= x <= 5 for x in ovrl)
        assert all(t["dnsmos"] is None and t["signal"] is None for t in turns if t["audio"] is None)
        row = re.search(rf"^\| `{config}` \| (\d+) \| ([\d.]+) \| ([\d.]+) \| [\d.]+ \| 3 \(reference\) \| ([\d.]+) % \|",
                        text, re.M)
        assert row, config
        assert int(row[1]) == len(ovrl) and float(row[2]) == pytest.approx(np.mean(ovrl), abs=0.006)
        assert float(row[3]) == pytest.approx(np.median(ovrl), abs=0.006)
        assert float(row[4]) == pytest.approx(100 * np.mean(np.asarray(ovrl) < 3.0), abs=0.06)
    assert "dnsmos-p835-p808/speechmos-" in text


@pytest.mark.parametrize("name", ["duration_hist.png", "kana_cer_hist.png", "dnsmos_ovrl_hist.png",
                                  "speaker_hours.png", "reject_reasons.png"])
def test_plots_are_real_images(corpus, name):
    path = corpus / "assets" / name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 600
    assert image[..., :3].std() > 0.05  # not a blank canvas
    assert f"(assets/{name})" in (corpus / "README.md").read_text(encoding="utf-8")


def test_card_command_rewrites_from_disk(corpus, capsys):
    readme = corpus / "README.md"
    readme.write_text("stale", encoding="utf-8")
    (corpus / "assets" / "duration_hist.png").unlink()
    assert main(["card", str(corpus)]) == 0
    assert readme.read_text(encoding="utf-8").startswith("---\n") and (corpus / "assets" / "duration_hist.png").exists()


def test_publish_dry_run_lists_exactly_the_dataset_files(corpus, capsys):
    (corpus / "data" / "magpie" / "x.parquet.partial").write_bytes(b"junk")
    expected = sorted(["README.md"] + [f"assets/{n}" for n in ("dnsmos_ovrl_hist.png", "duration_hist.png",
                                                                "kana_cer_hist.png", "reject_reasons.png",
                                                                "speaker_hours.png")]
                      + [f"data/{c}/train-00000-of-00001.parquet" for c in ("automultiturn", "magpie")])
    assert upload_plan(corpus).files == expected
    assert upload_plan(corpus, include_rejects=True).files == sorted(
        expected + [f"rejects/{c}/train-00000-of-00001.jsonl" for c in ("automultiturn", "magpie")])
    assert main(["publish", str(corpus), "--repo-id", "me/x", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[-1] for line in out.splitlines()[:-1]]
    assert listed == expected
    total = sum((corpus / f).stat().st_size for f in expected)
    assert f"would upload {len(expected)} files, {total:,d} bytes" in out
    (corpus / "data" / "magpie" / "x.parquet.partial").unlink()


class FakeHfApi:
    """Records the calls publish makes; the real HfApi needs the network."""

    def __init__(self, token=None):
        self.calls = []

    def create_repo(self, **kw):
        self.calls.append(("create_repo", kw))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw))


def test_publish_creates_the_repo_and_uploads_only_dataset_files(corpus):
    api = FakeHfApi()
    plan = publish(corpus, "llm-jp/jaspeech-sft-audio", private=True, api=api)
    assert api.calls[0] == ("create_repo", {"repo_id": "llm-jp/jaspeech-sft-audio", "repo_type": "dataset",
                                            "private": True, "exist_ok": True})
    name, kw = api.calls[1]
    assert name == "upload_folder" and kw["repo_type"] == "dataset" and kw["folder_path"] == str(corpus)
    assert kw["allow_patterns"] == ["README.md", "assets/*", "data/**/*.parquet"] == plan.allow_patterns


def test_publish_uses_upload_large_folder_where_available_and_never_prints_the_token(corpus, monkeypatch, capsys):
    calls = []

    class OldHfApi(FakeHfApi):
        def upload_large_folder(self, **kw):
            calls.append(kw)

    monkeypatch.setenv("HF_TOKEN", "hf_SECRETSECRETSECRET")
    monkeypatch.setattr("huggingface_hub.HfApi", OldHfApi)
    assert main(["publish", str(corpus), "--repo-id", "me/corpus", "--private"]) == 0
    assert calls and calls[0]["private"] is True and calls[0]["repo_id"] == "me/corpus"
    captured = capsys.readouterr()
    assert "SECRET" not in captured.out + captured.err
