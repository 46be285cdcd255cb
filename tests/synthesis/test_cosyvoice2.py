"""The cosyvoice2 backend against upstream's CURRENT API, through a stand-in module.

THIS TEST USES A STAND-IN MODULE written here: a fake `cosyvoice.cli.cosyvoice.CosyVoice2` with the
constructor and method signatures of upstream's main branch since 2025-12-08 (FunAudioLLM/CosyVoice
622a3a1: the prompt is a wav path, `prompt_wav`), recording every call and returning deterministic noise.
The real upstream test (test_cosyvoice2_upstream.py) runs the version jaspeech[cosyvoice] installs,
which predates that change and takes a 16 kHz tensor; this one covers what the real one cannot:
  - the newer signature (the backend passes a path, and no `final=` argument);
  - several chunks yielded by one call, all kept in order;
  - a runaway generation retried with new seeds, then rejected, on demand;
  - errors for a missing speaker file, a bad model folder, a silent clip and a missing upstream.
"""
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from jaspeech.synthesis.speakers import PROFILES, speaker_by_name
from jaspeech.synthesis.tts.cosyvoice2 import kanji_number, normalize_japanese, split_sentences

STAND_IN = textwrap.dedent('''
    """Stand-in for upstream cosyvoice.cli.cosyvoice (test only)."""
    import numpy as np
    import torch

    CALLS = []
    RUNAWAY_SEEDS_LEFT = {"n": 0}

    class CosyVoice2:
        def __init__(self, model_dir, load_jit=False, load_trt=False, load_vllm=False, fp16=False, trt_concurrent=1):
            CALLS.append(("init", model_dir, load_jit, load_trt, load_vllm, fp16))
            self.sample_rate = 24000
            self.spk = {}

        def add_zero_shot_spk(self, prompt_text, prompt_wav, zero_shot_spk_id):
            assert zero_shot_spk_id != ""
            self.spk[zero_shot_spk_id] = (prompt_text, prompt_wav)
            return True

        def inference_zero_shot(self, tts_text, prompt_text, prompt_wav, zero_shot_spk_id="", stream=False,
                                speed=1.0, text_frontend=True):
            CALLS.append(("zero_shot", tts_text, prompt_text, prompt_wav, zero_shot_spk_id, stream, text_frontend))
            assert zero_shot_spk_id in self.spk
            n = int(0.12 * 24000 * len(tts_text))  # ~8 characters per second
            if RUNAWAY_SEEDS_LEFT["n"] > 0:
                RUNAWAY_SEEDS_LEFT["n"] -= 1
                n *= 20  # a runaway generation
            noise = torch.rand(1, n) * 0.2 - 0.1  # depends on torch's seed, like sampling does
            half = n // 2
            yield {"tts_speech": noise[:, :half]}   # two chunks: both must be kept
            yield {"tts_speech": noise[:, half:]}
''')


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    pkg = tmp_path / "stand_in" / "cosyvoice" / "cli"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "cosyvoice.py").write_text(STAND_IN)
    monkeypatch.syspath_prepend(str(tmp_path / "stand_in"))
    for name in [m for m in sys.modules if m.startswith("cosyvoice")]:
        monkeypatch.delitem(sys.modules, name)  # the real upstream, if imported, comes back afterwards
    import cosyvoice.cli.cosyvoice as module

    module.CALLS.clear()
    yield module
    for name in [m for m in sys.modules if m.startswith("cosyvoice") and sys.modules[m] is not None
                 and "stand_in" in str(getattr(sys.modules[m], "__file__", ""))]:
        del sys.modules[name]  # never leave the stand-in where a later test imports the real one


@pytest.fixture
def speakers(tmp_path):
    d = tmp_path / "speakers"
    d.mkdir()
    tone = (0.3 * np.sin(2 * np.pi * 200 * np.arange(24000) / 24000)).astype(np.float32)
    for p in PROFILES:
        sf.write(d / f"{p.name}.wav", tone, 24000)
        (d / f"{p.name}.txt").write_text(f"{p.name}の参照音声です。", encoding="utf-8")
    return d


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "CosyVoice2-0.5B"
    d.mkdir()
    (d / "cosyvoice2.yaml").write_text("# the stand-in does not read it\n")
    return d


def make(model_dir, speakers, **kw):
    from jaspeech.synthesis.tts.cosyvoice2 import CosyVoice2TTS

    return CosyVoice2TTS(str(model_dir), str(speakers), **kw)


def test_registers_twenty_speakers_and_calls_zero_shot_per_sentence(upstream, model_dir, speakers):
    tts = make(model_dir, speakers)
    assert upstream.CALLS[0] == ("init", str(model_dir), False, False, False, True)
    assert set(tts.model.spk) == {p.name for p in PROFILES}
    assert tts.model.spk["spk03"] == ("spk03の参照音声です。", str(speakers / "spk03.wav"))
    audio, sr = tts.synthesize("今日は2024年3月3日です。明日は晴れです。", speaker_by_name("spk03"), seed=7)
    calls = [c for c in upstream.CALLS if c[0] == "zero_shot"]
    assert [c[1] for c in calls] == ["今日は二千二十四年三月三日です。", "明日は晴れです。"]
    assert all(c[2:] == ("", "", "spk03", False, False) for c in calls)
    # every chunk of every sentence is kept, plus one pause between sentences
    expected = sum(int(0.12 * 24000 * len(c[1])) for c in calls) + int(0.25 * 24000)
    assert sr == 24000 and audio.dtype == np.float32 and audio.size == expected


