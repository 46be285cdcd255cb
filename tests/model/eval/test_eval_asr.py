"""eval asr on a small local dataset: a tiny random Whisper (transformers) and the real Whisper base on our TTS."""
import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jaspeech.cli import main
from jaspeech.synthesis.asr.faster_whisper import whisper_base_dir
from jaspeech.synthesis.speakers import PROFILES
from jaspeech.synthesis.tts import make_tts

SENTENCES = ["今日はいい天気です。", "明日の会議は午後二時からです。", "駅まで歩いて十分かかります。"]


def local_dataset(folder, tts, broken: bool = False):
    rows = []
    for i, text in enumerate(SENTENCES):
        samples, sr = tts.synthesize(text, PROFILES[i], seed=i)
        buf = io.BytesIO()
        sf.write(buf, samples, sr, format="FLAC")
        rows.append({"id": f"utt{i}", "audio": {"bytes": buf.getvalue(), "path": f"utt{i}.flac"}, "transcription": text})
    if broken:
        rows.append({"id": "broken", "audio": {"bytes": b"not audio", "path": "x.flac"}, "transcription": "壊れた"})
    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "data" / "test-00000-of-00001.parquet")
    (folder / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: test\n"
                                      "    path: data/test-*.parquet\n---\n")
    return folder


def test_eval_asr_with_tiny_random_whisper_resumes(tmp_path, capsys):
    from tests.synthesis.test_transformers_asr import tiny_whisper

    folder, _ = tiny_whisper.__wrapped__(type("F", (), {"mktemp": lambda self, n: tmp_path / n})())
    data = local_dataset(tmp_path / "ds", make_tts("openjtalk"), broken=True)
    out = tmp_path / "results"
    argv = ["eval", "asr", "--model", str(folder), "--dataset", str(data), "--out", str(out), "--batch-size", "2"]
    assert main(argv) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["n"] == 3 and line["undecodable"] == 1 and line["dataset_split"] == "test"
    pred = next(out.glob("predictions.*.csv"))
    rows = list(csv.DictReader(open(pred, encoding="utf-8")))
    assert [r["id"] for r in rows] == ["utt0", "utt1", "utt2"] and list(rows[0]) == [
        "id", "reference_norm", "prediction_norm", "reference_raw", "prediction_raw"]
    assert rows[1]["reference_norm"] == "明日の会議は午後二時からです"
    assert main(argv) == 0  # resumed: nothing new transcribed, same predictions
    assert len(list(csv.DictReader(open(pred, encoding="utf-8")))) == 3
    assert len((out / "metric.jsonl").read_text().splitlines()) == 2


def test_eval_asr_with_no_decodable_clip_fails_clearly(tmp_path, capsys):
    from tests.synthesis.test_transformers_asr import tiny_whisper

    folder, _ = tiny_whisper.__wrapped__(type("F", (), {"mktemp": lambda self, n: tmp_path / n})())
    (tmp_path / "ds" / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"id": "broken", "audio": {"bytes": b"not audio", "path": "x.flac"},
                                          "transcription": "壊れた"}]),
                   tmp_path / "ds" / "data" / "test-00000-of-00001.parquet")
    assert main(["eval", "asr", "--model", str(folder), "--dataset", str(tmp_path / "ds"),
                 "--out", str(tmp_path / "r")]) == 2
    assert "could be transcribed (1 undecodable): check --audio-column 'audio'" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_asr_real_whisper_base_on_our_tts(tmp_path, capsys):
    data = local_dataset(tmp_path / "ds", make_tts("kokoro"))
    assert main(["eval", "asr", "--model", str(whisper_base_dir()), "--dataset", str(data),
                 "--out", str(tmp_path / "r")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    print(f"Whisper base (CTranslate2) on kokoro speech: CER {line['cer_norm']:.2f} % over {line['n']} utterances")
    assert line["n"] == 3 and line["cer_norm"] < 30.0


def test_eval_asr_with_a_jaspeech_llm_checkpoint(tmp_path, capsys):
    """A tiny random JaSpeechLLM saved and evaluated through the same command (batched, left-padded)."""
    import torch

    from tests.model.tiny import tiny_model_and_processor

    torch.manual_seed(0)
    model, processor = tiny_model_and_processor()
    model.save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    data = local_dataset(tmp_path / "ds", make_tts("openjtalk"))
    assert main(["eval", "asr", "--model", str(tmp_path / "ckpt"), "--dataset", str(data), "--out",
                 str(tmp_path / "r"), "--batch-size", "2", "--max-new-tokens", "8"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["n"] == 3 and line["cer_norm"] >= 0
    rows = list(csv.DictReader(open(next((tmp_path / "r").glob("predictions.*.csv")), encoding="utf-8")))
    assert [r["reference_raw"] for r in rows] == SENTENCES
