"""The runtime's frontend against upstream's (the oracle): text tokens, each feature, a registered speaker,
and the speakers cache.

Upstream's CosyVoiceFrontEnd is built from the tiny folder as cli/cosyvoice.py builds it (hyperpyyaml's
get_tokenizer and feat_extractor, the two ONNX paths). Its torchaudio is the test stand-in here (soxr
Resample, a Kaldi fbank), so for a 16 kHz clip both sides run the same pipeline and agree to float
rounding; a 24 kHz clip shows the one intended difference (our mel comes from the clip, not a 24->16->24
kHz round trip).
"""
from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest
import soundfile as sf
import soxr

from jaspeech.synthesis.mel import hz_to_mel, mel_to_hz
from jaspeech.synthesis.tts.cosyvoice2_runtime import frontend as fr
from jaspeech.synthesis.tts.cosyvoice2_runtime.config import kwargs, read_config
from tests.synthesis.tiny_cosyvoice2 import STANDINS

TEXT = "こんにちは、今日はよろしくお願いします。"


def voice(sr: int, seconds: float = 3.0, f0: float = 150.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a slow tremolo (like test_cosyvoice2_upstream's speakers) plus faint noise, so
    every mel bin up to 8 kHz holds some energy."""
    t = np.arange(int(seconds * sr)) / sr
    tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3)) * 0.2 * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return (tone + 0.01 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


def write_speaker(folder, name: str, sr: int = 16000, f0: float = 150.0, text: str = TEXT, seconds: float = 3.0):
    sf.write(folder / f"{name}.wav", voice(sr, seconds, f0), sr)
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder / f"{name}.wav"


@pytest.fixture(scope="module")
def upstream_frontend(upstream_modules, tiny_folder):
    from cosyvoice.cli.frontend import CosyVoiceFrontEnd

    configs = upstream_modules.configs  # load_hyperpyyaml(cosyvoice2.yaml, qwen_pretrain_path=<folder>/CosyVoice-BlankEN)
    return CosyVoiceFrontEnd(configs["get_tokenizer"], configs["feat_extractor"], str(tiny_folder / "campplus.onnx"),
                             str(tiny_folder / "speech_tokenizer_v2.onnx"), "", configs["allowed_special"])


@pytest.fixture
def runs(monkeypatch):
    """Counts ONNX session runs (the expensive part a cache hit must skip)."""
    count = {"n": 0}
    real = fr.onnx_session

    class Counting:
        def __init__(self, session):
            self.session = session

        def get_inputs(self):
            return self.session.get_inputs()

        def run(self, *args, **kw):
            count["n"] += 1
            return self.session.run(*args, **kw)

    monkeypatch.setattr(fr, "onnx_session", lambda path, cuda=False: Counting(real(path, cuda)))
    return count


# ---------------------------------------------------------------- text tokens


def test_text_tokens_match_upstream(upstream_frontend, tiny_folder):
    ours = fr.TextTokenizer.from_folder(tiny_folder)
    theirs = upstream_frontend.tokenizer
    texts = ["こんにちは", "カタカナとひらがな", "今日は良い天気ですね。", "「はい」、そうです！？…",
             "[breath]えっと、[laughter]そうですね", "GPUで3.5倍速い (mixed ASCII)", "<|endofprompt|>hello", ""]
    for text in texts:
        assert ours.encode(text) == theirs.encode(text, allowed_special="all"), text
    breath = ours.encode("[breath]")
    assert breath == [theirs.tokenizer.convert_tokens_to_ids("[breath]")]  # one added token, not BPE pieces


# ---------------------------------------------------------------- features


def test_mel_filterbank_matches_librosa_and_whisper(upstream):
    import librosa
    import whisper.audio

    for sr, n_fft, n_mels, fmin, fmax in [(16000, 400, 128, 0.0, None), (16000, 400, 80, 0.0, None),
                                          (24000, 1920, 80, 0.0, 8000.0), (22050, 1024, 100, 30.0, 9000.0)]:
        ours = fr.mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        assert ours.dtype == np.float32 and ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    for n_mels in (80, 128):  # whisper ships librosa's matrix as mel_filters.npz
        shipped = whisper.audio.mel_filters("cpu", n_mels).numpy()
        np.testing.assert_allclose(fr.mel_filterbank(16000, 400, n_mels), shipped, rtol=0, atol=1e-6)


def test_whisper_log_mel_matches_whisper(upstream):
    import torch
    import whisper

    x = voice(16000, 2.3)
    ref = whisper.log_mel_spectrogram(torch.from_numpy(x)[None], n_mels=128).numpy()  # as upstream calls it
    ours = fr.whisper_log_mel(x)
    assert ref.shape == (1, 128, x.size // 160) and ours.shape == ref.shape[1:]
    np.testing.assert_allclose(ours, ref[0], rtol=0, atol=1e-5)


def test_kaldi_fbank_matches_standin(upstream):
    import torch

    spec = importlib.util.spec_from_file_location(
        "kaldi_standin", STANDINS / "torchaudio" / "torchaudio" / "compliance" / "kaldi.py")
    kaldi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kaldi)
    for x in (voice(16000, 1.7), np.random.default_rng(1).uniform(-0.5, 0.5, 8123).astype(np.float32)):
        ref = kaldi.fbank(torch.from_numpy(x)[None], num_mel_bins=80, dither=0, sample_frequency=16000).numpy()
        ours = fr.kaldi_fbank(x)
        assert ours.shape == ref.shape == (1 + (x.size - 400) // 160, 80)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)
    assert fr.kaldi_fbank(np.ones(300, np.float32)).shape == (0, 80)  # shorter than one 25 ms frame


def test_prompt_mel_matches_matcha(upstream, tiny_folder):
    import torch
    from matcha.utils.audio import mel_spectrogram

    args = kwargs(read_config(tiny_folder)["feat_extractor"])
    assert args == dict(n_fft=1920, num_mels=80, sampling_rate=24000, hop_size=480, win_size=1920, fmin=0,
                        fmax=8000, center=False)
    x = voice(24000, 2.1)
    ref = mel_spectrogram(torch.from_numpy(x)[None], **args)[0].T.numpy()
    ours = fr.prompt_mel(x, **args)
    assert ours.shape == ref.shape == ((x.size + 2 * 720 - 1920) // 480 + 1, 80)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


# ---------------------------------------------------------------- a registered speaker


def upstream_prompt(upstream_frontend, wav, text):
    """upstream add_zero_shot_spk's data for a wav, given the 16 kHz tensor from the same soxr resampling."""
    import torch

    audio, sr = sf.read(str(wav), dtype="float32")
    audio_16k = audio if sr == 16000 else soxr.resample(audio, sr, 16000)
    out = upstream_frontend.frontend_zero_shot("", text, torch.from_numpy(audio_16k)[None], 24000, "")
    return (out["prompt_text"][0].tolist(), out["llm_prompt_speech_token"][0].tolist(),
            out["prompt_speech_feat"][0].numpy(), out["flow_embedding"][0].numpy())


def test_16k_speaker_matches_upstream(upstream_frontend, tiny_folder, tmp_path):
    wav = write_speaker(tmp_path, "spk00", sr=16000, seconds=3.03)  # 76 tokens, 151 mel frames: both cut to 75
    ours = fr.register_speaker(tiny_folder, wav, TEXT + "\n", "spk00")
    text_tokens, speech_tokens, feat, embedding = upstream_prompt(upstream_frontend, wav, TEXT)
    assert ours.name == "spk00" and ours.text == TEXT
    assert ours.text_tokens == text_tokens
    assert ours.speech_tokens == speech_tokens and len(speech_tokens) == 75
    assert ours.feat.dtype == np.float32 and ours.feat.shape == feat.shape == (150, 80)
    np.testing.assert_allclose(ours.feat, feat, rtol=0, atol=1e-5)
    assert ours.embedding.dtype == np.float32 and ours.embedding.shape == (192,)
    np.testing.assert_allclose(ours.embedding, embedding, rtol=0, atol=1e-5)


def test_24k_speaker_differs_from_upstream_only_near_8khz(upstream_frontend, tiny_folder, tmp_path):
    """Upstream gets the 16 kHz signal and resamples it back to 24 kHz for the mel; we take the mel of the
    24 kHz clip itself. Tokens and embedding (both from the same 16 kHz signal) agree; the mel agrees
    except in the top bins, where the 16 kHz round trip has cut the energy soxr's low-pass removes
    (above ~7.3 kHz)."""
    wav = write_speaker(tmp_path, "spk01", sr=24000)
    ours = fr.register_speaker(tiny_folder, wav, TEXT, "spk01")
    text_tokens, speech_tokens, feat, embedding = upstream_prompt(upstream_frontend, wav, TEXT)
    assert ours.text_tokens == text_tokens and ours.speech_tokens == speech_tokens
    np.testing.assert_allclose(ours.embedding, embedding, rtol=0, atol=1e-5)
    assert ours.feat.shape == feat.shape == (150, 80)
    # the slaney mel edges of the 80 bins (0..8 kHz): bin i spans edges[i]..edges[i + 2]
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(8000.0), 82))
    low = edges[2:] <= 7000.0
    assert low.sum() >= 75
    assert np.abs(ours.feat[:, low] - feat[:, low]).max() < 0.02  # resampling ripple only
    assert (ours.feat[:, -1] - feat[:, -1]).mean() > 0.5  # ours keeps the energy near 8 kHz


