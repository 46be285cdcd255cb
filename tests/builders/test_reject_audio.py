"""`jaspeech build --keep-reject-audio`: rows rejected after synthesis keep their speech beside the
rejects, so a person can hear whether the voice or the ear was wrong (`jaspeech view` plays it)."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf
from datasets import load_dataset

from jaspeech.builders import corpus_spec
from jaspeech.builders.pipeline import RowBuilder, SynthesisOptions
from jaspeech.builders.schema import RowReject
from jaspeech.cli import main
from jaspeech.synthesis.tts import make_tts
from jaspeech.view.queries import RejectQuery, open_corpus


def _build(out, *extra):
    assert main(["build", "jaspeech-sft-audio", "--config", "magpie", "--input", "sample", "--tts", "openjtalk",
                 "--asr", "none", "--max-seconds", "4", "--out", str(out), "--quiet", *extra]) == 0


def _rejects(out):
    lines = (out / "rejects/magpie/train-00000-of-00001.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_audio_too_long_rejects_keep_their_audio_and_the_page_serves_it(tmp_path):
    """The real build (OpenJTalk voice, --max-seconds 4): each synthesised turn over the limit is stored."""
    out = tmp_path / "kept"
    _build(out, "--keep-reject-audio")
    too_long = {r["source_index"]: r for r in _rejects(out) if r["reason"] == "audio_too_long"}
    assert len(too_long) >= 5
    stored = load_dataset("parquet", data_files=str(out / "rejects/magpie/*.audio.parquet"), split="train")
    assert sorted(stored["source_index"]) == sorted(too_long)  # exactly the rows rejected after synthesis
    for rec in stored:
        samples = rec["audio"].get_all_samples()
        seconds = samples.data.shape[-1] / samples.sample_rate
        assert seconds == pytest.approx(float(too_long[rec["source_index"]]["detail"].split()[2]), abs=0.06)
        assert seconds > 4 and rec["turn"] == 0 and rec["text"] and rec["transcript"] is None

    index = open_corpus(out)
    page = index.query_rejects(RejectQuery.parse({"audio": "1", "limit": "500"}))
    assert {r["source_index"] for r in page["rows"]} == set(too_long)
    first = page["rows"][0]
    clip = index.reject_audio_bytes("magpie", first["source_index"], 0)
    assert sf.info(io.BytesIO(clip)).duration > 4

    plain = tmp_path / "plain"  # off by default: no audio file, the same rejects
    _build(plain)
    assert not list((plain / "rejects/magpie").glob("*.audio.parquet"))
    assert _rejects(plain) == _rejects(out)


class Misheard:
    """A stand-in ear (Whisper would need a text it mishears on cue): hears 京都 as 東京, both listenings."""

    name = "misheard"

    def transcribe(self, audios, strong=False):
        self.calls = getattr(self, "calls", 0) + 1
        return ["三月に東京へ行きます。" for _ in audios]


@pytest.mark.parametrize("keep", [True, False])
def test_a_roundtrip_reject_carries_its_speech_and_what_the_ear_heard(keep):
    spec = corpus_spec("jaspeech-sft-audio")
    ear = Misheard()
    builder = RowBuilder(spec, spec.configs["magpie"], make_tts("openjtalk"), ear,
                         SynthesisOptions(keep_reject_audio=keep, rule=None, max_takes=1))  # the transcript rule
    raw = {"id": "x", "conversations": [{"role": "user", "content": "三月に京都へ行きます。"},
                                        {"role": "assistant", "content": "はい。"}]}
    pending = builder.prepare(0, raw, "x")
    [reject] = builder.finish([pending])
    assert isinstance(reject, RowReject) and reject.reason == "roundtrip" and ear.calls == 2
    if not keep:
        assert reject.audio is None
        return
    [rec] = reject.audio
    assert rec["turn"] == 0 and rec["text"] == "三月に京都へ行きます。"
    assert rec["transcript"] == "三月に東京へ行きます。" and rec["kana_cer"] > 0.1  # the deciding (second) listening
    samples, sr = sf.read(io.BytesIO(rec["audio"]["bytes"]), dtype="float32")
    expected, expected_sr = pending.audios[0]
    assert sr == expected_sr and samples.shape == expected.shape
    assert np.max(np.abs(samples - expected)) < 1e-3  # FLAC (16 bit) of the synthesised turn


class FailsOnResponses:
    """The real OpenJTalk voice for instructions; a crash for the response (a stand-in for a GPU backend
    failing on one long text)."""

    name = "openjtalk, failing on responses"

    def __init__(self):
        self.voice = make_tts("openjtalk")

    def synthesize(self, text, speaker, seed):
        if speaker.name.startswith("asst"):
            raise RuntimeError("CUDA out of memory")
        return self.voice.synthesize(text, speaker, seed)


def test_a_later_turn_failing_keeps_the_speech_already_made():
    spec = corpus_spec("jaspeech-sft-audio")
    builder = RowBuilder(spec, spec.configs["magpie-s2s"], FailsOnResponses(), None,
                         SynthesisOptions(keep_reject_audio=True))
    raw = {"id": "x", "conversations": [{"role": "user", "content": "三月に京都へ行きます。"},
                                        {"role": "assistant", "content": "良い旅を。"}]}
    with pytest.raises(RowReject) as e:
        builder.prepare(0, raw, "x")
    assert e.value.reason == "tts_error" and "CUDA out of memory" in e.value.detail
    [rec] = e.value.audio  # the instruction, synthesised before the response failed
    assert rec["turn"] == 0 and rec["text"] == "三月に京都へ行きます。" and rec["transcript"] is None
    assert sf.info(io.BytesIO(rec["audio"]["bytes"])).duration > 0.5
