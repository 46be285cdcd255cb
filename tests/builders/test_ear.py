"""The fair ear (builders/ear.py): the forced rule on real Kokoro takes heard by Whisper base (the offline stack),
its controls, retakes of a failing turn, and `jaspeech hear`.

The controls are the ones `benchmarks/ear_controls.py` measures at scale: a take that says its text is kept; the
same take cut short, the take of another text, a minimal pair (one word said differently), silence and noise are
rejected.
"""
import json
import math

import numpy as np
import pytest
import soundfile as sf

from jaspeech.builders import corpus_spec
from jaspeech.builders.ear import EarRule, forced_fails, spoken_pieces, tail_span, worst_span
from jaspeech.builders.pipeline import RowBuilder, SynthesisOptions, turn_items
from jaspeech.builders.schema import RowReject
from jaspeech.cli import main
from jaspeech.synthesis.asr import Forced, make_asr
from jaspeech.synthesis.speakers import assign_speaker
from jaspeech.synthesis.tts import make_tts

# user turns of the bundled magpie sample, and minimal pairs of two of them (one content word replaced)
TEXTS = ["おすすめの朝ごはんを教えてください。", "日本で一番高い山は何ですか。", "子どもと家でできる遊びを考えてください。"]
MINIMAL = {TEXTS[0]: "おすすめの晩ごはんを教えてください。", TEXTS[1]: "日本で一番高い塔は何ですか。"}


@pytest.fixture(scope="module")
def stack():
    return make_tts("kokoro"), make_asr("faster-whisper")


@pytest.fixture(scope="module")
def takes(stack):
    tts, _ = stack
    said = TEXTS + list(MINIMAL.values())
    return {t: tts.synthesize(t, assign_speaker("ear-test", str(k)), k) for k, t in enumerate(said)}


def judge(asr, audio, text):
    return forced_fails(asr.score([audio], [text])[0], EarRule())


def cut(asr, audio, text, share):
    """The take cut where the spoken piece at `share` of its text starts (as the benchmark's truncations)."""
    forced = asr.score([audio], [text])[0]
    pieces = spoken_pieces(forced)
    k = min(len(pieces) - 1, max(1, math.ceil(share * len(pieces))))
    samples, sr = audio
    return samples[: int(forced.starts[pieces[k]] * sr)], sr


def test_takes_that_say_their_text_are_kept(stack, takes):
    _, asr = stack
    for t in TEXTS:
        assert judge(asr, takes[t], t) is None, t


@pytest.mark.parametrize("share", [0.5, 0.75, 0.9])
def test_truncated_takes_are_rejected(stack, takes, share):
    _, asr = stack
    for t in TEXTS:
        assert judge(asr, cut(asr, takes[t], t, share), t) is not None, (t, share)


def test_swapped_takes_minimal_pairs_silence_and_noise_are_rejected(stack, takes):
    _, asr = stack
    for k, t in enumerate(TEXTS):
        assert judge(asr, takes[TEXTS[(k + 1) % len(TEXTS)]], t) is not None  # another text's take
    for t, variant in MINIMAL.items():
        span = judge(asr, takes[variant], t)
        assert span is not None and span.text in t  # the reject names the stretch of the text not said
    samples, sr = takes[TEXTS[0]]
    noise = (np.random.default_rng(0).standard_normal(samples.size) * 0.03).astype(np.float32)
    assert judge(asr, (np.zeros_like(samples), sr), TEXTS[0]) is not None
    assert judge(asr, (noise, sr), TEXTS[0]) is not None


def test_a_clip_scores_the_same_alone_and_with_neighbours(stack, takes):
    _, asr = stack
    alone = asr.score([takes[TEXTS[1]]], [TEXTS[1]])[0]
    together = asr.score([takes[TEXTS[0]], takes[TEXTS[1]]], [TEXTS[0], TEXTS[1]])[1]
    assert alone == together
    assert "".join(alone.tokens) == TEXTS[1] and len(alone.logprobs) == len(alone.starts) == len(alone.tokens)
    assert all(a <= b for a, b in zip(alone.starts, alone.ends)) and alone.starts == sorted(alone.starts)


KANA = "あいうえおかきくけこさしすせそ"


def forced(logprobs, own=None, times=None, tokens=None, own_tokens=None):
    """A Forced built by hand (stand-in numbers, to pin the rule's arithmetic): one piece per 0.2 s; the ear's own
    transcript is the text itself unless `own_tokens` says what it heard instead."""
    n = len(logprobs)
    tokens = tokens or list(KANA[:n])
    starts = [0.2 * k for k in range(n)] if times is None else [s for s, _ in times]
    ends = [0.2 * (k + 1) for k in range(n)] if times is None else [e for _, e in times]
    own = own if own is not None else [-0.1] * n
    own_tokens = own_tokens or tokens
    return Forced("".join(own_tokens), tokens, logprobs, starts, ends, own_tokens, own, [0.2 * k for k in range(n)],
                  [0.2 * (k + 1) for k in range(n)])