# ---------------------------------------------------------------- speakers folder and cache


def same(a: fr.SpeakerPrompt, b: fr.SpeakerPrompt) -> bool:
    return (a.name, a.text, a.text_tokens, a.speech_tokens) == (b.name, b.text, b.text_tokens, b.speech_tokens) \
        and a.feat.dtype == b.feat.dtype == np.float32 and np.array_equal(a.feat, b.feat) \
        and a.embedding.dtype == b.embedding.dtype == np.float32 and np.array_equal(a.embedding, b.embedding)


@pytest.fixture
def speakers(tmp_path):
    folder = tmp_path / "speakers"
    folder.mkdir()
    for i, name in enumerate(("spk00", "spk01", "asst00")):
        write_speaker(folder, name, sr=(16000, 24000, 22050)[i], f0=110.0 + 40 * i)
    return folder


def test_second_load_reads_the_cache(tiny_folder, speakers, tmp_path, runs):
    names = ["spk01", "spk00", "asst00"]
    fresh = fr.load_speakers(tiny_folder, speakers, names)
    assert list(fresh) == names and runs["n"] == 6  # two ONNX models per speaker
    cache = tmp_path / "cache"
    first = fr.load_speakers(tiny_folder, speakers, names, cache_dir=cache)
    assert runs["n"] == 12
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("cosyvoice2-speakers-") and files[0].suffix == ".npz"
    again = fr.load_speakers(tiny_folder, speakers, names, cache_dir=cache)
    assert runs["n"] == 12  # no ONNX run: read from the file
    assert list(again) == names and all(same(again[n], fresh[n]) and same(first[n], fresh[n]) for n in names)
    assert all(p.feat.shape == (2 * len(p.speech_tokens), 80) for p in again.values())


