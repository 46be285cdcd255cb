"""The CER protocol: kotoba-whisper normalised rates and jiwer's raw rates, against the published evaluation.

jiwer (the `test` extra) is the oracle for the raw rates: the library computes them with rapidfuzz.
"""
import csv
import json
import random
import sys

import jiwer
import pytest

from jaspeech.cer import (basic_text_normalize, corpus_rates, jiwer_cer, jiwer_chars, jiwer_wer, jiwer_words,
                          kotoba_normalize)
from jaspeech.cli import main
from jaspeech.model.eval.predictions import cer_metrics
from tests.conftest import DATA

REF = DATA / "ja-speech-llm-eval"
PREDICTIONS = sorted(REF.glob("step*.csv"))
PUBLISHED = [json.loads(line) for line in (REF / "metric.jsonl").read_text().splitlines() if line.strip()]

# every kind of whitespace jiwer's transforms treat specially (str.isspace), and text of both scripts
WHITESPACE = [" ", " ", " ", "\u3000", "\n", "\t", "\r", "\x0b", "\x0c", "\xa0", "\u2028", "\x1c", "\x85"]
WORDS = ["今日", "は", "いい", "天気", "です", "。", "カタカナ", "東京都", "3月", "ＡＢＣ", "hello", "World",
         "a", "b", "it's", "123", "、", "!", "(笑)", "[noise]"]


def random_text(rng: random.Random) -> str:
    """Words joined by random whitespace runs, with optional leading/trailing whitespace; sometimes empty."""
    kind = rng.random()
    if kind < 0.06:
        return ""
    if kind < 0.10:
        return "".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 4)))
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 8))]
    text = words[0]
    for w in words[1:]:
        text += "".join(rng.choice(WHITESPACE) for _ in range(rng.choice([0, 1, 1, 1, 2, 3]))) + w
    if rng.random() < 0.4:
        text = "".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 3))) + text
    if rng.random() < 0.4:
        text += "".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 3)))
    return text


def hypothesis_for(reference: str, rng: random.Random) -> str:
    """An empty, unrelated or edited hypothesis (characters dropped, replaced, whitespace inserted)."""
    kind = rng.random()
    if kind < 0.1:
        return ""
    if kind < 0.25:
        return random_text(rng)
    chars = list(reference)
    for _ in range(rng.randint(0, 4)):
        op, pos = rng.random(), rng.randint(0, len(chars))
        if op < 0.3 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.6:
            chars.insert(pos, rng.choice(WHITESPACE))
        elif chars:
            chars[min(pos, len(chars) - 1)] = rng.choice("あいうxyz。 ")
    return "".join(chars)


@pytest.mark.parametrize("seed", range(40))
def test_raw_rates_equal_jiwer_on_generated_corpora(seed):
    rng = random.Random(seed)
    refs = [random_text(rng) for _ in range(rng.randint(1, 40))]
    refs[0] = refs[0] if jiwer_chars(refs[0]) else "基準"  # at least one non-empty reference
    hyps = [hypothesis_for(r, rng) for r in refs]
    assert jiwer_cer(refs, hyps) == pytest.approx(jiwer.cer(refs, hyps), abs=1e-9)
    assert jiwer_wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps), abs=1e-9)
    for ref, hyp in zip(refs, hyps):  # and utterance by utterance, given as plain strings
        if jiwer_chars(ref):
            assert jiwer_cer(ref, hyp) == pytest.approx(jiwer.cer(ref, hyp), abs=1e-9)
            assert jiwer_wer(ref, hyp) == pytest.approx(jiwer.wer(ref, hyp), abs=1e-9)


def test_generated_corpora_exercise_the_whitespace_rules():
    """The generator does produce the cases that distinguish jiwer's rules from str.split / no strip."""
    rng = random.Random(0)
    refs = [random_text(rng) for _ in range(2000)]
    assert any(r != r.strip() for r in refs) and any(not r.strip() for r in refs) and "" in refs
    assert any(len(jiwer_words(r)) != len(r.split()) for r in refs)  # a single tab / U+3000 joins words