def test_the_rule_judges_stretches_against_the_ears_own_transcript():
    rule = EarRule()
    assert forced_fails(forced([-0.2] * 8), rule) is None
    # one rare word the ear spells otherwise (two pieces ~3 nats below its own guess): kept
    assert forced_fails(forced([-0.1, -3.2, -3.0, -0.1, -0.1, -0.1, -0.1, -0.1]), rule) is None
    # a word the audio does not say (the ear heard さしす there): the worst stretch is rejected and named
    heard_else = list(KANA[:2]) + list("さしす") + list(KANA[5:8])
    span = forced_fails(forced([-0.1, -0.1, -9.0, -6.0, -4.0, -0.1, -0.1, -0.1], own_tokens=heard_else), rule)
    assert span is not None and (span.first, span.last) == (2, 5) and span.deficit > rule.max_deficit
    # the same numbers where the ear's own transcript says the same sound (a spelling it would not choose): kept
    assert forced_fails(forced([-0.1, -0.1, -9.0, -6.0, -4.0, -0.1, -0.1, -0.1]), rule) is None
    # where the ear's own transcript is unsure (noise), the floor still asks the text for -1 per piece
    assert forced_fails(forced([-4.0] * 8, own=[-4.5] * 8, own_tokens=list("さしすせそさしす")), rule) is not None
    # punctuation is not judged: the ear writes 。 or nothing for the same sentence end
    assert forced_fails(forced([-0.1] * 7 + [-6.0], tokens=list(KANA[:7]) + ["。"],
                               own_tokens=list("さしすせそさしす")), rule) is None


def test_a_spelling_the_ear_would_not_choose_is_told_from_another_sound():
    # 以下五桁 said right, the ear writing いかごけた: far below its own spelling, the same sound
    text = forced([-0.1, -4.0, -3.5, -3.2, -0.1], tokens=["点", "以下", "五", "桁", "まで"],
                  own_tokens=["点", "いか", "ご", "けた", "まで"])
    assert worst_span(text, 3).deficit > EarRule().max_deficit and forced_fails(text, EarRule()) is None
    # 以下五桁 in the text, the audio saying 以上三桁: the sound differs, rejected
    other = forced([-0.1, -4.0, -3.5, -3.2, -0.1], tokens=["点", "以下", "五", "桁", "まで"],
                   own_tokens=["点", "いじょう", "さん", "けた", "まで"])
    assert forced_fails(other, EarRule()) is not None


def test_an_unsaid_end_is_judged_by_its_collapsed_pieces():
    # the last two pieces squeezed into the clip's last instant (a take that stopped early): summed, rejected
    times = [(0.2 * k, 0.2 * (k + 1)) for k in range(6)] + [(1.2, 1.2), (1.2, 1.2)]
    f = forced([-0.1] * 6 + [-1.4, -1.2], times=times, own_tokens=list(KANA[:6]) + ["", ""])
    assert worst_span(f, 3).deficit < EarRule().max_deficit  # the window alone would keep it
    tail = tail_span(f)
    assert (tail.first, tail.last) == (6, 8) and forced_fails(f, EarRule()) == tail


class PlantedBadTakes:
    """Kokoro, except that the takes whose first seed is planted say another text (a take gone wrong)."""

    def __init__(self, tts, bad_seeds):
        self.tts, self.bad_seeds, self.name = tts, bad_seeds, tts.name

    def synthesize(self, text, speaker, seed):
        return self.tts.synthesize("今日はとても良い天気ですね。" if seed in self.bad_seeds else text, speaker, seed)


def _builder(stack, bad_takes, max_takes=3):
    tts, asr = stack
    spec = corpus_spec("jaspeech-sft-audio")
    config = spec.configs["magpie"]
    raw = {"id": "r", "conversations": [{"role": "user", "content": TEXTS[1]}, {"role": "assistant", "content": "はい。"}]}
    voice = assign_speaker(config.hub_id, "r")
    seeds = {turn_items(config.hub_id, "r", 0, TEXTS[1], voice, take)[0].seed for take in bad_takes}
    builder = RowBuilder(spec, config, PlantedBadTakes(tts, seeds), asr, SynthesisOptions(max_takes=max_takes))
    return builder, raw


def test_a_retake_saves_a_row_whose_first_take_is_bad(stack):
    builder, raw = _builder(stack, bad_takes=[1])
    [row] = builder.finish([builder.prepare(0, raw, "r")])
    assert not isinstance(row, RowReject), row
    turn = row["turns"][0]
    assert turn["takes"] == 2 and turn["worst_deficit"] <= EarRule().max_deficit and turn["text_logprob"] > -1
    assert builder.timers.retake > 0


def test_a_row_whose_every_take_fails_lists_every_take_best_first(stack):
    builder, raw = _builder(stack, bad_takes=[1, 2, 3])
    [reject] = builder.finish([builder.prepare(0, raw, "r")])
    assert isinstance(reject, RowReject) and reject.reason == "roundtrip"
    assert "3 takes, best first" in reject.detail
    assert all(f"take {k}:" in reject.detail for k in (1, 2, 3)) and "the audio does not say" in reject.detail


def test_one_take_means_no_retake(stack):
    builder, raw = _builder(stack, bad_takes=[1], max_takes=1)
    [reject] = builder.finish([builder.prepare(0, raw, "r")])
    assert isinstance(reject, RowReject) and "1 take, best first" in reject.detail


def test_hear_prints_the_verdict_on_a_kept_and_a_truncated_clip(stack, takes, tmp_path, capsys):
    _, asr = stack
    text = TEXTS[1]
    samples, sr = takes[text]
    sf.write(tmp_path / "kept.wav", samples, sr)
    sf.write(tmp_path / "cut.flac", *cut(asr, takes[text], text, 0.5))
    assert main(["hear", str(tmp_path / "kept.wav"), "--text", text, "--json"]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert kept["keep"] is True and kept["reason"] is None and kept["transcript"] and kept["kana_cer"] <= 0.1
    assert main(["hear", str(tmp_path / "cut.flac"), "--text", text, "--json"]) == 0
    truncated = json.loads(capsys.readouterr().out)
    assert truncated["keep"] is False and truncated["reason"].startswith("roundtrip: the audio does not say")
    assert main(["hear", str(tmp_path / "cut.flac"), "--text", text]) == 0
    assert capsys.readouterr().out.startswith("reject: roundtrip")
    assert main(["hear", str(tmp_path / "missing.wav"), "--text", text]) == 2
    assert "cannot read" in capsys.readouterr().err