def test_changed_wav_or_txt_invalidates_the_cache(tiny_folder, speakers, tmp_path, runs):
    cache = tmp_path / "cache"
    names = ["spk00", "spk01"]
    before = fr.load_speakers(tiny_folder, speakers, names, cache_dir=cache)
    assert runs["n"] == 4
    write_speaker(speakers, "spk01", sr=24000, f0=300.0)  # another clip, same transcript
    after_wav = fr.load_speakers(tiny_folder, speakers, names, cache_dir=cache)
    assert runs["n"] == 8 and len(list(cache.iterdir())) == 2
    assert not np.array_equal(after_wav["spk01"].feat, before["spk01"].feat)
    (speakers / "spk00.txt").write_text("ありがとうございました。", encoding="utf-8")
    after_txt = fr.load_speakers(tiny_folder, speakers, names, cache_dir=cache)
    assert runs["n"] == 12 and len(list(cache.iterdir())) == 3
    assert after_txt["spk00"].text == "ありがとうございました。"
    assert after_txt["spk00"].text_tokens == fr.TextTokenizer.from_folder(tiny_folder).encode("ありがとうございました。")
    fr.load_speakers(tiny_folder, speakers, names, cache_dir=cache)
    assert runs["n"] == 12  # the new state is cached in its turn


