"""Keep what the original corpora kept: partial dialogues, provenance, and valid cards for every corpus.

Built with the fast real stack (OpenJTalk TTS, no ASR); the round trip is not what is tested here.
"""
from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard

from jaspeech.builders import corpus_spec
from jaspeech.builders.build import BuildOptions, build
from jaspeech.cards.render import render_card
from jaspeech.cards.stats import config_stats
from tests.conftest import assert_accounted, reject_reasons, write_jsonl


def _build(out, corpus, config, path, **kw):
    return build(BuildOptions(corpus=corpus, config=config, input=str(path), out=out, tts="openjtalk", asr="none",
                              quiet=True, **kw))


def _rows(out, config):
    return {r["source_index"]: r for f in sorted((out / "data" / config).glob("*.parquet"))
            for r in pq.read_table(f).to_pylist()}


def test_a_partial_automultiturn_row_keeps_its_first_exchange(tmp_path):
    q1, a1 = "春におすすめの旅行先はどこですか。", "京都がおすすめです。"
    rows = [
        {"q1": q1, "a1": a1, "q2": "京都で有名な場所はどこですか。", "a2": "哲学の道です。"},  # whole
        {"q1": q1, "a1": a1, "q2": None, "a2": None},  # second exchange missing
        {"q1": q1, "a1": a1, "q2": "", "a2": "もう一度お願いします。"},  # empty second question
        {"q1": q1, "a1": a1, "q2": "```python\nprint(1)\n```", "a2": "正しいです。"},  # unspeakable
        {"q1": q1, "a1": a1, "q2": "次の質問です。", "a2": ""},  # empty second answer
        {"q1": q1, "a1": a1},  # the keys are absent
        {"q1": None, "a1": a1, "q2": "二つ目の質問です。", "a2": "はい。"},  # unusable first exchange
        {"q1": "https://example.com を見てください。", "a1": a1, "q2": "要点は？", "a2": "はい。"},
    ]
    out = tmp_path / "out"
    _build(out, "jaspeech-sft-audio", "automultiturn", write_jsonl(tmp_path / "in.jsonl", rows))
    kept, _ = assert_accounted(out, "automultiturn", len(rows))
    got = _rows(out, "automultiturn")
    assert len(got[0]["turns"]) == 4
    for i in (1, 2, 3, 4, 5):
        turns = got[i]["turns"]
        assert [t["role"] for t in turns] == ["user", "assistant"] and turns[0]["text"] == q1, i
        assert turns[0]["audio"] is not None and turns[1]["text"] == a1
    assert reject_reasons(out, "automultiturn") == {6: "missing_q1", 7: "unspeakable_url"}
    stats = config_stats(out, "automultiturn")
    assert stats.turns_per_row == {4: 1, 2: 5}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^\| `automultiturn` \| 5 \| 1 \|$", card, re.M), "one- and two-exchange rows counted"


def test_hh_rlhf_keeps_its_source_column_and_names_an_unknown_role(tmp_path):
    rows = [
        {"conversations": [{"from": "human", "value": "おすすめの本を教えてください。"}],
         "chosen": "推理小説がおすすめです。", "rejected": "本は読まなくていいです。", "source": "helpful-base"},
        {"conversations": [{"from": "narrator", "value": "ある日のことです。"},
                           {"from": "human", "value": "続きを話してください。"}],
         "chosen": "はい、続けます。", "rejected": "いやです。", "source": "harmless-base"},
        {"conversations": [{"from": "human", "value": "こんにちは。"}], "chosen": "こんにちは。",
         "rejected": "さようなら。"},  # no source field: null
    ]
    out = tmp_path / "out"
    _build(out, "jaspeech-dpo-audio", "hh-rlhf", write_jsonl(tmp_path / "in.jsonl", rows))
    assert_accounted(out, "hh-rlhf", 3)
    got = _rows(out, "hh-rlhf")
    assert got[0]["source"] == "helpful-base" and got[2]["source"] is None
    assert got[0]["source_id"] == "0"  # no id column in hh-rlhf: the position
    detail = [line for line in (out / "rejects" / "hh-rlhf").glob("*.jsonl")][0].read_text(encoding="utf-8")
    assert reject_reasons(out, "hh-rlhf") == {1: "unknown_role"} and "'narrator'" in detail
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "`source_id` is the row's 0-based position" in card and "prompt[*].audio" in card
    assert "prompt_audio" not in card  # the original release has no such column


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One small build of every TTS config (the FSD50K card is checked in tests/captioning)."""
    root = tmp_path_factory.mktemp("cards")
    for corpus, config in (("jaspeech-sft-audio", "magpie"), ("jaspeech-sft-audio", "automultiturn"),
                           ("jaspeech-dpo-audio", "hh-rlhf"), ("jaspeech-dpo-audio", "chatbot-arena")):
        build(BuildOptions(corpus=corpus, config=config, input="sample", limit=4, out=root / corpus,
                           tts="openjtalk", asr="none", quiet=True))
    return root


@pytest.mark.parametrize("corpus,licenses,extra", [
    ("jaspeech-sft-audio", ["apache-2.0", "other"],
     {"license_name": "automultiturn-mixed-open",
      "license_link": "https://huggingface.co/datasets/kanhatakeyama/AutoMultiTurnByCalm3-22B"}),
    ("jaspeech-dpo-audio", ["cc-by-4.0", "mit"], {}),
])
def test_tts_card_front_matter_parses_with_the_right_facts(built, corpus, licenses, extra):
    out = built / corpus
    data = DatasetCard.load(out / "README.md").data.to_dict()
    spec = corpus_spec(corpus)
    assert data["license"] == licenses and data["language"] == ["ja"]
    assert {k: data.get(k) for k in extra} == extra
    assert data["source_datasets"] == list(dict.fromkeys(c.hub_id for c in spec.configs.values()))
    assert "tts" in data["tags"] and data["task_categories"] == list(spec.task_categories)
    body = (out / "README.md").read_text(encoding="utf-8")
    if corpus == "jaspeech-sft-audio":
        assert "CC-BY-SA-3.0" in body and "ShareAlike" in body  # which part carries which licence
    else:
        assert "Gated on the Hub" in body and "hf auth login" in body


def test_coverage_columns_and_the_original_release_beside_a_full_build(built):
    out = built / "jaspeech-sft-audio"
    spec = corpus_spec("jaspeech-sft-audio")
    stats = [config_stats(out, c) for c in ("magpie", "automultiturn")]
    card = render_card(out, spec, stats)
    row = re.search(r"^\| `magpie` \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \| (.*) \|$", card, re.M)
    assert int(row[1]) == 4 and int(row[2]) + int(row[5]) == 4
    assert float(row[4]) == pytest.approx(stats[0].hours * 3600 / stats[0].rows, abs=0.06)
    assert row[6].startswith("—")  # a 4-row sample is not the source: no comparison
    stats[0].plan = {**stats[0].plan, "input": "llm-jp/magpie-sft-v1.0", "limit": None}  # as a full hub build
    card = render_card(out, spec, stats)
    assert re.search(r"^\| `magpie` \|.*\[Atotti/spoken-magpie-ja\]\(.*\): ≈132,000 / ≈700 h", card, re.M)
