"""`--tts cosyvoice2` end to end through REAL upstream CosyVoice code, with a tiny random model.

Upstream's `cosyvoice` and `matcha` packages come from the PyPI wheel jaspeech[cosyvoice] pins
(cosyvoice2-fr-infer 0.1.5 = FunAudioLLM/CosyVoice 6385656 for every model file; installed by
scripts/setup.sh). The model folder is built here in upstream's layout (tests/synthesis/tiny_cosyvoice2.py):
cosyvoice2.yaml with tiny sizes, random llm.pt / flow.pt / hift.pt made by upstream's own classes, tiny
ONNX speaker-embedding and speech-tokenizer graphs, and a tiny Qwen2 + BPE tokenizer. So the Qwen2 LM
decodes speech tokens autoregressively, the flow matching runs its 10 Euler steps and HiFT vocodes,
exactly as on a GPU node, only with random weights: the audio is noise, its plumbing is real.

TWO STAND-INS, used only when the real package does not import (tests/synthesis/standins/):
  - torchaudio: not installable beside the project's CPU torch 2.13.0. Upstream calls two of its
    functions when registering a speaker (Kaldi fbank for campplus, 16->24 kHz Resample); the stand-in
    implements those (its fbank matches torchaudio 2.11's to 7e-5 on noise).
  - tn (WeTextProcessing): upstream constructs its zh/en normalisers at load; jaspeech never uses them
    (text_frontend=False). The real one is pynini, 722 MB and a ~40 s FST build; the stand-in raises
    if asked to normalise, so these tests also prove our text never goes through it.
"""
from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jaspeech.cli import main
from jaspeech.synthesis.speakers import speaker_by_name
from tests.conftest import assert_accounted
from tests.synthesis.tiny_cosyvoice2 import build_tiny_cosyvoice2, upstream_importable, write_speakers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def upstream():
    """Upstream's CosyVoice2 class (stand-ins on sys.path only for what does not import, see the docstring).

    One intra-op thread: the tiny model's thousands of small ops gain nothing from a second thread, and on
    a busy machine its spin-waits tripled this test's CPU time.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with upstream_importable():
        from cosyvoice.cli.cosyvoice import CosyVoice2

        yield CosyVoice2
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(upstream, tmp_path_factory):
    return build_tiny_cosyvoice2(tmp_path_factory.mktemp("cosyvoice2") / "CosyVoice2-tiny")


@pytest.fixture(scope="module")
def speakers(tmp_path_factory):
    """20 reference clips (3 s harmonic tones, 24 kHz, one pitch per speaker) and their transcripts."""
    return write_speakers(tmp_path_factory.mktemp("speakers"))


@pytest.fixture
def fed_texts(upstream, monkeypatch):
    """What upstream's inference_zero_shot is asked to say (a spy: the real method still runs)."""
    seen: list[str] = []
    real = upstream.inference_zero_shot

    def spy(self, tts_text, *args, **kwargs):
        seen.append(tts_text)
        yield from real(self, tts_text, *args, **kwargs)

    monkeypatch.setattr(upstream, "inference_zero_shot", spy)
    return seen


def test_build_through_upstream_cosyvoice2(model_dir, speakers, fed_texts, tmp_path):
    out = tmp_path / "corpus"
    assert main(["build", "jaspeech-sft-audio", "--config", "magpie", "--input", "sample", "--limit", "3",
                 "--tts", "cosyvoice2-upstream", "--tts-model", str(model_dir), "--speakers", str(speakers),
                 "--asr", "none", "--out", str(out)]) == 0
    kept, rejected = assert_accounted(out, "magpie", 3)
    assert len(kept) == 3 and rejected == []
    table = pq.read_table(next((out / "data" / "magpie").glob("*.parquet"))).to_pylist()
    for row in table:
        assert row["tts_model"] == "CosyVoice2 (CosyVoice2-tiny), fed OpenJTalk kana readings"
        turn = row["turns"][0]
        audio, sr = sf.read(io.BytesIO(turn["audio"]["bytes"]), dtype="float32")
        assert sr == 24000 and audio.ndim == 1 and np.abs(audio).max() > 0
        assert turn["duration"] == pytest.approx(audio.size / sr, abs=1e-3)
    # the rows keep the written text; upstream was given its OpenJTalk kana reading, one sentence a call
    assert table[0]["turns"][0]["text"] == "おすすめの朝ごはんを教えてください。"
    assert "オススメノアサゴハンヲオシエテクダサイ。" in fed_texts
    assert not any(0x4E00 <= ord(c) <= 0x9FFF for text in fed_texts for c in text)


def test_every_chunk_kept_and_seeded(model_dir, speakers, upstream, monkeypatch):
    from jaspeech.synthesis.tts import make_tts

    tts = make_tts("cosyvoice2-upstream", model=str(model_dir), speakers=str(speakers), reading="text")
    assert tts.name == "CosyVoice2 (CosyVoice2-tiny)" and tts.sample_rate == 24000
    chunks: list[int] = []
    real = upstream.inference_zero_shot

    def count(self, *args, **kwargs):
        for out in real(self, *args, **kwargs):
            chunks.append(out["tts_speech"].shape[1])
            yield out

    monkeypatch.setattr(upstream, "inference_zero_shot", count)
    text = "今日は2024年です。明日は晴れです。"
    a, sr = tts.synthesize(text, speaker_by_name("spk03"), seed=11)
    assert len(chunks) >= 2  # one call (at least one chunk) per sentence
    assert a.size == sum(chunks) + int(0.25 * sr)  # every chunk, plus one pause between the sentences
    b, _ = tts.synthesize(text, speaker_by_name("spk03"), seed=11)
    c, _ = tts.synthesize(text, speaker_by_name("spk03"), seed=12)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_upstream_decode_steps_attend_to_the_whole_cache(model_dir, speakers, upstream):
    """Under transformers >= 4.53 upstream's one-step mask would hide every cached position but the first
    (see cosyvoice2.attend_to_the_whole_cache): the backend passes a mask over cache + input at every step."""
    from jaspeech.synthesis.tts import make_tts

    tts = make_tts("cosyvoice2-upstream", model=str(model_dir), speakers=str(speakers), reading="text")
    qwen = tts.model.model.llm.llm.model
    seen = []

    def spy(module, args, kwargs):
        cache, mask = kwargs.get("past_key_values"), kwargs.get("attention_mask")
        if mask is not None:
            seen.append((mask.shape[-1], (cache.get_seq_length() if cache is not None else 0) + kwargs["inputs_embeds"].shape[1],
                         bool(mask.all())))

    hook = qwen.register_forward_pre_hook(spy, with_kwargs=True)
    try:
        tts.synthesize("コンニチワ。", speaker_by_name("spk02"), seed=5)
    finally:
        hook.remove()
    assert len(seen) > 3 and all(length == expected and ones for length, expected, ones in seen)
