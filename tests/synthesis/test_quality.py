"""The quality stage hears what it should: real Kokoro clips of the bundled sample, Microsoft's real DNSMOS models.

The features are checked against librosa (the test oracle the package's own code uses), and the scores against
`speechmos.dnsmos.run` itself, with its own sliding windows, on the same clips.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import jaspeech.builders
from jaspeech.synthesis.audio import decode_audio, encode_flac, resample
from jaspeech.synthesis.mel import mel_filterbank, melspectrogram, power_to_db
from jaspeech.synthesis.quality import signal_checks
from jaspeech.synthesis.quality.dnsmos import DNSMOS, WINDOW, p808_features, window_starts
from jaspeech.synthesis.speakers import PROFILES

SAMPLE = Path(jaspeech.builders.__file__).parent / "samples" / "magpie.jsonl"


@pytest.fixture(scope="module")
def kokoro_clips() -> list[tuple[np.ndarray, int]]:
    """The sample's first two instructions spoken by Kokoro, as a build stores them (16-bit FLAC, decoded)."""
    from jaspeech.synthesis.tts import make_tts

    tts = make_tts("kokoro")
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:2]]
    clips = []
    for k, row in enumerate(rows):
        samples, sr = tts.synthesize(row["conversations"][0]["content"], PROFILES[7 * k], 0)
        clips.append(decode_audio(encode_flac(samples, sr)))
    assert all(1.0 < len(x) / sr < 9.0 for x, sr in clips)  # short instructions: one 9.01 s window each
    return clips


def test_p808_features_match_librosa():
    import librosa

    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal((2, 16000 * 3))).astype(np.float32)
    np.testing.assert_allclose(mel_filterbank(16000, 321, 120), librosa.filters.mel(sr=16000, n_fft=321, n_mels=120),
                               rtol=0, atol=1e-6)
    ours = melspectrogram(y, 16000, n_fft=321, hop_length=160, n_mels=120)
    for k in range(2):
        ref = librosa.feature.melspectrogram(y=y[k], sr=16000, n_fft=321, hop_length=160, n_mels=120)
        np.testing.assert_allclose(ours[k], ref, rtol=2e-4, atol=1e-7)
        np.testing.assert_allclose(power_to_db(ours)[k], librosa.power_to_db(ref, ref=np.max), atol=2e-3)
    window = (0.1 * rng.standard_normal((1, WINDOW))).astype(np.float32)
    assert p808_features(window).shape == (1, 900, 120)  # the P.808 model's input


