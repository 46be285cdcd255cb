"""Rows are built in groups: one batched TTS call for every text of a group, then one batched round trip.

Groups are consecutive input rows of a shard (by position, `--group-rows`, fixed by the plan). A row's
content must not depend on the group size or on its group-mates; a failing text or a failing batch
rejects only its own row.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from jaspeech.builders.build import BuildOptions, build
from jaspeech.synthesis.tts import make_tts
from tests.conftest import assert_accounted, reject_reasons


def _files(out: Path, config: str) -> dict[str, bytes]:
    """The shard files a user gets (data and rejects; the manifests hold timings)."""
    return {str(f.relative_to(out)): f.read_bytes() for part in ("data", "rejects")
            for f in sorted((out / part / config).glob("*")) if f.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("config, asr, limit", [("magpie", "faster-whisper", 8), ("magpie-s2s", "none", 8)])
def test_a_row_is_byte_identical_in_groups_of_1_7_and_32(tmp_path, config, asr, limit):
    """The real OpenJTalk voice and (for magpie) the real Whisper base round trip; magpie-s2s speaks long
    responses in several pieces, so a group's batch holds pieces of several turns of several rows."""
    builds = {}
    for group in (1, 7, 32):
        out = tmp_path / f"g{group}"
        summary = build(BuildOptions(corpus="jaspeech-sft-audio", config=config, input="sample", limit=limit, out=out,
                                     tts="openjtalk", asr=asr, group_rows=group, quiet=True))
        assert summary["complete"] and summary["rows"] > 0
        assert_accounted(out, config, limit)
        builds[group] = _files(out, config)
    assert builds[1] == builds[7] == builds[32]


class Batching:
    """A batching backend over the real OpenJTalk voice: records each `synthesize_batch` call's texts; the
    texts in `poison` fail (as an item's exception, or by failing the whole call when `fail_batch`)."""

    name = "openjtalk, batched"

    def __init__(self, poison: str = "", fail_batch: bool = False):
        self.voice, self.poison, self.fail_batch = make_tts("openjtalk"), poison, fail_batch
        self.calls: list[list[str]] = []

    def synthesize(self, text, speaker, seed):
        raise AssertionError("the builder must call synthesize_batch")

    def synthesize_batch(self, items):
        self.calls.append([item.text for item in items])
        poisoned = [self.poison and self.poison in item.text for item in items]
        if self.fail_batch and any(poisoned) and len(items) > 1:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return [RuntimeError("decoder diverged") if bad else self.voice.synthesize(item.text, item.speaker, item.seed)
                for item, bad in zip(items, poisoned)]


def _build_with(tts, tmp_path, monkeypatch, group_rows: int, limit: int = 12):
    """A build (one local worker: in this process) whose row builder speaks with `tts`."""
    from jaspeech.builders import shards

    real = shards.row_builder

    def with_backend(plan, out=None):
        builder = real(plan, out)
        monkeypatch.setattr(builder, "tts", tts)
        return builder

    monkeypatch.setattr(shards, "row_builder", with_backend)
    out = tmp_path / "out"
    build(BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input="sample", limit=limit, out=out,
                       tts="openjtalk", asr="none", group_rows=group_rows, quiet=True))
    return out


def test_one_batched_tts_call_per_group(tmp_path, monkeypatch):
    tts = Batching()
    out = _build_with(tts, tmp_path, monkeypatch, group_rows=5, limit=12)
    kept, rejected = assert_accounted(out, "magpie", 12)
    assert len(tts.calls) == 3  # rows 0-4, 5-9, 10-11: one call each (rows rejected before TTS send nothing)
    assert sum(len(c) for c in tts.calls) >= len(kept)


@pytest.mark.parametrize("fail_batch", [False, True])
def test_a_failing_text_rejects_only_its_row(tmp_path, monkeypatch, fail_batch):
    from jaspeech.builders.sources import open_source
    from jaspeech.builders import corpus_spec

    spec = corpus_spec("jaspeech-sft-audio")
    rows = [raw for _, raw in open_source(spec, "sample", spec.configs["magpie"], "train").iter_rows(limit=6)]
    victim = rows[3]["conversations"][0]["content"][:6]  # a piece of row 3's instruction
    clean = _build_with(Batching(), tmp_path / "clean", monkeypatch, group_rows=6, limit=6)
    out = _build_with(tts := Batching(victim, fail_batch), tmp_path / "poisoned", monkeypatch, group_rows=6, limit=6)
    assert_accounted(out, "magpie", 6)
    reasons, before = reject_reasons(out, "magpie"), reject_reasons(clean, "magpie")
    assert reasons.pop(3) == "tts_error" and 3 not in before
    assert reasons == before  # every other row as in the clean build
    if fail_batch:  # the whole call failed, so each row was synthesised alone
        assert len(tts.calls) > 1 and max(len(c) for c in tts.calls[1:]) < len(tts.calls[0])


class Sequential:
    """The same row builder without `finish_later`: run_shard then finishes each group before starting the next."""

    def __init__(self, builder):
        self._builder = builder

    def __getattr__(self, name):
        if name == "finish_later":
            raise AttributeError(name)
        return getattr(self._builder, name)


@pytest.mark.parametrize("quality, limit", [("none", 10), ("dnsmos", 6)])
def test_the_rest_of_a_group_runs_beside_the_next_groups_synthesis_and_changes_no_byte(tmp_path, monkeypatch,
                                                                                         quality, limit):
    """FLAC, signal checks and the MOS model (the real DNSMOS in the second case) of group k run on a helper thread
    while group k+1 is synthesised; the shard's files are those of a build that finishes each group before the
    next."""
    import threading

    from jaspeech.builders import pipeline, shards

    threads, measure = [], pipeline.RowBuilder._measure

    def recording(self, pending, flacs):
        threads.append(threading.current_thread().name)
        return measure(self, pending, flacs)

    monkeypatch.setattr(pipeline.RowBuilder, "_measure", recording)
    options = dict(corpus="jaspeech-sft-audio", config="magpie", input="sample", limit=limit, tts="openjtalk",
                   asr="none", group_rows=3, quality=quality, quiet=True)
    build(BuildOptions(out=tmp_path / "overlapped", **options))
    assert threads and all(name.startswith("finish") for name in threads)

    real = shards.row_builder
    monkeypatch.setattr(shards, "row_builder", lambda plan, out=None: Sequential(real(plan, out)))
    threads.clear()
    build(BuildOptions(out=tmp_path / "sequential", **options))
    assert threads and all(name == "MainThread" for name in threads)
    assert_accounted(tmp_path / "overlapped", "magpie", limit)
    assert _files(tmp_path / "overlapped", "magpie") == _files(tmp_path / "sequential", "magpie")


def test_an_error_in_the_rest_of_a_group_rejects_only_its_row(tmp_path, monkeypatch):
    """An unexpected error while a row is assembled on the helper thread: that row is `internal_error`, the rows
    of its group keep what they were heard as."""
    from jaspeech.builders import pipeline

    row = pipeline.RowBuilder._row

    def failing(self, p, heard, turns):
        if p.position == 4:
            raise KeyError("a bug")
        return row(self, p, heard, turns)

    monkeypatch.setattr(pipeline.RowBuilder, "_row", failing)
    out = tmp_path / "out"
    build(BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input="sample", limit=8, out=out,
                       tts="openjtalk", asr="none", group_rows=3, quiet=True))
    kept, _ = assert_accounted(out, "magpie", 8)
    reasons = reject_reasons(out, "magpie")
    assert reasons[4] == "internal_error" and 3 in kept and 5 in kept