def test_jiwer_whitespace_rules():
    assert jiwer_chars("\u3000 あ い\n\t") == "あ い"  # both ends stripped, inner kept
    assert jiwer_words("a\tb c") == ["a\tb", "c"]  # a single tab does not split words
    assert jiwer_words("a\u3000b") == ["a\u3000b"] and jiwer_words("a \u3000b") == ["a", "b"]
    assert jiwer_words("\n\n応答:\n\nだいぶ前から。") == ["応答:", "だいぶ前から。"]
    assert jiwer_words("  ") == [] and jiwer_chars("\u3000\n") == ""
    assert jiwer_cer(" \u3000ab\n", "ab") == 0.0 == jiwer.cer(" \u3000ab\n", "ab")
    assert jiwer_wer("a\tb c", "a b c") == 1.0 == jiwer.wer("a\tb c", "a b c")
    # jiwer_words' fast path for printable text relies on this: the ASCII space is the only printable whitespace
    assert [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() and c.isprintable()] == [" "]


def test_empty_inputs_where_jiwer_returns_a_count_raise():
    """Where every reference is empty jiwer returns the insertion count, not a rate; we raise instead."""
    assert jiwer.cer([""], ["ab"]) == 2 and jiwer.cer([], []) == 0
    for refs, hyps in (([""], ["ab"]), ([], []), (["", " \u3000"], ["", ""])):
        with pytest.raises(ValueError, match="every reference is empty"):
            jiwer_cer(refs, hyps)
        with pytest.raises(ValueError, match="every reference is empty"):
            jiwer_wer(refs, hyps)
    with pytest.raises(ValueError):
        jiwer.cer(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="1 references but 2 hypotheses"):
        jiwer_cer(["a"], ["a", "b"])
    # an empty reference among others: its hypothesis counts as insertions, as in jiwer
    assert jiwer_cer(["", "abcd"], ["xy", "abcd"]) == 0.5 == jiwer.cer(["", "abcd"], ["xy", "abcd"])


def test_basic_normalizer_matches_whisper_rules():
    assert basic_text_normalize("Hello, World! [noise] (aside)") == "hello world "
    assert kotoba_normalize("木村さんは、写真を見せてくれました。.") == "木村さんは写真を見せてくれました"
    assert kotoba_normalize("ＡＢＣ １２３") == "abc123"  # NFKC, lower case, spaces removed


def test_corpus_rates_are_total_edits_over_total_length():
    rates = corpus_rates(["abcd", "", "ef"], ["abxd", "zzz", ""])
    assert rates.n == 2  # the empty reference is dropped
    assert rates.cer == pytest.approx(100 * (1 + 2) / 6)
    assert corpus_rates(["", " "], ["a", "b"]).n == 0


def published_line(path) -> dict:
    step, dataset = path.stem.split(".")
    lines = [m for m in PUBLISHED if m["model"].endswith(step) and m["dataset"].endswith(dataset)]
    assert len(lines) == 1, path
    return lines[0]


def test_the_carried_files_include_the_whitespace_regression_case():
    assert [p.name for p in PREDICTIONS] == ["step110000.reazonspeech_test.csv", "step200000.common_voice_8_0.csv",
                                             "step200000.jsut_basic5000.csv", "step200000.reazonspeech_test.csv"]
    assert published_line(REF / "step110000.reazonspeech_test.csv")["cer_raw"] == pytest.approx(16.8123, abs=1e-4)


@pytest.mark.parametrize("path", PREDICTIONS, ids=lambda p: p.stem)
def test_published_predictions_reproduced(path, capsys):
    """`eval cer` equals jiwer on the raw columns and the published metric.jsonl on every column."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        assert kotoba_normalize(r["reference_raw"]) == r["reference_norm"]
        assert kotoba_normalize(r["prediction_raw"]) == r["prediction_norm"]
    refs, preds = [r["reference_raw"] for r in rows], [r["prediction_raw"] for r in rows]
    assert main(["eval", "cer", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == len(rows)
    assert printed["cer_raw"] == pytest.approx(100 * jiwer.cer(refs, preds), abs=1e-9)
    assert printed["wer_raw"] == pytest.approx(100 * jiwer.wer(refs, preds), abs=1e-9)
    published = published_line(path)
    for key in ("cer_norm", "cer_raw", "wer_norm", "wer_raw"):
        assert printed[key] == pytest.approx(published[key], abs=1e-9)
    direct = cer_metrics(refs, preds)
    assert direct["cer_norm"] == printed["cer_norm"]


def test_eval_cer_rejects_a_file_without_the_columns(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\n1,あ\n", encoding="utf-8")
    assert main(["eval", "cer", str(bad)]) == 2
    assert "needs the columns reference_raw and prediction_raw" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("id,reference_norm,prediction_norm,reference_raw,prediction_raw\n1,,,「」,x\n", encoding="utf-8")
    assert main(["eval", "cer", str(empty)]) == 2
    assert "nothing to score" in capsys.readouterr().err