def test_windowing():
    # speechmos: a start every second, but int((i + 9.01) * 16000) loses a sample for most i >= 7: those are skipped
    assert window_starts(30 * 16000, "speechmos") == [i * 16000 for i in range(7)]
    assert window_starts(int(9.5 * 16000), "speechmos") == [0]
    for seconds in (9.01, 9.5, 18.0, 18.1, 40.0):  # cover: the fewest windows, first at the start, last at the end
        n = round(seconds * 16000)
        starts = window_starts(n, "cover")
        assert len(starts) == -(-n // WINDOW) and starts[0] == 0 and starts[-1] + WINDOW == n
        assert all(b - a <= WINDOW for a, b in zip(starts, starts[1:]))  # no sample left out


def test_signal_checks_on_synthetic_clips():
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    gap = np.zeros(int(0.75 * sr), np.float32)
    s = signal_checks(np.concatenate([gap, tone, gap, tone, gap[: sr // 4]]), sr)
    assert s["leading_silence"] == pytest.approx(0.75, abs=0.02) and s["trailing_silence"] == pytest.approx(0.25, abs=0.02)
    assert s["longest_silence"] == pytest.approx(0.75, abs=0.03) and s["clipping"] == 0.0
    assert s["peak"] == pytest.approx(0.5, abs=1e-3) and s["rms_db"] < 20 * np.log10(0.5 / np.sqrt(2))
    silent = signal_checks(np.zeros(sr, np.float32), sr)
    assert silent["leading_silence"] == silent["trailing_silence"] == 1.0 and silent["longest_silence"] == 0.0


@pytest.mark.slow
def test_scores_reproduce_speechmos_on_kokoro_clips(kokoro_clips):
    """Our features, windows and calibration give speechmos's own scores (its `run`, its sliding windows)."""
    import speechmos.dnsmos as reference

    (a, sr_a), (b, sr_b) = kokoro_clips
    short = resample(a, sr_a, 16000)  # tiled by both to a whole window
    long = np.concatenate([short, resample(b, sr_b, 16000)] * 4)[: int(11.2 * 16000)]  # two windows
    assert len(window_starts(len(long), "speechmos")) == 2
    ours = DNSMOS(windows="speechmos").score([(short, 16000), (long, 16000)])
    for clip, mine in zip((short, long), ours):
        theirs = reference.run(clip, 16000)
        for key, name in (("sig", "sig_mos"), ("bak", "bak_mos"), ("ovrl", "ovrl_mos"), ("p808", "p808_mos")):
            assert mine[key] == pytest.approx(float(theirs[name]), abs=2e-3), key


@pytest.mark.slow
def test_clean_speech_scores_higher_than_noise_clipping_and_a_tone(kokoro_clips):
    rng = np.random.default_rng(0)
    scorer = DNSMOS()
    for x, sr in kokoro_clips:
        power = float(np.mean(np.square(x)))
        noisy = np.clip(x + rng.standard_normal(x.size).astype(np.float32) * np.sqrt(power / 10 ** 0.5), -1, 1)  # 5 dB
        clipped = np.clip(16 * x, -1.0, 1.0)  # 24 dB too loud: the peaks flattened at full scale
        tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(x.size) / sr)).astype(np.float32)
        clean, *worse = scorer.score([(x, sr), (noisy, sr), (clipped, sr), (tone, sr)])
        assert 1.0 <= clean["ovrl"] <= 5.0
        for name, w, margin in zip(("noise at 5 dB SNR", "clipped", "tone"), worse, (0.5, 0.05, 0.5)):
            assert clean["ovrl"] > w["ovrl"] + margin, (name, clean, w)  # clipping costs 0.1-0.4 OVRL here
        assert clean["bak"] > worse[0]["bak"] + 1.0  # the noise is heard as background
        assert clean["sig"] > worse[2]["sig"] + 0.5  # a tone is not speech
        alone = scorer.score([(x, sr)])[0]  # a clip's score does not depend on the clips batched with it
        assert alone == pytest.approx(clean, abs=1e-4)


@pytest.mark.slow
def test_signal_checks_find_injected_silence_and_clipping(kokoro_clips):
    x, sr = kokoro_clips[0]
    clean = signal_checks(x, sr)
    assert clean["clipping"] == 0.0 and clean["leading_silence"] < 0.2 and clean["trailing_silence"] < 0.2
    gap = np.zeros(int(1.5 * sr), np.float32)
    padded = signal_checks(np.concatenate([gap, x, gap[: int(0.8 * sr)]]), sr)
    assert padded["leading_silence"] == pytest.approx(1.5 + clean["leading_silence"], abs=0.02)
    assert padded["trailing_silence"] == pytest.approx(0.8 + clean["trailing_silence"], abs=0.02)
    inner = signal_checks(np.concatenate([x, gap[: int(1.2 * sr)], x]), sr)
    assert inner["longest_silence"] >= 1.2 and inner["leading_silence"] == pytest.approx(clean["leading_silence"])
    stored = decode_audio(encode_flac(np.clip(8 * x, -1.0, 1.0), sr))[0]  # clipped, then stored as a build would
    clipped = signal_checks(stored, sr)
    assert clipped["clipping"] > 0.01 and clipped["peak"] > 0.999 and clipped["rms_db"] > clean["rms_db"] + 10
