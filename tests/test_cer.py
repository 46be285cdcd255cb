"""The kotoba-whisper CER protocol reproduces the published JaSpeechLLM evaluation exactly."""
import csv
import json

import pytest

from jaspeech.cer import basic_text_normalize, corpus_rates, kotoba_normalize
from jaspeech.cli import main
from jaspeech.model.evaluation import cer_metrics
from tests.conftest import DATA

REF = DATA / "ja-speech-llm-eval"
DATASETS = ["common_voice_8_0", "jsut_basic5000", "reazonspeech_test"]


def test_basic_normalizer_matches_whisper_rules():
    assert basic_text_normalize("Hello, World! [noise] (aside)") == "hello world "
    assert kotoba_normalize("木村さんは、写真を見せてくれました。.") == "木村さんは写真を見せてくれました"
    assert kotoba_normalize("ＡＢＣ １２３") == "abc123"  # NFKC, lower case, spaces removed


def test_corpus_rates_are_total_edits_over_total_length():
    rates = corpus_rates(["abcd", "", "ef"], ["abxd", "zzz", ""])
    assert rates.n == 2  # the empty reference is dropped
    assert rates.cer == pytest.approx(100 * (1 + 2) / 6)


@pytest.mark.parametrize("name", DATASETS)
def test_reference_predictions_reproduced(name, capsys):
    path = REF / f"step200000.{name}.csv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        assert kotoba_normalize(r["reference_raw"]) == r["reference_norm"]
        assert kotoba_normalize(r["prediction_raw"]) == r["prediction_norm"]
    published = next(
        json.loads(line)
        for line in (REF / "metric.jsonl").read_text().splitlines()
        if json.loads(line)["model"].endswith("step200000") and json.loads(line)["dataset"].endswith(name)
    )
    assert main(["eval", "cer", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    for key in ("cer_norm", "cer_raw", "wer_norm", "wer_raw"):
        assert printed[key] == pytest.approx(published[key], abs=1e-6)
    direct = cer_metrics([r["reference_raw"] for r in rows], [r["prediction_raw"] for r in rows])
    assert direct["cer_norm"] == printed["cer_norm"]
