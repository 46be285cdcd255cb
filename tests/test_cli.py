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
