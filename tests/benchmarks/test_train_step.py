"""benchmarks/train_step.py runs on CPU (--dry-run, the --gpu code path with the tiny shapes) and explains itself."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "train_step.py"


def run(*args):
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_help_names_the_modes():
    out = run("--help")
    assert "--gpu" in out and "--dry-run" in out and "Whisper-large-v3" in out


def test_dry_run_prints_every_figure_and_a_json_line():
    out = run("--dry-run")
    r = json.loads(out.strip().splitlines()[-1])
    assert r["benchmark"] == "train_step" and r["shape"] == "tiny" and r["device"] == "cpu" and r["steps"] == 1
    for name in ("asr", "instruction"):
        w = r["workloads"][name]
        assert w["step_s"] > 0 and w["tokens_per_s"] > 0 and w["audio_s_per_s"] > 0
        assert abs(w["audio_s_per_s"] - w["clip_s"] / w["step_s"]) < 1e-6 * w["audio_s_per_s"]
    hours = {p["corpus"].split(",")[0]: p["hours"] for p in r["projection_one_pass"]}
    assert hours["Atotti/spoken-magpie-ja"] == 700 and hours["Atotti/spoken-multiturn-sft"] == 265
    assert abs(r["projection_total_gpu_hours"] - sum(p["gpu_hours"] for p in r["projection_one_pass"])) < 1e-9
    assert "GPU-h" in out and "tokens/s" in out
