"""Executors: Slurm scripts, Ray tasks, and multi-worker builds killed at random moments."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jaspeech.builders.build import BuildOptions, build
from jaspeech.builders.sources import SAMPLES_DIR
from jaspeech.cli import main
from tests.conftest import assert_accounted


def fast(out, **kw):
    kw.setdefault("input", "sample")
    kw.setdefault("config", "magpie")
    return BuildOptions(corpus="jaspeech-sft-audio", out=out, tts="openjtalk", asr="none", quiet=True, **kw)


def rows_by_id(out, config="magpie"):
    rows = {}
    for f in sorted((out / "data" / config).glob("*.parquet")):
        for r in pq.read_table(f, columns=["id", "speaker", "turns"]).to_pylist():
            assert r["id"] not in rows, "duplicate row"
            rows[r["id"]] = (r["speaker"], r["turns"][0]["audio"]["bytes"])
    return rows


def test_slurm_dry_run_prints_an_array_script(out, capsys):
    args = ["build", "jaspeech-sft-audio", "--config", "magpie", "--input", "sample", "--out", str(out),
            "--tts", "openjtalk", "--asr", "none", "--num-shards", "4", "--executor", "slurm", "--dry-run",
            "--gpus-per-task", "1", "--slurm-partition", "gpu", "--slurm-max-parallel", "2", "--quiet"]
    assert main(args) == 0
    script = capsys.readouterr().out
    assert script.startswith("#!/bin/bash")
    assert "#SBATCH --array=0-3%2" in script and "#SBATCH --gres=gpu:1" in script
    assert "#SBATCH --partition=gpu" in script
    command = next(line for line in script.splitlines() if "-m jaspeech build" in line)
    assert '--shard-index "${SLURM_ARRAY_TASK_ID}"' in command and "--num-shards 4" in command
    assert "--executor" not in command  # each array task runs one shard locally
    assert not list(out.glob("data/magpie/*.parquet"))  # nothing built, nothing submitted
    assert not (out / "manifests").exists()  # nothing read: the dry run needs only --num-shards
    base = command.split(" --shard-index")[0]
    # a task started before the plan exists fails and names the command that makes the plan
    early = subprocess.run(f"{base} --shard-index 0", shell=True, capture_output=True, text=True)
    assert early.returncode == 2 and "--plan-only" in early.stderr and "plan.json does not exist" in early.stderr
    subprocess.run(f"{base} --plan-only", shell=True, check=True)  # once, before sbatch
    # each array task, run as the script would run it, builds its shard; the last one writes the card
    for task in range(4):
        subprocess.run(f'{base} --shard-index {task}', shell=True, check=True)
    assert_accounted(out, "magpie", sum(1 for _ in open(SAMPLES_DIR / "magpie.jsonl", encoding="utf-8")))
    assert (out / "README.md").exists()


def test_slurm_submission_runs_sbatch(out, tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/sbatch-args\necho 4242\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    template = tmp_path / "mine.sbatch.j2"
    template.write_text("#!/bin/bash\n#SBATCH --array=0-{{ num_shards - 1 }}\n# my cluster\n{{ command }}\n")
    summary = build(fast(out, num_shards=3, executor="slurm", slurm_template=str(template)))
    assert summary["submitted"] and not summary["complete"]
    script = (out / "slurm" / "magpie.sbatch").read_text()
    assert "# my cluster" in script and "#SBATCH --array=0-2" in script
    assert (tmp_path / "sbatch-args").read_text().split() == ["--parsable", str(out / "slurm" / "magpie.sbatch")]


def test_ray_executor_builds_the_same_rows(tmp_path):
    pytest.importorskip("ray")
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    build(fast(local, num_shards=3, limit=12))
    summary = build(fast(ray_out, num_shards=3, limit=12, executor="ray", cpus_per_task=1))
    assert summary["complete"] and summary["shards_done"] == 3
    assert rows_by_id(ray_out) == rows_by_id(local)
    assert_accounted(ray_out, "magpie", 12)


BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "kill_resume.py"


def test_multi_worker_build_killed_three_times_matches_an_uninterrupted_one():
    """benchmarks/kill_resume.py: 2 workers, SIGKILL at 3 random moments, resume, compare with a clean build."""
    result = subprocess.run([sys.executable, str(BENCH), "--rows", "96", "--kills", "3", "--workers", "2",
                             "--seed", "1"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout and result.stdout.count("killed after") == 3
    for check in ("same ids, speakers and audio bytes", "every input row exactly once", "same published files",
                  "no partial files", "some kills hit a partly built corpus"):
        assert f"ok   {check}" in result.stdout


def test_local_workers_are_pinned_round_robin_to_visible_gpus(monkeypatch):
    """Each worker process runs this initializer once; no GPU is needed to check the assignment."""
    import multiprocessing as mp

    from jaspeech.builders import executors

    for var in ("OMP_NUM_THREADS", "JASPEECH_ASR_THREADS", "JASPEECH_TTS_THREADS"):
        monkeypatch.delenv(var, raising=False)  # the initializer sets them: restored for the tests after this one
    slot = mp.get_context("spawn").Value("i", 0)
    seen = []
    for _ in range(5):
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        executors._init_worker(threads=1, gpus=["3", "5"], slot=slot)
        seen.append((os.environ["CUDA_VISIBLE_DEVICES"], os.environ["OMP_NUM_THREADS"]))
    assert [g for g, _ in seen] == ["3", "5", "3", "5", "3"] and {t for _, t in seen} == {"1"}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,7")
    assert executors.visible_gpus() == ["2", "7"]
    assert executors.shard_rows(10, 4, 0) == 3 and executors.shard_rows(10, 4, 3) == 2


def test_the_bar_moves_per_group_on_a_one_shard_build_and_sums_the_workers(tmp_path):
    """run_shard reports each written group; the bar (tqdm, read back here) moves per group, and a multi-worker
    local build's reports reach the driver through a queue and add up to the input rows, never counted twice."""
    import io

    from jaspeech.builders import executors
    from jaspeech.builders.plan import load_or_create_plan

    opts = fast(tmp_path / "one", limit=6, group_rows=2)
    plan = load_or_create_plan(opts)
    buf = io.StringIO()
    bar = executors.Progress(plan, [0], quiet=False, file=buf)
    seen = []  # (rows reported, shards done) at each report: the bar moved before the shard ended

    def advance(shard, rows, seconds):
        seen.append((rows, bar.shards_done, seconds > 0))
        bar.advance(shard, rows, seconds)

    manifests = []
    executors.run_local(opts.out, plan, [0], 1, lambda m: (manifests.append(m), bar.update(m)), advance)
    bar.close()
    assert manifests[0]["peak_rss_mb"] > 50  # the worker's peak resident memory, recorded with the shard
    assert [(rows, done) for rows, done, _ in seen] == [(2, 0), (2, 0), (2, 0)] and any(s for *_, s in seen)
    shown = buf.getvalue()
    assert "2/6" in shown and "4/6" in shown and "6/6" in shown  # tqdm's own lines, per group
    assert bar.bar.n == bar.rows == 6 and bar.shards_done == 1

    opts = fast(tmp_path / "two", limit=8, group_rows=2, num_shards=2, workers=2)
    plan = load_or_create_plan(opts)
    bar = executors.Progress(plan, [0, 1], quiet=True)
    reports = []
    executors.run_local(opts.out, plan, [0, 1], 2, bar.update,
                        lambda *r: (reports.append(r), bar.advance(*r)))
    assert sorted(s for s, *_ in reports) == [0, 0, 1, 1] and sum(n for _, n, _ in reports) == 8
    assert bar.rows == 8 and bar.shards_done == 2
    bar.advance(0, 2, 1.0)  # a report arriving after its shard's manifest (a retried Ray task) is not counted
    assert bar.rows == 8