def test_same_seed_same_audio(upstream, model_dir, speakers):
    tts = make(model_dir, speakers)
    a, _ = tts.synthesize("おはようございます。", speaker_by_name("spk00"), seed=1)
    b, _ = tts.synthesize("おはようございます。", speaker_by_name("spk00"), seed=1)
    c, _ = tts.synthesize("おはようございます。", speaker_by_name("spk00"), seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_runaway_generation_is_retried_then_rejected(upstream, model_dir, speakers):
    tts = make(model_dir, speakers, max_retries=2)
    upstream.RUNAWAY_SEEDS_LEFT["n"] = 2  # two runaways, then a good take
    audio, sr = tts.synthesize("こんにちは。", speaker_by_name("spk01"), seed=3)
    assert audio.size == int(0.12 * 24000 * len("こんにちは。"))
    upstream.RUNAWAY_SEEDS_LEFT["n"] = 3  # never recovers within the budget
    with pytest.raises(RuntimeError, match="runaway or truncated"):
        tts.synthesize("こんにちは。", speaker_by_name("spk01"), seed=3)


def test_bad_inputs_and_missing_upstream_are_clear_errors(upstream, tmp_path, model_dir, speakers, monkeypatch):
    from jaspeech.synthesis.tts.cosyvoice2 import CosyVoice2TTS

    (speakers / "spk07.txt").unlink()
    with pytest.raises(FileNotFoundError, match="spk07.txt"):
        CosyVoice2TTS(str(model_dir), str(speakers))
    (speakers / "spk07.txt").write_text("spk07の参照音声です。", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="no cosyvoice2.yaml"):
        CosyVoice2TTS("FunAudioLLM/CosyVoice2-0.5B", str(speakers))  # a hub id: never downloaded
    sf.write(speakers / "spk05.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(ValueError, match="spk05.wav is empty or silent"):
        CosyVoice2TTS(str(model_dir), str(speakers))
    with monkeypatch.context() as m:  # undone inside the test, before the stand-in fixture cleans up
        for name in ["cosyvoice", *[n for n in sys.modules if n.startswith("cosyvoice.")]]:
            m.setitem(sys.modules, name, None)  # upstream not installed
        with pytest.raises(ImportError, match="pip install --no-deps cosyvoice2-fr-infer==0.1.5"):
            CosyVoice2TTS(str(model_dir), str(speakers))


def test_japanese_normalisation_and_splitting():
    assert kanji_number(2024) == "二千二十四" and kanji_number(10000) == "一万" and kanji_number(0) == "零"
    assert kanji_number(120_000_305) == "一億二千万三百五"
    assert normalize_japanese("1,500円と3.14と50%") == "千五百円と三点一四と五十パーセント"
    long = "、".join(["とても長い文の一部です"] * 12) + "。"
    parts = split_sentences("短い文です。" + long)
    assert parts[0] == "短い文です。" and all(len(p) <= 80 for p in parts) and "".join(parts[1:]) == long


def test_assistant_voices_register_from_their_clips_or_fail_before_an_s2s_build(upstream, model_dir, speakers):
    """Speech-to-speech configs speak responses in asst00/asst01: registered where their clips exist; an S2S
    build whose --speakers folder lacks them stops before any row, naming the files to add."""
    from jaspeech.builders import corpus_spec
    from jaspeech.builders.pipeline import make_tts_builder
    from jaspeech.synthesis.speakers import ASSISTANT_PROFILES

    spec = corpus_spec("jaspeech-sft-audio")
    plan = {"config": "magpie-s2s", "tts": "cosyvoice2-upstream", "tts_model": str(model_dir), "speakers": str(speakers),
            "tts_reading": "text", "asr": "none", "asr_model": None, "max_kana_cer": 0.1, "max_seconds": 120.0}
    with pytest.raises(FileNotFoundError, match="asst00, asst01.*<voice>.wav"):
        make_tts_builder(spec, plan)
    assert make_tts_builder(spec, {**plan, "config": "magpie"}).tts.missing_voices(["asst00"]) == ["asst00"]
    with pytest.raises(FileNotFoundError, match="no reference clip for asst00"):
        make(model_dir, speakers).synthesize("こんにちは。", speaker_by_name("asst00"), seed=1)

    tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(24000) / 24000)).astype(np.float32)
    for p in ASSISTANT_PROFILES:
        sf.write(speakers / f"{p.name}.wav", tone, 24000)
        (speakers / f"{p.name}.txt").write_text(f"{p.name}の声です。", encoding="utf-8")
    builder = make_tts_builder(spec, {**plan, "tts_reading": "kana"})  # through the kana-reading wrapper too
    inner = builder.tts.inner
    assert set(inner.model.spk) == {p.name for p in PROFILES + ASSISTANT_PROFILES}
    assert inner.model.spk["asst01"][0] == "asst01の声です。"
    audio, sr = builder.tts.synthesize("こんにちは。", speaker_by_name("asst01"), seed=1)
    assert sr == 24000 and audio.size > 0
