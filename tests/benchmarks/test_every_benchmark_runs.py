"""Every benchmark script still starts: `--help` runs its imports and its argument parser.

The benchmarks are run by hand, not in CI; without this a moved function (a renamed module, a helper that
changed place) would break one silently until somebody needs its figures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).parents[2] / "benchmarks").glob("*.py"))


def test_the_benchmarks_are_found():
    assert {"ear.py", "sft_offline.py", "speech_rate.py", "view.py", "gpu_cost.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help(script):
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300,
                            cwd=script.parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
