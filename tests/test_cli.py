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