def test_corrupt_or_foreign_cache_is_recomputed(tiny_folder, speakers, tmp_path, runs):
    cache = tmp_path / "cache"
    good = fr.load_speakers(tiny_folder, speakers, ["spk00"], cache_dir=cache)
    path = next(cache.iterdir())
    valid = path.read_bytes()
    other = fr.load_speakers(tiny_folder, speakers, ["spk01"], cache_dir=cache)  # another speaker set's file
    other_path = next(p for p in cache.iterdir() if p != path)
    assert runs["n"] == 4
    for i, broken in enumerate([b"not an npz at all", valid[: len(valid) // 2], other_path.read_bytes()]):
        path.write_bytes(broken)  # garbage, truncated, a valid file of other speakers under this name
        loaded = fr.load_speakers(tiny_folder, speakers, ["spk00"], cache_dir=cache)
        assert runs["n"] == 4 + 2 * (i + 1) and same(loaded["spk00"], good["spk00"])
        assert path.read_bytes() != broken  # rewritten whole
    fr.load_speakers(tiny_folder, speakers, ["spk00"], cache_dir=cache)
    assert runs["n"] == 10 and same(other["spk01"], fr.load_speakers(tiny_folder, speakers, ["spk01"], cache)["spk01"])


def test_cache_write_is_atomic(tiny_folder, speakers, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    prompts = fr.load_speakers(tiny_folder, speakers, ["spk00", "spk01"], cache_dir=cache)
    path = next(cache.iterdir())
    assert [p.name for p in cache.iterdir()] == [path.name] and (path.stat().st_mode & 0o777) == 0o644
    files = fr._speaker_files(speakers, ["spk00", "spk01"])
    digest = fr.speakers_digest(tiny_folder, files)
    assert path == fr.cache_path(cache, digest)

    # concurrent writers of the same digest (racing Slurm tasks): a reader always sees one whole file
    bad_reads = []
    stop = threading.Event()

    def writer():
        for _ in range(15):
            fr._write_cache(path, digest, prompts)

    def reader():
        while not stop.is_set():
            if fr._read_cache(path, digest, files) is None:
                bad_reads.append(1)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert bad_reads == [] and [p.name for p in cache.iterdir()] == [path.name]  # no temporary file left

    # a write that dies half way leaves no cache file (and no temporary one); the prompts still come back
    path.unlink()
    real_savez = np.savez

    def dies(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(fr.np, "savez", dies)
    loaded = fr.load_speakers(tiny_folder, speakers, ["spk00", "spk01"], cache_dir=cache)
    assert same(loaded["spk00"], prompts["spk00"]) and list(cache.iterdir()) == []
    monkeypatch.setattr(fr.np, "savez", real_savez)


# ---------------------------------------------------------------- input checks


def test_unusable_inputs_say_what_to_do(tiny_folder, tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(48000, np.float32), 16000)
    with pytest.raises(ValueError, match="empty or silent; use a 3-10 s recording"):
        fr.register_speaker(tiny_folder, tmp_path / "silent.wav", TEXT, "silent")
    long = write_speaker(tmp_path, "long", seconds=31.0)
    with pytest.raises(ValueError, match=r"lasts 31\.0 s; upstream takes at most 30 s"):
        fr.register_speaker(tiny_folder, long, TEXT, "long")
    short = write_speaker(tmp_path, "short", seconds=0.2)
    with pytest.raises(ValueError, match=r"lasts 0\.20 s, too short"):
        fr.register_speaker(tiny_folder, short, TEXT, "short")
    (tmp_path / "text.wav").write_text("this is not audio", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read reference clip .*text.wav.*must be a wav file"):
        fr.register_speaker(tiny_folder, tmp_path / "text.wav", TEXT, "text")
    with pytest.raises(FileNotFoundError, match="nowhere.wav does not exist"):
        fr.register_speaker(tiny_folder, tmp_path / "nowhere.wav", TEXT, "nowhere")
    with pytest.raises(ValueError, match="transcript is empty"):
        fr.register_speaker(tiny_folder, long, "  \n", "long")

    speakers = tmp_path / "speakers"
    speakers.mkdir()
    write_speaker(speakers, "spk00")
    write_speaker(speakers, "spk01", text="\n")
    with pytest.raises(ValueError, match=r"spk01\.txt is empty: it must hold the transcript of spk01\.wav"):
        fr.load_speakers(tiny_folder, speakers, ["spk00", "spk01"], cache_dir=tmp_path / "cache")
    (speakers / "spk00.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks spk00\.wav, spk02\.wav, spk02\.txt: each speaker needs"):
        fr.load_speakers(tiny_folder, speakers, ["spk00", "spk02"])
    assert not (tmp_path / "cache").exists()  # nothing cached from a failed load
