"""plan.py: the folder rules and the options added later are plan options (a change needs --overwrite), and an old
plan means what it meant when it was written."""
from __future__ import annotations

import json

import pytest

from jaspeech.builders.build import BuildOptions, PlanMismatch, build
from jaspeech.builders.plan import load_or_create_plan, plan_path
from tests.conftest import write_jsonl

ROW = {"messages": [{"role": "user", "content": "近所でおいしいパン屋を探しています。"},
                    {"role": "assistant", "content": "駅前の商店街に人気の店があります。"}]}


def spoken(out, input, **kw):
    return BuildOptions(corpus="spoken", config="mine", out=out, input=str(input), tts="openjtalk", asr="none",
                        quiet=True, license="apache-2.0", plan_only=True, **kw)


def test_skip_unreadable_is_part_of_the_plan(tmp_path):
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "a.jsonl", [ROW, ROW])
    (tmp_path / "in" / "notes.txt").write_text("x", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="notes.txt"):
        build(spoken(out, tmp_path / "in"))
    build(spoken(out, tmp_path / "in", skip_unreadable=True))
    stored = json.loads(plan_path(out, "mine").read_text(encoding="utf-8"))
    assert stored["skip_unreadable"] is True and stored["skipped_files"] == [["notes.txt", 1]]
    (tmp_path / "in" / "notes.txt").unlink()
    with pytest.raises(PlanMismatch, match="skip_unreadable"):
        build(spoken(out, tmp_path / "in"))


def test_an_old_spoken_plan_rejected_dialogues_ending_on_the_user(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [ROW])
    out = tmp_path / "out"
    build(spoken(out, path))
    stored = json.loads(plan_path(out, "mine").read_text(encoding="utf-8"))
    assert stored["trailing_user"] == "keep-exchanges"
    for key in ("trailing_user", "skip_unreadable", "allow_nd", "source_name", "source_url"):
        del stored[key]  # as written before these options existed
    plan_path(out, "mine").write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(PlanMismatch, match="trailing_user"):
        load_or_create_plan(spoken(out, path))
    assert load_or_create_plan(spoken(out, path, trailing_user="reject"))["trailing_user"] == "reject"

    sft = BuildOptions(corpus="jaspeech-sft-audio", config="automultiturn", out=tmp_path / "sft", input="sample",
                       tts="openjtalk", asr="none", quiet=True, plan_only=True)
    build(sft)
    stored = json.loads(plan_path(sft.out, "automultiturn").read_text(encoding="utf-8"))
    del stored["trailing_user"], stored["skip_unreadable"]
    plan_path(sft.out, "automultiturn").write_text(json.dumps(stored), encoding="utf-8")
    assert load_or_create_plan(sft)["trailing_user"] == "keep-exchanges"  # the SFT corpora kept the exchanges
