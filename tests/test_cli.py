"""The command line: no option is ever read as a longer one it abbreviates."""
import pytest

from jaspeech.cli import main


@pytest.mark.parametrize("argv", [
    ["build", "jaspeech-sft-audio", "--config", "magpie", "--out", "x", "--speaker", "spk"],  # not --speakers
    ["build", "jaspeech-sft-audio", "--config", "magpie", "--out", "x", "--work", "2"],  # not --workers
    ["eval", "cer", "--mod", "m", "file.csv"],  # not --model
])
def test_abbreviated_options_are_refused_in_every_subcommand(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_training_on_a_corpus_not_built_yet_names_the_command_that_builds_it(tmp_path, monkeypatch, capsys):
    """Before the Quick start, tiny-asr's `build/jaspeech-sft-audio` does not exist: no Hub lookup, a way out."""
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1] / "configs" / "train" / "tiny-asr.yaml"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["train", str(recipe), "--set", f"output_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert "'build/jaspeech-sft-audio' is a local path that does not exist" in err
    assert "jaspeech build jaspeech-sft-audio --config magpie --input sample --out build/jaspeech-sft-audio" in err


def test_a_recipe_error_is_one_line_that_says_what_to_write(capsys):
    """A bad recipe value is the command's error (exit 2), not a traceback."""
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1] / "configs" / "train" / "tiny-asr.yaml"
    assert main(["train", str(recipe), "--set", "stage=everything"]) == 2
    assert main(["train", str(recipe), "--set", "training.max_steps"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("jaspeech train: error: stage must be one of ")
    assert err[1] == "jaspeech train: error: --set 'training.max_steps': expected KEY=VALUE, e.g. training.max_steps=10"


def test_a_missing_extra_is_the_builds_error_naming_the_install(tmp_path, monkeypatch, capsys):
    """A backend whose extra is not installed stops the build with its own message (exit 2), not a traceback;
    here the quality stage's models (speechmos), hidden from the import system for the test."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "speechmos" else real(name, *a))
    argv = ["build", "jaspeech-sft-audio", "--config", "magpie", "--input", "sample", "--limit", "1", "--tts", "tone",
            "--asr", "none", "--quality", "dnsmos", "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaspeech build: error: the DNSMOS quality stage needs the speechmos package")
    assert "pip install 'jaspeech[quality]'" in err
